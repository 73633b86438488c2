"""`uvicorn app.main:app`: the lifespan builds and tears down the runtime itself."""

from __future__ import annotations

import asyncio
import signal
import sys

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.support.service import ServiceProcess
from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration


async def test_plain_uvicorn_runs_the_lifespan(migrated: DevStack) -> None:
    before = set(await migrated.v_roles())
    service = ServiceProcess(
        migrated.env(), argv=[sys.executable, "-m", "uvicorn", "app.main:app"]
    )
    await asyncio.to_thread(service.start, 60)
    try:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as client:
            health = (await client.get("/healthz")).json()
            assert health["status"] == "ok"
            assert (await client.get("/users", params={"limit": 1})).status_code == 200
            metrics = await client.get("/metrics")
            after = (await client.get("/healthz")).json()
        assert metrics.headers["content-type"] == CONTENT_TYPE_LATEST
        families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
        kind = health["database"]["kind"]
        for family, field in (("vault_async_rotations", "rotations"),
                              ("vault_async_renewals", "renewals")):
            [value] = [s.value for s in families[family].samples
                       if s.name == family + "_total" and s.labels["kind"] == kind]
            assert health["database"][field] <= value <= after["database"][field], family
        [answered] = [s.value for s in families["vault_async_vault_request_duration_seconds"]
                      .samples if s.name.endswith("_count")]
        assert answered > 0, "requests to Vault go through the latency histogram"
        during = set(await migrated.v_roles()) - before
        assert during
    finally:
        await asyncio.to_thread(service.stop)
    # uvicorn re-raises SIGTERM once its graceful shutdown (lifespan included) is done.
    assert service.returncode in (0, -15)
    assert "Application shutdown complete" in service.output()
    assert not (set(await migrated.v_roles()) & during)


async def test_sigint_shuts_down_like_sigterm(migrated: DevStack) -> None:
    before = set(await migrated.v_roles())
    service = ServiceProcess(migrated.env())
    await asyncio.to_thread(service.start, 60)
    try:
        during = set(await migrated.v_roles()) - before
        assert during
    finally:
        took = await asyncio.to_thread(service.stop, signal.SIGINT)
    assert service.returncode == 0
    assert took < 10
    assert not (set(await migrated.v_roles()) & during)
