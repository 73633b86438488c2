"""docker-compose.yml without a Docker engine: it parses, and it matches the settings contract."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings, load_settings
from vault_async.devstack import DevStack

ROOT = Path(__file__).resolve().parents[2]
INTERPOLATION = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _interpolate(value: Any) -> Any:
    """Compose's ``${NAME:-default}`` with nothing set: the default."""
    if isinstance(value, str):
        return INTERPOLATION.sub(lambda m: m.group(2) or "", value)
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return _interpolate(loaded)  # type: ignore[no-any-return]


def test_services_and_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "openbao", "vault-init", "app"}
    assert services["vault-init"]["depends_on"]["openbao"]["condition"] == "service_healthy"
    assert services["vault-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (
        services["app"]["depends_on"]["vault-init"]["condition"]
        == "service_completed_successfully"
    )


def test_every_published_port_is_loopback(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_app_migrates_then_serves(compose: dict[str, Any]) -> None:
    command = " ".join(compose["services"]["app"]["command"])
    assert command.index("alembic upgrade head") < command.index("python -m app")


def test_app_environment_satisfies_the_settings_contract(compose: dict[str, Any]) -> None:
    env = {k: str(v) for k, v in compose["services"]["app"]["environment"].items()}
    unknown = {k for k in env if k.lower() not in Settings.model_fields}
    assert not unknown
    settings = load_settings(env)
    assert settings.vault_mode
    assert settings.auth_method == "approle"
    assert settings.vault_secret_id_file is not None
    # The secret_id file is the one vault-init writes, on the shared volume.
    init_volumes = compose["services"]["vault-init"]["volumes"]
    app_volumes = compose["services"]["app"]["volumes"]
    shared = {v.split(":")[0] for v in init_volumes} & {v.split(":")[0] for v in app_volumes}
    assert shared == {"approle"}
    assert str(settings.vault_secret_id_file).startswith("/run/approle/")
    init_env = compose["services"]["vault-init"]["environment"]
    assert init_env["APPROLE_ROLE_ID"] == env["VAULT_ROLE_ID"]


def test_roles_match_the_dev_stack(compose: dict[str, Any]) -> None:
    env = compose["services"]["app"]["environment"]
    assert env["VAULT_DB_ROLE"] == DevStack.dynamic_role
    assert env["VAULT_DB_MIGRATION_ROLE"] == DevStack.migrator_role
    assert env["DB_OWNER_ROLE"] == DevStack.owner_role
    init_script = (ROOT / "deploy" / "vault-init.sh").read_text()
    pg_script = (ROOT / "deploy" / "postgres-init.sh").read_text()
    for role in (env["VAULT_DB_ROLE"], env["VAULT_DB_MIGRATION_ROLE"]):
        assert f"database/roles/{role} " in init_script
    assert f"CREATE ROLE {env['DB_OWNER_ROLE']} NOLOGIN" in pg_script
    assert "/run/approle/secret_id" in init_script


def test_mounted_files_exist(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), source
    build = compose["services"]["app"]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()
