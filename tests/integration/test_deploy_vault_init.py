"""deploy/vault-init.sh, run with /bin/sh against a bare OpenBao and a prepared PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shlex
import stat
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.deploy import (
    INIT_ENV,
    LOGINS,
    VAULT_ADMIN_PASSWORD,
    Deployed,
    deployed_stack,
    secret_id_file,
)
from vault_async.devstack._binaries import find_bao
from vault_async.devstack._policies import service_policy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def initialised() -> Iterator[Deployed]:
    """vault-init.sh has run once."""
    with deployed_stack() as deployed:
        result = deployed.vault_init()
        assert result.returncode == 0, result.stdout + result.stderr
        deployed.first_run = result
        yield deployed


@pytest.mark.parametrize("directory", ["service_dir", "migrator_dir"])
def test_vault_init_writes_each_secret_id_for_its_reader_only(
    initialised: Deployed, directory: str
) -> None:
    """0600, owned by APP_UID:APP_GID, and nothing else left in the volume."""
    path = secret_id_file(initialised, directory)
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_id"]
    st = path.lstat()
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert (st.st_uid, st.st_gid) == (initialised.uid, initialised.gid)
    assert path.read_text().strip()


def _log_in_and_read(
    deployed: Deployed, role_id: str, secret_id: str, own: str, other: str
) -> tuple[list[str], int, dict[str, str]]:
    """AppRole login; the token's policies, the status of the other role's credentials, and
    the own role's credentials."""
    login = httpx.post(
        f"{deployed.bao.addr}/v1/auth/approle/login", timeout=10,
        json={"role_id": role_id, "secret_id": secret_id},
    )
    assert login.status_code == 200, login.text
    auth = login.json()["auth"]
    token = auth["client_token"]
    other_status = deployed.vault("GET", f"database/creds/{other}", token).status_code
    creds = deployed.vault("GET", f"database/creds/{own}", token)
    assert creds.status_code == 200, creds.text
    return auth["token_policies"], other_status, creds.json()["data"]


@pytest.mark.parametrize(("role_id_variable", "directory", "policy", "own", "other"), LOGINS)
async def test_each_login_reaches_its_own_database_role_only(
    initialised: Deployed, role_id_variable: str, directory: str, policy: str, own: str,
    other: str,
) -> None:
    """The role_id compose gives the reader and the secret_id in its file log in; the token
    carries one policy (no default) and reads its own role's credentials, not the other's."""
    policies, other_status, data = await asyncio.to_thread(
        _log_in_and_read, initialised, INIT_ENV[role_id_variable],
        secret_id_file(initialised, directory).read_text().strip(), own, other,
    )
    assert policies == [policy]
    assert other_status == 403
    conn = await asyncpg.connect(
        host="127.0.0.1", port=initialised.pg.port, user=data["username"],
        password=data["password"], database="app", timeout=10,
    )
    try:
        owner = await conn.fetchval("SELECT pg_has_role(current_user, 'app_owner', 'MEMBER')")
        writer = await conn.fetchval("SELECT pg_has_role(current_user, 'app_rw', 'MEMBER')")
    finally:
        await conn.close()
    assert (owner, writer) == ((True, False) if own == "migrator" else (False, True))


@pytest.mark.parametrize(("policy", "role"), [("app-service", "app"), ("app-migrator", "migrator")])
def test_vault_init_writes_the_dev_stack_policies(
    initialised: Deployed, policy: str, role: str
) -> None:
    answer = initialised.vault("GET", f"sys/policies/acl/{policy}", initialised.bao.root_token)
    assert answer.status_code == 200
    assert answer.json()["data"]["policy"].strip() == service_policy("database", [role]).strip()


def test_vault_init_gives_the_service_a_short_renewable_token(initialised: Deployed) -> None:
    """A killed replica's database login dies with its token: 5 min at most, renewed while
    the service lives."""
    answer = initialised.vault("GET", "auth/approle/role/app", initialised.bao.root_token)
    assert answer.status_code == 200
    assert (answer.json()["data"]["token_ttl"], answer.json()["data"]["token_type"]) == (
        300, "default"
    )


def test_vault_init_prints_no_secret(initialised: Deployed) -> None:
    assert initialised.first_run is not None
    output = initialised.first_run.stdout + initialised.first_run.stderr
    secrets = [
        VAULT_ADMIN_PASSWORD, initialised.bao.root_token,
        *(secret_id_file(initialised, d).read_text().strip() for _, d, *_ in LOGINS),
    ]
    assert [s for s in secrets if s in output] == []
    assert "vault-init: " in output


def test_vault_init_puts_no_secret_on_a_command_line(
    initialised: Deployed, tmp_path: Path
) -> None:
    """Any local user reads /proc/<pid>/cmdline: a `bao` first on PATH logs each argv."""
    argv_log = tmp_path / "argv.log"
    shim = tmp_path / "bin" / "bao"
    shim.parent.mkdir()
    shim.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$*\" >> {shlex.quote(str(argv_log))}\n"
        f"exec {shlex.quote(str(find_bao()))} \"$@\"\n"
    )
    shim.chmod(0o700)
    path = f"{shim.parent}{os.pathsep}{initialised.vault_init_env()['PATH']}"
    result = initialised.vault_init(PATH=path)
    assert result.returncode == 0, result.stdout + result.stderr
    command_lines = argv_log.read_text()
    assert "database/config/app" in command_lines  # the shim saw the calls
    assert VAULT_ADMIN_PASSWORD not in command_lines


def test_vault_init_runs_again_and_replaces_each_secret_id(initialised: Deployed) -> None:
    before = {d: secret_id_file(initialised, d).read_text() for _, d, *_ in LOGINS}
    again = initialised.vault_init()
    assert again.returncode == 0, again.stdout + again.stderr
    for directory, old in before.items():
        path = secret_id_file(initialised, directory)
        assert path.read_text() != old
        assert sorted(p.name for p in path.parent.iterdir()) == ["secret_id"]
        st = path.lstat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (
            0o600, initialised.uid, initialised.gid
        )


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"SECRET_ID_DIR": "/nonexistent/approle"}, "SECRET_ID_DIR"),
        ({"MIGRATOR_SECRET_ID_DIR": "/nonexistent/approle-migrator"}, "MIGRATOR_SECRET_ID_DIR"),
        ({"APP_UID": ""}, "APP_UID"),
    ],
)
def test_vault_init_refuses_a_bad_setting_before_changing_anything(
    initialised: Deployed, changes: dict[str, str], named: str
) -> None:
    """One line naming the setting; no secret_id file replaced."""
    before = {d: secret_id_file(initialised, d).read_text() for _, d, *_ in LOGINS}
    result = initialised.vault_init(**changes)
    assert result.returncode != 0
    assert named in result.stderr
    assert result.stdout == ""
    assert {d: secret_id_file(initialised, d).read_text() for d in before} == before
