"""Settings: the env contract, and one clear line for each missing or contradictory setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import SettingsError, check_credential_files, load_settings

URL = "postgresql+asyncpg://127.0.0.1:5432/app"
APPROLE = {
    "VAULT_ADDR": "http://127.0.0.1:8200",
    "VAULT_AUTH_METHOD": "approle",
    "VAULT_ROLE_ID": "role-id",
    "VAULT_SECRET_ID": "s3cr3t-id-value",
    "DATABASE_URL": URL,
    "VAULT_DB_ROLE": "app",
}


def test_approle_environment_is_accepted() -> None:
    settings = load_settings({**APPROLE, "VAULT_DB_MIGRATION_ROLE": "migrator"})
    assert settings.vault_mode
    assert settings.auth_method == "approle"
    assert settings.migration_role == "migrator"
    assert settings.vault_db_mount == "database"
    assert "s3cr3t" not in repr(settings)


def test_auth_method_is_case_insensitive() -> None:
    assert load_settings({**APPROLE, "VAULT_AUTH_METHOD": "AppRole"}).auth_method == "approle"


def test_vault_addr_needs_a_scheme() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**APPROLE, "VAULT_ADDR": "127.0.0.1:8200"})
    assert str(info.value).startswith("VAULT_ADDR must start with http:// or https://")


def test_migration_role_defaults_to_service_role() -> None:
    assert load_settings(APPROLE).migration_role == "app"


def test_plain_mode_uses_url_credentials() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql+asyncpg://me:pw@127.0.0.1/app"})
    assert not settings.vault_mode


def test_a_given_mapping_is_the_whole_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The process environment must not leak into settings read from a mapping.
    monkeypatch.setenv("VAULT_DB_STATIC_ROLE", "from-the-shell")
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    settings = load_settings({"DATABASE_URL": "postgresql+asyncpg://me:pw@127.0.0.1/app"})
    assert settings.vault_db_static_role is None
    assert settings.log_level == "INFO"


def test_token_mode_is_the_default_method() -> None:
    env = {"VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_TOKEN": "hvs.x", "DATABASE_URL": URL,
           "VAULT_DB_STATIC_ROLE": "app-static"}
    assert load_settings(env).auth_method == "token"


def test_empty_values_count_as_unset() -> None:
    with pytest.raises(SettingsError, match=r"^VAULT_ROLE_ID is required"):
        load_settings({**APPROLE, "VAULT_ROLE_ID": ""})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DATABASE_URL": None}, "DATABASE_URL is required"),
        ({"DATABASE_URL": "mysql://h/db"}, "DATABASE_URL must start with postgresql+asyncpg://"),
        ({"DATABASE_URL": "postgresql+asyncpg://u:p@h/db"}, "DATABASE_URL must not carry"),
        ({"DATABASE_URL": "postgresql+asyncpg:///db"}, "DATABASE_URL needs a host"),
        ({"VAULT_DB_STATIC_ROLE": "s"}, "VAULT_DB_ROLE and VAULT_DB_STATIC_ROLE are exclusive"),
        ({"VAULT_ADDR": None}, "VAULT_ADDR is required"),
        ({"VAULT_ROLE_ID": None}, "VAULT_ROLE_ID is required"),
        ({"VAULT_SECRET_ID": None}, "set exactly one of VAULT_SECRET_ID and VAULT_SECRET_ID_FILE"),
        ({"VAULT_SECRET_ID_FILE": "/run/x"}, "set exactly one of VAULT_SECRET_ID"),
        ({"VAULT_AUTH_METHOD": "ldap"}, "VAULT_AUTH_METHOD "),
        ({"VAULT_AUTH_METHOD": "token"}, "VAULT_TOKEN or VAULT_TOKEN_FILE is required"),
        (
            {"VAULT_AUTH_METHOD": "token", "VAULT_TOKEN": "t", "VAULT_TOKEN_FILE": "/run/sink"},
            "VAULT_TOKEN and VAULT_TOKEN_FILE are exclusive; set one",
        ),
        ({"VAULT_TOKEN_FILE": "/run/sink"}, "VAULT_TOKEN_FILE is token auth: unset it with"),
        ({"VAULT_DB_CREDS_FILE": "/run/db.json"}, "VAULT_DB_CREDS_FILE replaces VAULT_DB_ROLE"),
        ({"VAULT_DB_CREDS_FORMAT": "json"}, "VAULT_DB_CREDS_FORMAT needs VAULT_DB_CREDS_FILE"),
        (
            {"VAULT_DB_ROLE": None, "VAULT_DB_CREDS_FILE": "/run/db", "VAULT_DB_CREDS_FORMAT": "x"},
            "VAULT_DB_CREDS_FORMAT ",
        ),
        ({"VAULT_AUTH_METHOD": "kubernetes"}, "VAULT_AUTH_ROLE is required"),
        ({"VAULT_AUTH_METHOD": "jwt", "VAULT_AUTH_ROLE": "r"}, "VAULT_JWT_FILE is required"),
        ({"VAULT_DB_ROLE": None}, "set VAULT_DB_ROLE, VAULT_DB_STATIC_ROLE or VAULT_DB_CREDS_FILE"),
    ],
)
def test_bad_settings_give_one_line_naming_the_variable(
    change: dict[str, str | None], message: str
) -> None:
    env = {**APPROLE}
    for key, value in change.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert "s3cr3t" not in text


def test_credential_files_are_checked_apart_from_the_contract(tmp_path: Path) -> None:
    missing = tmp_path / "secret-id"
    env = {k: v for k, v in APPROLE.items() if k != "VAULT_SECRET_ID"}
    settings = load_settings(env | {"VAULT_SECRET_ID_FILE": str(missing)})  # contract only
    with pytest.raises(SettingsError) as info:
        check_credential_files(settings)
    assert str(info.value) == (
        f"cannot read VAULT_SECRET_ID_FILE '{missing}': No such file or directory"
    )
    missing.write_text("\n")
    with pytest.raises(SettingsError, match="is empty"):
        check_credential_files(settings)
    missing.write_text("a-secret-id\n")
    check_credential_files(settings)


def test_a_credentials_file_needs_no_vault_and_reads_a_token_file(tmp_path: Path) -> None:
    """VAULT_DB_CREDS_FILE alone is enough; with VAULT_ADDR the token may come from a sink."""
    alone = load_settings({"DATABASE_URL": URL, "VAULT_DB_CREDS_FILE": "/run/db.env"})
    assert alone.file_mode
    assert not alone.vault_mode
    assert not alone.uses_vault
    check_credential_files(alone)  # nothing of Vault's to read
    sink = tmp_path / "sink"
    settings = load_settings({
        "DATABASE_URL": URL,
        "VAULT_DB_CREDS_FILE": "/run/db.json",
        "VAULT_DB_CREDS_FORMAT": "JSON",
        "VAULT_ADDR": "http://127.0.0.1:8200",
        "VAULT_TOKEN_FILE": str(sink),
    })
    assert settings.uses_vault
    assert settings.vault_db_creds_format == "json"
    with pytest.raises(SettingsError) as info:
        check_credential_files(settings)
    assert str(info.value) == f"cannot read VAULT_TOKEN_FILE '{sink}': No such file or directory"
    sink.write_text("\n")
    with pytest.raises(SettingsError, match=r"^VAULT_TOKEN_FILE '.*' is empty$"):
        check_credential_files(settings)
    sink.write_text("s.agent-token-value\n")
    check_credential_files(settings)


def test_pool_settings_reach_the_engine_and_the_binding() -> None:
    from app.db import engine_options, prewarm
    from vault_async.sqlalchemy import Prewarm

    defaults = engine_options(load_settings(APPROLE))
    assert (defaults["pool_size"], defaults["max_overflow"]) == (10, 10)
    env = {**APPROLE, "DB_POOL_SIZE": "50", "DB_POOL_OVERFLOW": "0"}
    sized = engine_options(load_settings(env))
    assert (sized["pool_size"], sized["max_overflow"]) == (50, 0)
    assert prewarm(load_settings(APPROLE)) == Prewarm(enabled=True, margin=None)
    assert Prewarm().margin_for(20) == 2
    assert Prewarm().margin_for(50) == 5
    off = load_settings({**APPROLE, "DB_POOL_PREWARM": "false", "DB_POOL_PREWARM_MARGIN": "5"})
    assert prewarm(off) == Prewarm(enabled=False, margin=5)
    with pytest.raises(SettingsError) as info:
        load_settings({**APPROLE, "DB_POOL_SIZE": "0"})
    assert "DB_POOL_SIZE" in str(info.value)
