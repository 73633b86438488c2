"""`python -m app` and `alembic upgrade head` with one thing wrong: one line, an exit code.

Each case runs the real command against the dev stack with one setting changed, and checks
the exit code and the one line that is not a log line: it names the setting to fix and
quotes Vault's own words, and no secret shows up anywhere in the output.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import ca_and_server_cert
from tests.support.service import ROOT, service_environ
from tests.support.tls_openbao import TlsOpenBao, openbao_with_certificate
from vault_async.devstack import DevStack
from vault_async.devstack._processes import free_port

pytestmark = pytest.mark.integration

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d[ T]|\{|(DEBUG|INFO|WARNING|ERROR|CRITICAL):)")
"""A log line (text or JSON format, or uvicorn's own); everything else is the command's word."""


def command_env(
    stack: DevStack, *, migration: bool = False, **changes: str | None
) -> dict[str, str]:
    """The dev stack's environment for the service (or, ``migration``, for Alembic), changed.

    The one place the commands' environment is built (``None`` removes a setting).
    """
    base = stack.migration_env() if migration else stack.env()
    env = base | {"VAULT_STARTUP_TIMEOUT": "3", "VAULT_MAX_RETRIES": "1"}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(
    argv: list[str], env: dict[str, str], timeout: float = 45
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, env=service_environ(env), capture_output=True, text=True, timeout=timeout
    )


def run_app(env: dict[str, str], port: int | None = None) -> subprocess.CompletedProcess[str]:
    port = port or free_port()
    return run([sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)], env)


def run_alembic(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "alembic", "upgrade", "head"], env)


def the_line(result: subprocess.CompletedProcess[str], *secrets: str) -> str:
    """The one line on stderr that is not a log line; no secret anywhere, no traceback."""
    output = result.stdout + result.stderr
    for secret in secrets:
        assert secret not in output
    assert "Traceback" not in output, output[-3000:]
    lines = [line for line in result.stderr.splitlines() if line and not LOG_LINE.match(line)]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def secrets_of(stack: DevStack) -> tuple[str, str, str]:
    return stack.secret_id, stack.migrator_login.secret_id, stack.root_token


# -- the service ------------------------------------------------------------------------------


def test_missing_secret_id_file_is_a_setting_error(devstack: DevStack, tmp_path: Path) -> None:
    missing = tmp_path / "secret-id"
    env = command_env(devstack, VAULT_SECRET_ID=None, VAULT_SECRET_ID_FILE=str(missing))
    result = run_app(env)
    assert result.returncode == 2
    line = the_line(result, *secrets_of(devstack))
    assert line == (
        f"configuration error: cannot read VAULT_SECRET_ID_FILE '{missing}': "
        "No such file or directory"
    )


def test_wrong_role_id_names_approle_and_quotes_vault(devstack: DevStack) -> None:
    result = run_app(command_env(devstack, VAULT_ROLE_ID=ZERO_UUID))
    assert result.returncode == 1
    line = the_line(result, *secrets_of(devstack))
    assert line.startswith("start-up failed: auth/approle login refused by Vault: "), line
    assert '"invalid role or secret id"' in line.lower()
    assert line.endswith("(check VAULT_ROLE_ID and VAULT_SECRET_ID)")
    assert "auth/token" not in result.stderr


def test_unknown_db_role_names_the_setting(devstack: DevStack) -> None:
    # A role the service's policy allows, but which does not exist (any more).
    devstack.create_dynamic_role("goneapp", "1h", "2h")
    devstack.vault_call("DELETE", f"{devstack.db_mount}/roles/goneapp")
    result = run_app(command_env(devstack, VAULT_DB_ROLE="goneapp"))
    assert result.returncode == 1
    line = the_line(result, *secrets_of(devstack))
    assert line == (
        'start-up failed: database/creds/goneapp refused by Vault: "unknown role: goneapp" '
        "(check VAULT_DB_ROLE)"
    )


def test_db_role_outside_the_policy_quotes_permission_denied(devstack: DevStack) -> None:
    result = run_app(command_env(devstack, VAULT_DB_ROLE="nosuchrole"))
    assert result.returncode == 1
    line = the_line(result, *secrets_of(devstack))
    assert line == (
        'start-up failed: database/creds/nosuchrole refused by Vault: "permission denied" '
        "(check VAULT_DB_ROLE and the Vault policy of the login)"
    )


def test_https_to_a_plain_http_vault_says_so(devstack: DevStack) -> None:
    addr = devstack.vault_addr.replace("http://", "https://")
    result = run_app(command_env(devstack, VAULT_ADDR=addr))
    assert result.returncode == 1
    line = the_line(result, *secrets_of(devstack))
    assert line.startswith(f"start-up failed: Vault at {addr} answers plain HTTP, not TLS"), line
    assert "VAULT_ADDR" in line
    assert "nothing from Vault" not in result.stderr


@pytest.fixture(scope="module")
def tls_bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsOpenBao]:
    workdir = tmp_path_factory.mktemp("startup-tls-bao")
    _, cert_pem, key_pem = ca_and_server_cert("vault.internal")
    with openbao_with_certificate(workdir, cert_pem, key_pem) as bao:
        yield bao


def test_http_to_an_https_vault_says_so(devstack: DevStack, tls_bao: TlsOpenBao) -> None:
    addr = tls_bao.addr.replace("https://", "http://")
    result = run_app(command_env(devstack, VAULT_ADDR=addr))
    assert result.returncode == 1
    line = the_line(result, *secrets_of(devstack), tls_bao.root_token)
    assert line.startswith(f"start-up failed: Vault at {addr} speaks HTTPS"), line
    assert "VAULT_ADDR" in line


def test_unreachable_vault_is_named_at_once_and_at_the_end(devstack: DevStack) -> None:
    addr = f"http://127.0.0.1:{free_port()}"
    result = run_app(command_env(devstack, VAULT_ADDR=addr))
    assert result.returncode == 1
    line = the_line(result, *secrets_of(devstack))
    assert line == (
        f"start-up failed: Vault at {addr} is not answering (connection refused) "
        "after 3 s (check VAULT_ADDR, or raise VAULT_STARTUP_TIMEOUT)"
    )
    logs = [entry for entry in result.stderr.splitlines() if LOG_LINE.match(entry)]
    said = f"Vault at {addr} is not answering (connection refused); still trying for 3 s"
    told = [n for n, entry in enumerate(logs) if f"{said} (VAULT_STARTUP_TIMEOUT)" in entry]
    assert len(told) == 1, logs  # logged while the wait goes on (the end is the line above)


def test_vault_addr_without_scheme_is_a_setting_error(devstack: DevStack) -> None:
    addr = devstack.vault_addr.removeprefix("http://")
    result = run_app(command_env(devstack, VAULT_ADDR=addr))
    assert result.returncode == 2
    line = the_line(result, *secrets_of(devstack))
    assert line.startswith("configuration error: VAULT_ADDR"), line
    assert addr in line


def test_port_in_use_fails_before_asking_vault(devstack: DevStack) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_app(command_env(devstack), port=port)
    assert result.returncode == 3
    line = the_line(result, *secrets_of(devstack))
    assert line.startswith(f"start-up failed: cannot listen on 127.0.0.1:{port}: "), line
    assert line.endswith("(check --host and --port)")
    assert "lease." not in result.stderr  # nothing was asked of Vault


# -- alembic ------------------------------------------------------------------------------------


def test_alembic_wrong_role_id_is_one_line(devstack: DevStack) -> None:
    result = run_alembic(command_env(devstack, migration=True, VAULT_ROLE_ID=ZERO_UUID))
    assert result.returncode == 1
    line = the_line(result, *secrets_of(devstack))
    assert line.startswith("migration failed: auth/approle login refused by Vault: "), line
    assert line.endswith("(check VAULT_ROLE_ID and VAULT_SECRET_ID)")


def test_alembic_migration_role_names_its_setting(devstack: DevStack) -> None:
    env = command_env(devstack, migration=True, VAULT_DB_MIGRATION_ROLE="nosuchrole")
    result = run_alembic(env)
    assert result.returncode == 1
    line = the_line(result, *secrets_of(devstack))
    assert line == (
        'migration failed: database/creds/nosuchrole refused by Vault: "permission denied" '
        "(check VAULT_DB_MIGRATION_ROLE and the Vault policy of the login)"
    )


def test_alembic_missing_secret_id_file_is_a_setting_error(
    devstack: DevStack, tmp_path: Path
) -> None:
    missing = tmp_path / "secret-id"
    env = command_env(
        devstack, migration=True, VAULT_SECRET_ID=None, VAULT_SECRET_ID_FILE=str(missing)
    )
    result = run_alembic(env)
    assert result.returncode == 2
    assert the_line(result, *secrets_of(devstack)) == (
        f"configuration error: cannot read VAULT_SECRET_ID_FILE '{missing}': "
        "No such file or directory"
    )


def test_alembic_setting_error_is_one_line_exit_2(devstack: DevStack) -> None:
    result = run_alembic(command_env(devstack, migration=True, DATABASE_URL=None))
    assert result.returncode == 2
    assert the_line(result, *secrets_of(devstack)) == (
        "configuration error: DATABASE_URL is required"
    )


@pytest.fixture(scope="module")
def fresh_stack() -> Iterator[DevStack]:
    """A dev stack of its own, not migrated yet."""
    with DevStack() as stack:
        yield stack


def test_alembic_says_who_logged_in_what_owns_and_what_ran(fresh_stack: DevStack) -> None:
    env = command_env(fresh_stack, migration=True)
    first = run_alembic(env)
    assert first.returncode == 0, first.stderr[-3000:]
    for secret in secrets_of(fresh_stack):
        assert secret not in first.stdout + first.stderr
    login = re.search(r"logged in to the database as (\S+)", first.stdout)
    assert login is not None, first.stdout
    assert login.group(1).startswith(f"v-approle-{fresh_stack.migrator_role[:8]}-")
    assert f"objects owned by {fresh_stack.owner_role}" in first.stdout
    assert "ran 0001_users" in first.stdout
    again = run_alembic(env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already at head 0001_users" in again.stdout
    assert "ran " not in again.stdout
