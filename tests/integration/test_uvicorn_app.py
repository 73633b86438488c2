"""`uvicorn app.main:app`: the lifespan builds and tears down the runtime itself."""

from __future__ import annotations

import asyncio
import signal
import sys

import httpx
import pytest

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
