"""docker-compose.yml without a Docker engine: it matches the settings contract."""

from __future__ import annotations

from typing import Any

import pytest

from app.settings import Settings, load_settings
from tests.support.compose import ROOT, load_compose
from vault_async.devstack import DevStack


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_services_and_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "openbao", "vault-init", "migrate", "app"}
    assert services["vault-init"]["depends_on"]["openbao"]["condition"] == "service_healthy"
    assert services["vault-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (
        services["migrate"]["depends_on"]["vault-init"]["condition"]
        == "service_completed_successfully"
    )
    assert (
        services["app"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    )


def test_every_published_port_is_loopback(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_migrate_migrates_and_app_serves(compose: dict[str, Any]) -> None:
    assert " ".join(compose["services"]["migrate"]["command"]) == "alembic upgrade head"
    command = " ".join(compose["services"]["app"]["command"])
    assert command.startswith("python -m app")
    assert "alembic" not in command


def _volume_sources(service: dict[str, Any]) -> dict[str, str]:
    """Named volume -> where the service mounts it."""
    return {v.split(":")[0]: v.split(":")[1] for v in service.get("volumes", [])}


@pytest.mark.parametrize(
    ("service", "volume", "role_id_variable", "dir_variable"),
    [
        ("app", "approle", "APPROLE_ROLE_ID", "SECRET_ID_DIR"),
        ("migrate", "approle-migrator", "MIGRATOR_APPROLE_ROLE_ID", "MIGRATOR_SECRET_ID_DIR"),
    ],
)
def test_environment_satisfies_the_settings_contract(
    compose: dict[str, Any], service: str, volume: str, role_id_variable: str, dir_variable: str
) -> None:
    """Each of app and migrate logs in on its own AppRole, with the secret_id vault-init wrote.

    vault-init.sh writes ``$SECRET_ID_DIR/secret_id`` and ``$MIGRATOR_SECRET_ID_DIR/secret_id``
    (tests/integration/test_deploy_scripts.py runs it); its defaults are compose's paths.
    """
    services = compose["services"]
    env = {k: str(v) for k, v in services[service]["environment"].items()}
    unknown = {k for k in env if k.lower() not in Settings.model_fields}
    assert not unknown
    settings = load_settings(env)
    assert settings.vault_mode
    assert settings.auth_method == "approle"
    assert settings.vault_secret_id_file is not None
    init_volumes = _volume_sources(services["vault-init"])
    own_volumes = _volume_sources(services[service])
    assert set(own_volumes) == {volume}  # the other login's secret_id is not mounted here
    assert str(settings.vault_secret_id_file) == own_volumes[volume] + "/secret_id"
    init_env = services["vault-init"]["environment"]
    assert init_env[dir_variable] == init_volumes[volume]
    script = (ROOT / "deploy" / "vault-init.sh").read_text()
    assert f'{dir_variable}="${{{dir_variable}:-{init_volumes[volume]}}}"' in script
    assert init_env[role_id_variable] == env["VAULT_ROLE_ID"]


def test_roles_match_the_dev_stack(compose: dict[str, Any]) -> None:
    env = compose["services"]["migrate"]["environment"]
    assert compose["services"]["app"]["environment"]["VAULT_DB_ROLE"] == DevStack.dynamic_role
    assert env["VAULT_DB_ROLE"] == DevStack.dynamic_role
    assert env["VAULT_DB_MIGRATION_ROLE"] == DevStack.migrator_role
    assert env["DB_OWNER_ROLE"] == DevStack.owner_role
    init_script = (ROOT / "deploy" / "vault-init.sh").read_text()
    pg_script = (ROOT / "deploy" / "postgres-init.sh").read_text()
    for role in (env["VAULT_DB_ROLE"], env["VAULT_DB_MIGRATION_ROLE"]):
        assert f"database/roles/{role} " in init_script
    assert f"CREATE ROLE {env['DB_OWNER_ROLE']} NOLOGIN" in pg_script


def test_mounted_files_exist(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), source
    for name in ("app", "migrate"):
        build = compose["services"][name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()
