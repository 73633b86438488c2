"""Vault stops answering (SIGSTOP): the service keeps serving while its credential is valid,
says so in /healthz, and recovers by itself once Vault is back."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

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


async def test_vault_paused_until_expiry_goes_failing_then_recovers(stack: DevStack) -> None:
    stack.create_dynamic_role("expire", "12s", "12s")
    env = stack.env() | {"VAULT_DB_ROLE": "expire"} | PROBE
    with ServiceProcess(env) as service:
        _, before = await healthz(service.base_url)
        expires_at = dt.datetime.fromisoformat(before["database"]["expires_at"])
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
        finally:
            stack.resume_vault()
        assert first_failing is not None, "/healthz never said failing"
        assert first_failing <= expires_at, (first_failing, expires_at)

        generation = before["database"]["generation"]
        recovered = await wait_for_health(
            service.base_url,
            lambda body: body["status"] == "ok" and body["database"]["generation"] > generation,
            within=45,
        )
        assert recovered["database"]["ttl_remaining"] > 0
        result = await run_load(service.base_url, concurrency=4, duration=3)
    print(f"after recovery: {result.summary()}")
    assert result.errors == 0, result.failure_kinds()
