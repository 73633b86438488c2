"""The reference service under uvicorn, on 5 s / 15 s credentials, under 16 concurrent clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.load import run_load
from tests.support.service import ServiceProcess
from vault_async.devstack import DevStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOAD_SECONDS = 45.0
CONCURRENCY = 16


@dataclass
class HealthLog:
    """What /healthz said, sampled while the load ran."""

    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[int] = field(default_factory=Counter)
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last(self) -> dict[str, Any]:
        return self.samples[-1]

    def max_db(self, key: str) -> Any:
        return max(s["database"][key] for s in self.samples if s.get("database"))

    def min_db(self, key: str) -> Any:
        return min(s["database"][key] for s in self.samples if s.get("database"))


async def sample_health(base_url: str, log: HealthLog, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        while not stop.is_set():
            response = await client.get("/healthz")
            body = response.json()
            log.codes[response.status_code] += 1
            log.statuses[body["status"]] += 1
            log.samples.append(body)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)


def describe(log: HealthLog) -> str:
    return json.dumps(
        {
            "statuses": dict(log.statuses),
            "http_codes": dict(log.codes),
            "max_rotations": log.max_db("rotations"),
            "max_generation": log.max_db("generation"),
            "max_renewals": log.max_db("renewals"),
            "min_ttl_remaining": log.min_db("ttl_remaining"),
            "max_consecutive_failures": log.max_db("consecutive_failures"),
            "last": log.last,
        },
        indent=1,
    )


def error_lines(output: str) -> list[str]:
    """The exception lines of the service's log (what a failed request ran into)."""
    return [
        line for line in output.splitlines()
        if re.match(r"^[\w.]+(Error|Exception)\b", line) or "ERROR" in line
    ]


async def run_service_under_load(
    stack: DevStack, role: str, *, seconds: float,
    disturb: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> tuple[Any, HealthLog, float, int | None, str]:
    env = stack.env() | {"VAULT_DB_ROLE": role}
    service = ServiceProcess(env)
    await asyncio.to_thread(service.start, 60)
    log = HealthLog()
    stop = asyncio.Event()
    try:
        sampler = asyncio.create_task(sample_health(service.base_url, log, stop))
        disturber = asyncio.create_task(disturb()) if disturb else None
        result = await run_load(
            service.base_url, concurrency=CONCURRENCY, duration=seconds, seed=5
        )
        stop.set()
        await asyncio.wait_for(sampler, timeout=10)
        if disturber is not None:
            await asyncio.wait_for(disturber, timeout=10)
    finally:
        stop.set()
        elapsed = await asyncio.to_thread(service.stop)
    output = service.output()
    return result, log, elapsed, service.returncode, output


async def test_rotations_under_load_fail_no_request(migrated: DevStack) -> None:
    migrated.create_dynamic_role("e2e", "5s", "15s")
    result, log, elapsed, code, output = await run_service_under_load(
        migrated, "e2e", seconds=LOAD_SECONDS
    )
    print(f"\n[e2e] {result.summary()}\n[e2e] /healthz during the run: {describe(log)}")
    print(f"[e2e] SIGTERM to exit: {elapsed:.2f} s, exit code {code}")
    assert result.errors == 0, (result.summary(), error_lines(output))
    assert result.requests > 1000
    assert log.max_db("rotations") >= 2
    assert log.codes.keys() == {200}
    assert elapsed < 10
    assert code == 0
    assert not [r for r in await migrated.v_roles() if "-e2e-" in r]


async def test_lease_revoked_from_outside_during_load(migrated: DevStack) -> None:
    migrated.create_dynamic_role("outside", "1h", "2h")

    async def revoke_all() -> None:
        await asyncio.sleep(5)
        prefix = f"{migrated.db_mount}/creds/outside"
        await asyncio.to_thread(migrated.vault_call, "PUT", f"sys/leases/revoke-prefix/{prefix}")

    result, log, _elapsed, code, output = await run_service_under_load(
        migrated, "outside", seconds=15, disturb=revoke_all
    )
    print(f"\n[revoke] {result.summary()}\n[revoke] /healthz: {describe(log)}")
    print("[revoke] service errors:\n" + "\n".join(error_lines(output)[:40]))
    # Recovery by itself: requests in the last third all succeed on a new login.
    tail_start = min(o.started for o in result.outcomes) + 10
    assert all(o.ok for o in result.outcomes if o.started > tail_start)
    assert result.errors <= CONCURRENCY, result.summary()
    assert log.last["pool"]["login_retries"] >= 1
    assert log.last["status"] == "ok"
    assert code == 0
    assert not [r for r in await migrated.v_roles() if "-outside-" in r]
