"""deploy/postgres-init.sh and deploy/vault-init.sh, run with /bin/sh against real servers.

A fresh PostgreSQL (the dev stack's binaries, superuser ``postgres``) and a bare
``bao server -dev``, both on 127.0.0.1 and stopped by PID: what the compose file's init
containers do, outside containers. The settings come from docker-compose.yml's environment;
only the addresses and the secret_id directories point into the test's own places.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.compose import ROOT, healthcheck_argv, load_compose
from vault_async.devstack import DevStack
from vault_async.devstack._binaries import find_bao, find_pg_bindir
from vault_async.devstack._openbao import OpenBaoServer
from vault_async.devstack._policies import service_policy
from vault_async.devstack._postgres import PostgresCluster
from vault_async.devstack._private import private_temp_dir
from vault_async.devstack._processes import free_port, free_port_pair

pytestmark = pytest.mark.integration

DEPLOY = ROOT / "deploy"
COMPOSE = load_compose()
INIT_ENV: dict[str, str] = {
    k: str(v) for k, v in COMPOSE["services"]["vault-init"]["environment"].items()
}
VAULT_ADMIN_PASSWORD = "vault-admin-test-only"
LAYOUT_ROLES = ("app_owner", "app_rw", "vault_admin")


@contextmanager
def fresh_postgres() -> Iterator[PostgresCluster]:
    """A new cluster with nothing in it but the superuser, removed on exit."""
    pg = PostgresCluster(find_pg_bindir(), free_port())
    try:
        pg.init()
        pg.start()
        _wait_accepting(pg)
        yield pg
    finally:
        pg.stop()
        pg.remove()


def _wait_accepting(pg: PostgresCluster, timeout: float = 30) -> None:
    """Until the server takes logins (the port opens while it still starts up)."""
    argv = [str(pg.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(pg.port), "-t", "2"]
    deadline = time.monotonic() + timeout
    while subprocess.run(argv, capture_output=True, timeout=10).returncode != 0:
        assert time.monotonic() < deadline, "PostgreSQL did not accept connections"
        time.sleep(0.1)


def _base_env(extra_path: Path) -> dict[str, str]:
    """This process's environment without any server setting, with `extra_path` first on PATH."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PG", "VAULT_", "BAO_"))
    }
    env["PATH"] = f"{extra_path}{os.pathsep}{env.get('PATH', '')}"
    return env


def postgres_env(pg: PostgresCluster) -> dict[str, str]:
    """The postgres container's environment, reaching this cluster over TCP."""
    return _base_env(pg.bindir) | {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "POSTGRES_USER": pg.superuser,
        "POSTGRES_PASSWORD": pg.superuser_password,
        "PGPASSWORD": pg.superuser_password,  # set by the image's entrypoint for init scripts
        "VAULT_ADMIN_PASSWORD": VAULT_ADMIN_PASSWORD,
    }


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


def postgres_init(pg: PostgresCluster) -> subprocess.CompletedProcess[str]:
    return run(["/bin/sh", str(DEPLOY / "postgres-init.sh")], postgres_env(pg))


def postgres_healthcheck(pg: PostgresCluster) -> subprocess.CompletedProcess[str]:
    return run(healthcheck_argv(COMPOSE["services"]["postgres"]), postgres_env(pg))


def test_postgres_healthcheck_waits_for_the_database_and_roles() -> None:
    """Healthy only once postgres-init.sh has made the database and the roles, not when it
    merely accepts connections: vault-init starts on this health."""
    with fresh_postgres() as pg:
        before = postgres_healthcheck(pg)
        assert before.returncode != 0, "healthy before the database and roles exist"
        init = postgres_init(pg)
        assert init.returncode == 0, init.stderr
        after = postgres_healthcheck(pg)
        assert after.returncode == 0, after.stdout + after.stderr


