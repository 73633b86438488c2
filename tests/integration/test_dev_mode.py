"""`python -m app --dev`: the README's one command, on a fresh dev stack of its own."""

from __future__ import annotations

import asyncio
import re
import sys

import httpx
import psutil
import pytest

from tests.support.service import ServiceProcess

pytestmark = pytest.mark.integration


async def test_dev_mode_migrates_serves_and_cleans_up() -> None:
    service = ServiceProcess({}, argv=[sys.executable, "-m", "app", "--dev"])
    await asyncio.to_thread(service.start, 90)
    try:
        children = [p.pid for p in psutil.Process(service.pid).children(recursive=True)]
        assert children, "the dev stack's servers run as children of the service"
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as client:
            created = await client.post("/users", json={"username": "dev", "email": "d@x.test"})
            assert created.status_code == 201, created.text
            user_id = created.json()["id"]
            assert (await client.get(f"/users/{user_id}")).json()["username"] == "dev"
            assert (await client.get("/users/999999")).status_code == 404
            assert (await client.post("/users", json={"username": "dev", "email": "d@x.test"})
                    ).status_code == 409
            assert (await client.post("/users", json={"username": "", "email": "nope"})
                    ).status_code == 422
            listed = await client.get("/users", params={"limit": 5, "offset": 0})
            assert [u["username"] for u in listed.json()] == ["dev"]
            health = (await client.get("/healthz")).json()
            assert health["status"] == "ok"
            assert health["mode"] == "vault"
    finally:
        elapsed = await asyncio.to_thread(service.stop)
    assert service.returncode == 0
    assert elapsed < 15
    assert not [pid for pid in children if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    output = service.output()
    assert re.search(r"lease\.revoked", output)
