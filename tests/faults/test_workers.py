"""Two uvicorn workers: each holds and rotates its own lease; SIGTERM revokes all of them."""

from __future__ import annotations

import asyncio
import sys
import time

from tests.support.health import healthz
from tests.support.service import ServiceProcess
from vault_async.devstack import DevStack


async def test_two_workers_each_rotate_and_sigterm_revokes_all(stack: DevStack) -> None:
    stack.create_dynamic_role("workers", "5s", "15s")
    argv = [sys.executable, "-m", "uvicorn", "app.main:app", "--workers", "2"]
    service = ServiceProcess(stack.env() | {"VAULT_DB_ROLE": "workers"}, argv=argv)
    with service:
        generations: dict[int, int] = {}
        seen_roles: set[str] = set()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            _, body = await healthz(service.base_url)
            pid = int(body["process"]["pid"])
            generations[pid] = max(generations.get(pid, 0), int(body["database"]["generation"]))
            seen_roles.update(r for r in await stack.v_roles() if "-workers-" in r)
            if len(generations) == 2 and min(generations.values()) >= 2:
                break
            await asyncio.sleep(0.3)
        assert len(generations) == 2, generations
        assert min(generations.values()) >= 2, generations
        assert len(seen_roles) >= 4, seen_roles
        took = await asyncio.to_thread(service.stop)
        assert service.returncode is not None
    print(f"two workers: generations {generations}, {len(seen_roles)} logins, exit in {took:.1f} s")
    assert took < 10
    left = [r for r in await stack.v_roles() if "-workers-" in r]
    assert left == [], left
