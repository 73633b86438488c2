"""/healthz status transitions and /metrics, against a fake lease engine (no servers)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from vault_async._prometheus import LatencyRecorder, LatencyTransport
from vault_async.fastapi import VaultRuntime, health_router, health_status, metrics_router
from vault_async.lifecycle import SecretState
from vault_async.sqlalchemy import StaticCredentials, bind_credentials

LEASE_ID = "database/creds/app/AbCdEfGhIjKlMnOpQrStUvWx"
PASSWORD = "A1a-super-secret-password"


def state(**changes: Any) -> SecretState:
    base = SecretState(
        name="database/app", kind="database_dynamic", ready=True, ttl_remaining=4.0,
        expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC), renewable=True,
        last_renewal=None, generation=3, renewals=7, rotations=2, consecutive_failures=0,
        total_failures=1, last_error_class=None, degraded=False, next_action="renew",
        next_action_in=1.0, lease_id_suffix=LEASE_ID[-6:],
    )
    return dataclasses.replace(base, **changes)


TOKEN = dataclasses.replace(state(), name="auth/token", kind="token", ttl_remaining=3000.0)


@pytest.mark.parametrize(
    ("db", "token", "recent", "expected"),
    [
        (state(), TOKEN, True, "ok"),
        (state(), None, True, "ok"),
        (state(), TOKEN, False, "degraded"),
        (state(consecutive_failures=2, degraded=True), TOKEN, True, "degraded"),
        (state(), dataclasses.replace(TOKEN, consecutive_failures=1), True, "degraded"),
        (state(ttl_remaining=0.0, degraded=True), TOKEN, False, "failing"),
        (state(ready=False, ttl_remaining=None), TOKEN, True, "failing"),
        (None, TOKEN, True, "failing"),
    ],
)
def test_status_rules(db: Any, token: Any, recent: bool, expected: str) -> None:
    assert health_status(db, token, vault_recent=recent) == expected


def test_plain_mode_is_ok_without_vault() -> None:
    assert health_status(None, None, vault_recent=False, plain=True) == "ok"


class FakeManager:
    def __init__(self) -> None:
        self.states = {"database/app": state(), "auth/token": TOKEN}

    def snapshot(self) -> dict[str, SecretState]:
        return dict(self.states)


@pytest.fixture
async def served() -> AsyncIterator[tuple[httpx.AsyncClient, FakeManager, LatencyRecorder]]:
    engine = create_async_engine("postgresql+asyncpg://127.0.0.1:9/app")
    binding = bind_credentials(engine, StaticCredentials("u", PASSWORD))
    manager = FakeManager()
    latency = LatencyRecorder()
    app = FastAPI()
    app.include_router(health_router())
    app.include_router(metrics_router())
    app.state.vault_runtime = VaultRuntime(
        engine=engine, sessionmaker=async_sessionmaker(engine), binding=binding,
        latency=latency, client=None, manager=manager,
        db_secret="database/app", token_secret="auth/token",
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        yield client, manager, latency
    binding.detach()
    await engine.dispose()


async def test_healthz_transitions(
    served: tuple[httpx.AsyncClient, FakeManager, LatencyRecorder],
) -> None:
    client, manager, latency = served
    # Vault never answered yet: the credential is valid, so degraded (200).
    response = await client.get("/healthz")
    assert (response.status_code, response.json()["status"]) == (200, "degraded")
    latency.observe(0.01, answered=True)
    response = await client.get("/healthz")
    assert (response.status_code, response.json()["status"]) == (200, "ok")
    body = response.json()
    assert body["database"]["generation"] == 3
    assert body["database"]["rotations"] == 2
    assert body["database"]["ttl_remaining"] == 4.0
    assert body["token"]["ttl_remaining"] == 3000.0
    assert body["vault"]["answered_recently"] is True
    manager.states["database/app"] = state(consecutive_failures=3, degraded=True)
    response = await client.get("/healthz")
    assert (response.status_code, response.json()["status"]) == (200, "degraded")
    manager.states["database/app"] = state(ttl_remaining=-1.0, degraded=True)
    response = await client.get("/healthz")
    assert (response.status_code, response.json()["status"]) == (503, "failing")
    manager.states["database/app"] = state()
    latency.last_success = time.monotonic() - 3600
    response = await client.get("/healthz")
    assert (response.status_code, response.json()["status"]) == (200, "degraded")


async def test_healthz_shows_no_secret_and_no_lease_id(
    served: tuple[httpx.AsyncClient, FakeManager, LatencyRecorder],
) -> None:
    client, _, _ = served
    text = (await client.get("/healthz")).text + (await client.get("/metrics")).text
    assert PASSWORD not in text
    assert LEASE_ID not in text
    assert "AbCdEfGh" not in text


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics body, parsed by prometheus_client: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def secret(name: str, kind: str) -> frozenset[tuple[str, str]]:
    return frozenset({("secret", name), ("kind", kind)})


DB = secret("database/app", "database_dynamic")
NO_LABELS: frozenset[tuple[str, str]] = frozenset()


async def test_metrics_exposition(
    served: tuple[httpx.AsyncClient, FakeManager, LatencyRecorder],
) -> None:
    client, manager, latency = served
    latency.observe(0.02, answered=True)
    latency.observe(3.0, answered=False)
    manager.states["database/app"] = state(rotations=5, renewals=11, consecutive_failures=2)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "# TYPE vault_async_vault_request_duration_seconds histogram" in response.text
    assert "# TYPE vault_async_renewals_total counter" in response.text
    got = samples(response.text)
    health = (await client.get("/healthz")).json()
    assert got["vault_async_rotations_total", DB] == health["database"]["rotations"] == 5
    assert got["vault_async_renewals_total", DB] == health["database"]["renewals"] == 11
    assert got["vault_async_consecutive_failures", DB] == 2
    assert got["vault_async_failures_total", DB] == 1
    assert got["vault_async_ttl_remaining_seconds", DB] == health["database"]["ttl_remaining"]
    assert got["vault_async_ttl_remaining_seconds", secret("auth/token", "token")] == 3000
    assert got["vault_async_pool_swaps_total", NO_LABELS] == health["pool"]["swaps"]
    assert got["vault_async_login_retries_total", NO_LABELS] == health["pool"]["login_retries"]
    bucket = "vault_async_vault_request_duration_seconds_bucket"
    assert got[bucket, frozenset({("le", "0.025")})] == 1
    assert got[bucket, frozenset({("le", "+Inf")})] == 2
    assert got["vault_async_vault_request_duration_seconds_count", NO_LABELS] == 2
    assert got["vault_async_vault_request_duration_seconds_sum", NO_LABELS] == pytest.approx(3.02)


async def test_metrics_of_a_secret_without_ttl_and_of_plain_mode(
    served: tuple[httpx.AsyncClient, FakeManager, LatencyRecorder],
) -> None:
    client, manager, _ = served
    manager.states["database/app"] = state(ready=False, ttl_remaining=None)
    got = samples((await client.get("/metrics")).text)
    assert ("vault_async_ttl_remaining_seconds", DB) not in got
    assert got["vault_async_rotations_total", DB] == 2
    manager.states.clear()
    got = samples((await client.get("/metrics")).text)
    assert not [name for name, labels in got if labels & {("secret", "database/app")}]
    assert got["vault_async_pool_swaps_total", NO_LABELS] == 0


def test_each_runtime_has_its_own_registry() -> None:
    """Two runtimes in one process: no clash, and nothing lands in the default registry."""
    engine = create_async_engine("postgresql+asyncpg://127.0.0.1:9/app")
    runtimes = [
        VaultRuntime(
            engine=engine, sessionmaker=async_sessionmaker(engine),
            binding=bind_credentials(engine, StaticCredentials("u", PASSWORD)),
            manager=FakeManager(),
        )
        for _ in range(2)
    ]
    runtimes[0].latency.observe(0.02, answered=True)
    counts = [
        samples(generate_latest(r.registry).decode())[
            "vault_async_vault_request_duration_seconds_count", NO_LABELS
        ]
        for r in runtimes
    ]
    assert counts == [1, 0]
    assert REGISTRY.get_sample_value("vault_async_vault_request_duration_seconds_count") is None
    assert REGISTRY.get_sample_value("vault_async_rotations_total", dict(DB)) is None
    for runtime in runtimes:
        runtime.binding.detach()


def test_service_client_keeps_the_fast_transport_under_its_latency_recorder() -> None:
    from app.db import build_client
    from app.settings import Settings
    from vault_async._transport import DefaultTransport

    recorder = LatencyRecorder()
    settings = Settings(
        vault_addr="http://127.0.0.1:1",
        vault_token="s.x",
        vault_db_role="app",
        database_url="postgresql+asyncpg://127.0.0.1:1/app",
    )
    client = build_client(settings, recorder)
    transport = client._open()
    # The recorder wraps the aiohttp transport directly, with no httpx adapter between.
    assert isinstance(transport, LatencyTransport)
    assert isinstance(transport._inner, DefaultTransport)
