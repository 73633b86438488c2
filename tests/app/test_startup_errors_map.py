"""A failed start maps to the setting to check and the exit code, for every auth method."""

from __future__ import annotations

from pathlib import Path

import pytest

from app._startup_errors import explain
from app.settings import SettingsError, load_settings
from vault_async import (
    Forbidden,
    InvalidConfig,
    InvalidPath,
    InvalidRequest,
    VaultConnectionError,
    VaultError,
)
from vault_async._startup import diagnose
from vault_async.runtime import StartupError

BASE = {
    "VAULT_ADDR": "http://127.0.0.1:8200",
    "DATABASE_URL": "postgresql+asyncpg://127.0.0.1:5432/app",
    "VAULT_DB_ROLE": "app",
}


def startup_error(name: str, kind: str, error: VaultError) -> StartupError:
    found = diagnose(name, kind, error, "http://127.0.0.1:8200")
    return StartupError(found, secret=name, kind=kind, error=error)


def refused(message: str) -> InvalidRequest:
    return InvalidRequest("Bad Request", status=400, errors=[message])


def test_token_auth_refusal_names_vault_token() -> None:
    settings = load_settings(BASE | {"VAULT_TOKEN": "s.abc"})
    error = Forbidden("Forbidden", status=403, errors=["permission denied"])
    failure = explain(startup_error("auth/token", "token", error), settings)
    assert failure.code == 1
    assert failure.line == (
        'start-up failed: auth/token login refused by Vault: "permission denied" '
        "(check VAULT_TOKEN)"
    )


def test_secret_id_file_is_named_when_it_is_used(tmp_path: Path) -> None:
    secret = tmp_path / "secret-id"
    secret.write_text("x-secret\n")
    settings = load_settings(
        BASE | {"VAULT_AUTH_METHOD": "approle", "VAULT_ROLE_ID": "r",
                "VAULT_SECRET_ID_FILE": str(secret)}
    )
    error = startup_error("auth/approle", "token", refused("invalid role or secret ID"))
    assert explain(error, settings).line.endswith("(check VAULT_ROLE_ID and VAULT_SECRET_ID_FILE)")


@pytest.mark.parametrize("method", ["kubernetes", "jwt"])
def test_kubernetes_and_jwt_name_role_and_jwt_file(method: str, tmp_path: Path) -> None:
    jwt = tmp_path / "jwt"
    jwt.write_text("a.b.c")
    settings = load_settings(
        BASE | {"VAULT_AUTH_METHOD": method, "VAULT_AUTH_ROLE": "app", "VAULT_JWT_FILE": str(jwt)}
    )
    error = startup_error(f"auth/{method}", "token", refused('role "app" not found'))
    assert explain(error, settings).line.endswith("(check VAULT_AUTH_ROLE and VAULT_JWT_FILE)")


def test_a_login_path_with_no_mount_names_the_mount() -> None:
    settings = load_settings(BASE | {"VAULT_TOKEN": "s.abc", "VAULT_AUTH_METHOD": "TOKEN"})
    error = InvalidPath("Not Found", status=404, errors=["no handler for route"])
    line = explain(startup_error("auth/approle", "token", error), settings).line
    assert line.endswith("(check VAULT_AUTH_METHOD and VAULT_AUTH_MOUNT)")


def test_static_role_refusal_names_the_static_setting() -> None:
    settings = load_settings(
        {k: v for k, v in BASE.items() if k != "VAULT_DB_ROLE"}
        | {"VAULT_TOKEN": "s.abc", "VAULT_DB_STATIC_ROLE": "svc"}
    )
    error = startup_error("database/static-creds/svc", "database_static", refused("unknown role"))
    assert explain(error, settings).line.endswith("(check VAULT_DB_STATIC_ROLE)")


def test_setting_and_client_argument_errors_exit_2() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({})
    assert explain(info.value, None).code == 2
    failure = explain(InvalidConfig("VAULT_MAX_RETRIES must be an integer, got 'x'"), None)
    assert (failure.code, failure.line) == (
        2, "configuration error: VAULT_MAX_RETRIES must be an integer, got 'x'"
    )


def test_an_argument_the_client_rejects_is_a_setting_error() -> None:
    settings = load_settings(BASE | {"VAULT_TOKEN": "s.abc"})
    error = InvalidConfig("role must be one path segment, got 'a/b'")
    found = diagnose("database/creds/a/b", "database_dynamic", error, "http://127.0.0.1:8200")
    failure = explain(
        StartupError(found, secret="database/creds/a/b", kind="database_dynamic", error=error),
        settings,
    )
    assert (failure.code, failure.line) == (
        2,
        "configuration error: database/creds/a/b: role must be one path segment, got 'a/b' "
        "(check VAULT_DB_ROLE)",
    )


def test_an_unreachable_cluster_points_at_both_address_settings() -> None:
    error = VaultConnectionError("no response from any of 2 Vault nodes (ConnectError)")
    addrs = ("http://127.0.0.1:1", "http://127.0.0.1:2")
    found = diagnose("auth/approle", "token", error, addrs)
    startup = StartupError(found, secret="auth/approle", kind="token", error=error, addrs=addrs)
    failure = explain(startup, None)
    assert failure.code == 1
    assert failure.line == (
        "start-up failed: none of the 2 Vault nodes is answering (http://127.0.0.1:1, "
        "http://127.0.0.1:2; no response) (check VAULT_ADDR and VAULT_FAILOVER_ADDRS, "
        "or raise VAULT_STARTUP_TIMEOUT)"
    )