@dataclass
class Deployed:
    """A cluster after postgres-init.sh and a bare OpenBao; vault-init.sh runs on demand."""

    pg: PostgresCluster
    bao: OpenBaoServer
    home: Path
    service_dir: Path
    migrator_dir: Path
    uid: int
    gid: int
    first_run: subprocess.CompletedProcess[str] | None = None

    def vault_init_env(self) -> dict[str, str]:
        return _base_env(find_bao().parent) | INIT_ENV | {
            "HOME": str(self.home),
            "BAO_ADDR": self.bao.addr,
            "BAO_TOKEN": self.bao.root_token,
            "PG_HOST": "127.0.0.1",
            "PG_PORT": str(self.pg.port),
            "VAULT_ADMIN_PASSWORD": VAULT_ADMIN_PASSWORD,
            "SECRET_ID_DIR": str(self.service_dir),
            "MIGRATOR_SECRET_ID_DIR": str(self.migrator_dir),
            "APP_UID": str(self.uid),
            "APP_GID": str(self.gid),
        }

    def vault_init(self, **changes: str) -> subprocess.CompletedProcess[str]:
        env = self.vault_init_env() | changes
        return run(["/bin/sh", str(DEPLOY / "vault-init.sh")], env)

    def vault(self, method: str, path: str, token: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method, f"{self.bao.addr}/v1/{path}", json=body, timeout=10,
            headers={"X-Vault-Token": token},
        )


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    workdir = private_temp_dir("vault-async-deploy-")
    bao = OpenBaoServer(find_bao(), workdir, free_port_pair())
    try:
        bao.spawn()
        with fresh_postgres() as pg:
            init = postgres_init(pg)
            assert init.returncode == 0, init.stderr
            bao.wait_ready()
            dirs = {}
            for name in ("home", "approle", "approle-migrator"):
                dirs[name] = workdir / name
                dirs[name].mkdir(mode=0o755)  # as a fresh named volume: its creator's, 0755
            # As root, hand the files to the image's uid (no such user needed); else to us.
            uid, gid = (
                (int(INIT_ENV["APP_UID"]), int(INIT_ENV["APP_GID"]))
                if os.geteuid() == 0 else (os.getuid(), os.getgid())
            )
            yield Deployed(
                pg, bao, dirs["home"], dirs["approle"], dirs["approle-migrator"], uid, gid
            )
    finally:
        bao.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def initialised(deployed: Deployed) -> Deployed:
    """vault-init.sh has run once."""
    result = deployed.vault_init()
    assert result.returncode == 0, result.stdout + result.stderr
    deployed.first_run = result
    return deployed


_LAYOUT_SQL = {
    "roles": """
        SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
               rolreplication, rolbypassrls
        FROM pg_roles WHERE rolname = ANY($1::text[]) ORDER BY rolname""",
    "memberships": """
        SELECT r.rolname AS role, m.rolname AS member, g.rolname AS grantor,
               a.admin_option, a.inherit_option, a.set_option
        FROM pg_auth_members a
        JOIN pg_roles r ON r.oid = a.roleid
        JOIN pg_roles m ON m.oid = a.member
        JOIN pg_roles g ON g.oid = a.grantor
        WHERE r.rolname = ANY($1::text[]) AND m.rolname = ANY($1::text[])
        ORDER BY 1, 2""",
    "database": """
        SELECT pg_get_userbyid(datdba) AS owner,
               array(SELECT unnest(datacl::text[]) ORDER BY 1) AS acl
        FROM pg_database WHERE datname = 'app' AND $1::text[] IS NOT NULL""",
    "schema": """
        SELECT pg_get_userbyid(nspowner) AS owner,
               array(SELECT unnest(nspacl::text[]) ORDER BY 1) AS acl
        FROM pg_namespace WHERE nspname = 'public' AND $1::text[] IS NOT NULL""",
    "default_privileges": """
        SELECT pg_get_userbyid(defaclrole) AS role, defaclnamespace::regnamespace::text AS ns,
               defaclobjtype, array(SELECT unnest(defaclacl::text[]) ORDER BY 1) AS acl
        FROM pg_default_acl WHERE $1::text[] IS NOT NULL ORDER BY 1, 2, 3""",
}


async def _layout(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [dict(row) for row in await conn.fetch(sql, list(LAYOUT_ROLES))]
        for name, sql in _LAYOUT_SQL.items()
    }


async def test_postgres_init_makes_the_dev_stack_layout(
    deployed: Deployed, devstack: DevStack
) -> None:
    """Roles, memberships, ownership and grants equal what the dev stack's set-up makes."""
    conn = await deployed.pg.connect("app")
    try:
        deployed_layout = await _layout(conn)
    finally:
        await conn.close()
    async with devstack.admin_connection("app") as dev:
        dev_layout = await _layout(dev)
    assert [r["rolname"] for r in deployed_layout["roles"]] == sorted(LAYOUT_ROLES)
    assert deployed_layout["database"][0]["owner"] == "app_owner"
    assert deployed_layout == dev_layout


# (role_id variable, secret_id directory, policy, own database role, the other login's role)
LOGINS = [
    ("APPROLE_ROLE_ID", "service_dir", "app-service", "app", "migrator"),
    ("MIGRATOR_APPROLE_ROLE_ID", "migrator_dir", "app-migrator", "migrator", "app"),
]


def secret_id_file(deployed: Deployed, directory: str) -> Path:
    path: Path = getattr(deployed, directory) / "secret_id"
    return path


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


def test_vault_init_prints_no_secret(initialised: Deployed) -> None:
    assert initialised.first_run is not None
    output = initialised.first_run.stdout + initialised.first_run.stderr
    secrets = [
        VAULT_ADMIN_PASSWORD, initialised.bao.root_token,
        *(secret_id_file(initialised, d).read_text().strip() for _, d, *_ in LOGINS),
    ]
    assert [s for s in secrets if s in output] == []
    assert "vault-init: " in output


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
