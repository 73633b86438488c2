"""Vault stops answering (SIGSTOP): the service keeps serving while its credential is valid,
says so in /healthz, and recovers by itself once Vault is back."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import anyio
import httpx

from tests.support.health import healthz, poll_statuses, wait_for_health
from tests.support.load import run_load
from tests.support.service import ServiceProcess
from vault_async.devstack import DevStack

PROBE = {"VAULT_HEALTH_PROBE_INTERVAL": "1"}


async def test_vault_paused_20s_while_credential_valid(stack: DevStack) -> None:
    # TTL 33 s: the first renewal falls ~23-24 s after start, inside the pause (6 s .. 26 s),
    # and the credential (valid until 33 s) outlives the pause.
    stack.create_dynamic_role("pause", "33s", "10m")
    env = stack.env() | {"VAULT_DB_ROLE": "pause"} | PROBE
    with ServiceProcess(env) as service:
        load = asyncio.create_task(run_load(service.base_url, concurrency=8, duration=40))
        await asyncio.sleep(6)
        _, before = await healthz(service.base_url)
        assert before["status"] == "ok", before
        stack.pause_vault()
        try:
            during = await poll_statuses(service.base_url, 20)
        finally:
            stack.resume_vault()
        after = await wait_for_health(
            service.base_url,
            lambda body: body["status"] == "ok" and body["database"]["renewals"] >= 1,
            within=30,
        )
        result = await load
    print(f"vault paused 20 s: {result.summary()}; statuses during: {sorted(set(during))}")
    assert result.errors == 0, result.failure_kinds()
    assert "degraded" in during
    assert "failing" not in during
    assert after["database"]["generation"] == before["database"]["generation"]


async def _db_requests(
    base_url: str, seen: list[tuple[float, int]], served: asyncio.Event, stop: asyncio.Event
) -> None:
    """GET /users every 0.2 s until `stop`, into `seen` (monotonic time, status or 0);
    `served` is set by every 200."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        while not stop.is_set():
            try:
                status = (await http.get("/users", params={"limit": 1})).status_code
            except httpx.HTTPError:
                status = 0
            seen.append((time.monotonic(), status))
            if status == 200:
                served.set()
            await asyncio.sleep(0.2)


async def test_vault_paused_past_expiry_goes_failing_then_recovers_promptly(
    stack: DevStack,
) -> None:
    # The credential expires during the pause, and the pause outlasts it by 20 s. A short
    # client timeout makes each call to the paused Vault fail in 2 s (as a refused or
    # black-holed connection would), so the engine fails again and again with no valid
    # credential, while requests keep asking the pool for connections. Once Vault answers
    # again the service serves within a few seconds (the retries are at most
    # expired_retry_max apart), not after a backoff grown towards a minute.
    stack.create_dynamic_role("expire", "12s", "12s")
    env = stack.env() | {"VAULT_DB_ROLE": "expire", "VAULT_CLIENT_TIMEOUT": "2"} | PROBE
    with ServiceProcess(env) as service:
        _, before = await healthz(service.base_url)
        expires_at = dt.datetime.fromisoformat(before["database"]["expires_at"])
        stop = asyncio.Event()
        seen: list[tuple[float, int]] = []
        served = asyncio.Event()
        requests = asyncio.create_task(_db_requests(service.base_url, seen, served, stop))
        stack.pause_vault()
        try:
            first_failing: dt.datetime | None = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                status, body = await healthz(service.base_url)
                if body["status"] == "failing":
                    assert status == 503
                    first_failing = dt.datetime.now(dt.UTC)
                    break
                await asyncio.sleep(0.2)
            past_expiry = (expires_at - dt.datetime.now(dt.UTC)).total_seconds() + 20
            await asyncio.sleep(max(0.0, past_expiry))
        finally:
            stack.resume_vault()
        resumed = time.monotonic()
        served.clear()
        assert first_failing is not None, "/healthz never said failing"
        assert first_failing <= expires_at, (first_failing, expires_at)

        generation = before["database"]["generation"]
        recovered = await wait_for_health(
            service.base_url,
            lambda body: body["status"] == "ok" and body["database"]["generation"] > generation,
            within=45,
        )
        healthy_after = time.monotonic() - resumed
        with anyio.fail_after(45):
            await served.wait()
        stop.set()
        await requests
        assert recovered["database"]["ttl_remaining"] > 0
        result = await run_load(service.base_url, concurrency=4, duration=3)
        log = service.output()
    during = sorted({status for t, status in seen if t < resumed})
    first_ok = next(t for t, status in seen if t >= resumed and status == 200)
    db_after = first_ok - resumed
    warnings = sum(1 for line in log.splitlines() if "pool.login_rejected" in line)
    print(
        f"vault paused until 20 s past expiry: /healthz ok {healthy_after:.1f} s and first "
        f"200 on GET /users {db_after:.1f} s after the resume; statuses of GET /users during "
        f"the pause: {during}; {len(seen)} requests, {warnings} pool.login_rejected lines; "
        f"after recovery: {result.summary()}"
    )
    assert healthy_after < 15, healthy_after
    assert db_after < 15, db_after
    # Every request met the rejected login; at most one WARNING per condition per 10 s.
    assert warnings <= 8, warnings
    assert result.errors == 0, result.failure_kinds()
