"""VAULT_STARTUP_JITTER: read as a duration, handed to the lease engine, and the wait for
the first credential is not cut short by it."""

from __future__ import annotations

import random

import httpx
import pytest
import respx

from app.db import lease_config
from app.settings import SettingsError, load_settings
from vault_async import AppRoleAuth, AsyncVaultClient, ClientConfig
from vault_async.lifecycle import LeaseConfig, LeaseManager
from vault_async.runtime import open_runtime

from .test_settings import APPROLE

ADDR = "http://vault.test:8200"


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("10", 10.0), ("2.5", 2.5), ("10s", 10.0), ("500ms", 0.5), ("1m30s", 90.0), ("0", 0.0)],
)
def test_startup_jitter_is_a_duration(raw: str, seconds: float) -> None:
    settings = load_settings({**APPROLE, "VAULT_STARTUP_JITTER": raw})
    assert settings.vault_startup_jitter == seconds
    assert lease_config(settings).startup_jitter == seconds


def test_startup_jitter_is_off_by_default() -> None:
    settings = load_settings(APPROLE)
    assert settings.vault_startup_jitter == 0.0
    config = lease_config(settings)
    assert config.startup_jitter == 0.0
    assert config.shutdown_timeout > 0


@pytest.mark.parametrize("raw", ["-1", "soon", "inf", "nan", "10x"])
def test_a_bad_startup_jitter_names_the_setting(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**APPROLE, "VAULT_STARTUP_JITTER": raw})
    line = str(info.value)
    assert line.startswith("VAULT_STARTUP_JITTER "), line
    assert "\n" not in line


async def test_the_first_credential_wait_starts_after_the_jitter() -> None:
    router = respx.MockRouter(base_url=ADDR + "/v1", assert_all_called=False)
    router.post("/auth/approle/login").respond(200, json={"auth": {
        "client_token": "hvs.notreal", "accessor": "acc", "lease_duration": 600,
        "renewable": True, "policies": ["app"], "token_type": "service",
    }})
    router.get("/database/creds/app").respond(200, json={
        "lease_id": "database/creds/app/abcdef", "lease_duration": 300, "renewable": True,
        "data": {"username": "v-app", "password": "pw"},
    })
    router.put("/auth/token/revoke-self").respond(204)
    router.put("/sys/leases/revoke").respond(204)
    client = AsyncVaultClient(
        config=ClientConfig(addr=ADDR), transport=httpx.MockTransport(router.async_handler)
    )
    # Seed 0 draws 0.51 s of the 0.6 s bound: longer than the 0.2 s ready timeout.
    manager = LeaseManager(client, LeaseConfig(startup_jitter=0.6), rng=random.Random(0))
    async with open_runtime(
        "postgresql+asyncpg://127.0.0.1:1/app", client=client, manager=manager,
        auth=AppRoleAuth("role-id", "secret-id"), db_role="app", ready_timeout=0.2,
    ) as runtime:
        assert runtime.snapshot()["database/creds/app"].ready
