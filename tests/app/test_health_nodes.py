"""/healthz and /metrics name the node that answered last and each node's last-known state."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from vault_async import AsyncVaultClient, ClientConfig
from vault_async.fastapi import VaultRuntime, health_router, metrics_router
from vault_async.sqlalchemy import StaticCredentials, bind_credentials

A, B = "http://vault-a.test:8200", "http://vault-b.test:8200"
TOKEN = "hvs.NODES-TEST-TOKEN-NOT-SHOWN"
STATES = ("active", "standby", "sealed", "down", "unknown")


async def no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def app_client() -> AsyncIterator[tuple[httpx.AsyncClient, AsyncVaultClient]]:
    router = respx.MockRouter(assert_all_called=False)
    router.get(A + "/v1/sys/mounts").mock(side_effect=httpx.ConnectError("refused"))
    router.get(B + "/v1/sys/mounts").respond(200, json={})
    router.get(A + "/v1/sys/health").mock(side_effect=httpx.ConnectError("refused"))
    router.get(B + "/v1/sys/health").respond(200, json={})
    vault = AsyncVaultClient(
        config=ClientConfig(addr=A, failover_addrs=(B,), token=TOKEN),
        transport=httpx.MockTransport(router.async_handler),
        rng=random.Random(1),
        sleep=no_sleep,
    )
    engine = create_async_engine("postgresql+asyncpg://127.0.0.1:9/app")
    binding = bind_credentials(engine, StaticCredentials("u", "p"))
    app = FastAPI()
    app.include_router(health_router())
    app.include_router(metrics_router())
    app.state.vault_runtime = VaultRuntime(
        engine=engine, sessionmaker=async_sessionmaker(engine), binding=binding, client=vault,
    )
    async with vault, httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app"
    ) as client:
        yield client, vault
    binding.detach()
    await engine.dispose()


async def test_healthz_and_metrics_show_the_nodes(
    app_client: tuple[httpx.AsyncClient, AsyncVaultClient],
) -> None:
    client, vault = app_client
    body = (await client.get("/healthz")).json()
    assert body["vault"]["last_node"] is None
    assert body["vault"]["nodes"] == [
        {"addr": A, "state": "unknown"},
        {"addr": B, "state": "unknown"},
    ]
    await vault.request("GET", "sys/mounts", idempotent=True)  # A refuses, B answers
    body = (await client.get("/healthz")).json()
    assert body["vault"]["last_node"] == B
    assert body["vault"]["nodes"][0] == {"addr": A, "state": "down"}
    text = (await client.get("/metrics")).text
    assert TOKEN not in text + str(body)
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("vault_async_vault_")
        and not sample.name.startswith("vault_async_vault_request")
    }
    gauge = "vault_async_vault_node_state"
    a_state = {s: found[gauge, (("node", A), ("state", s))] for s in STATES}
    assert a_state == {s: float(s == "down") for s in STATES}
    b_states = [found[gauge, (("node", B), ("state", s))] for s in STATES]
    assert sum(b_states) == 1.0
    assert found["vault_async_vault_last_node", (("node", B),)] == 1.0
    assert found["vault_async_vault_last_node", (("node", A),)] == 0.0


async def test_node_health_checks_are_not_counted_as_vault_answering() -> None:
    """The node watcher's sys/health probes are not the service's Vault traffic: a sealed
    cluster answers them, but that must not make /healthz say Vault answered, nor fill the
    request-duration histogram."""
    import httpx

    from vault_async._nodes import HEALTH_QUERY
    from vault_async._prometheus import LatencyRecorder, LatencyTransport

    def sealed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"sealed": True})

    recorder = LatencyRecorder()
    transport = LatencyTransport(httpx.MockTransport(sealed), recorder, 5.0)
    await transport.send("GET", "http://127.0.0.1:1/v1/" + HEALTH_QUERY, {}, None)
    assert recorder.last_success is None
    assert requests_counted(recorder) == 0

    await transport.send("GET", "http://127.0.0.1:1/v1/secret/data/x", {}, None)
    assert recorder.last_success is not None
    assert requests_counted(recorder) == 1


def requests_counted(recorder: object) -> float:
    from vault_async._prometheus import LatencyRecorder

    assert isinstance(recorder, LatencyRecorder)
    samples = recorder.histogram.collect()[0].samples
    return next(s.value for s in samples if s.name.endswith("_count"))
