"""The compose file's migrate and app environments, outside containers, after deploy/*.sh.

Each reads the secret_id vault-init.sh wrote (as root: the file belongs to APP_UID), logs in
on its own AppRole, and does its job: migrations create the schema as the owner, the service
reads and writes it with its own login and answers the app's healthcheck.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.compose import app_healthcheck
from tests.support.deploy import COMPOSE, Deployed, deployed_stack
from tests.support.service import ServiceProcess, run_migrations

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def initialised() -> Iterator[Deployed]:
    with deployed_stack() as deployed:
        result = deployed.vault_init()
        assert result.returncode == 0, result.stdout + result.stderr
        yield deployed


def test_migrate_then_serve_with_the_compose_environment(initialised: Deployed) -> None:
    run_migrations(initialised.service_env("migrate"))
    with ServiceProcess(initialised.service_env("app")) as service:
        status, body = service.healthz()
        assert status == 200, body
        name = f"deploy-{uuid.uuid4().hex[:8]}"
        created = httpx.post(
            f"{service.base_url}/users", timeout=10,
            json={"username": name, "email": f"{name}@example.test"},
        )
        assert created.status_code == 201, created.text
        read = httpx.get(f"{service.base_url}/users/{created.json()['id']}", timeout=10)
        assert read.json()["username"] == name
        assert app_healthcheck(COMPOSE, service.port).returncode == 0
    assert app_healthcheck(COMPOSE, service.port).returncode != 0  # stopped: unhealthy
