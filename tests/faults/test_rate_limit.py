"""A rate-limit quota below a fleet's start-up demand, on a three-node raft cluster.

The services' logins and credential requests are refused with 429 until the quota lets
them through; every replica still becomes ready, and no 429 escapes unhandled.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest

from tests.support.health import wait_for_health
from tests.support.service import ServiceProcess
from vault_async import AppRoleAuth, AsyncVaultClient, ClientConfig
from vault_async.devstack import DevStack
from vault_async.lifecycle import LeaseConfig, LeaseManager

REPLICAS = 4


@pytest.fixture(scope="module")
def cluster() -> Iterator[DevStack]:
    with DevStack(nodes=3) as stack:
        yield stack


def set_quotas(stack: DevStack, *, headers: bool, rate: float) -> None:
    """One login and one credential a second (``rate``) for everyone: below the fleet's need."""
    stack.vault_call(
        "POST", "sys/quotas/config", {"enable_rate_limit_response_headers": headers}
    )
    for name, path in (("logins", "auth/approle/login"), ("creds", "database/creds")):
        stack.vault_call(
            "POST", f"sys/quotas/rate-limit/{name}", {"rate": rate, "interval": "1s", "path": path}
        )


def clear_quotas(stack: DevStack) -> None:
    for name in ("logins", "creds"):
        stack.vault_call("DELETE", f"sys/quotas/rate-limit/{name}")


async def test_a_fleet_over_its_quota_still_starts(cluster: DevStack) -> None:
    set_quotas(cluster, headers=True, rate=1)
    env = cluster.env() | {"VAULT_STARTUP_TIMEOUT": "60"}
    services = [ServiceProcess(env) for _ in range(REPLICAS)]
    try:
        # All at once: each start() waits until its service answers /healthz.
        await asyncio.gather(*(asyncio.to_thread(s.start, 90) for s in services))
        for service in services:
            await wait_for_health(service.base_url, lambda b: b["status"] == "ok", within=30)
    finally:
        for service in services:
            await asyncio.to_thread(service.stop)
        clear_quotas(cluster)
    outputs = [s.output() for s in services]
    assert all(s.returncode == 0 for s in services), [s.returncode for s in services]
    refused = sum(o.count("error_class=RateLimited") for o in outputs)
    assert refused > 0, "the quota never refused anything: the test proves nothing"
    for output in outputs:
        assert "Traceback" not in output
        assert "lease.internal_error" not in output
        # Warned once per run of refusals, not once per refusal.
        assert output.count("WARNING") <= 4, output
    print(f"{REPLICAS} replicas ready through a 1/s quota; {refused} refusals warned about")


async def test_engines_ride_out_a_quota_without_retry_after(cluster: DevStack) -> None:
    set_quotas(cluster, headers=False, rate=2)
    env = cluster.env()
    auth = AppRoleAuth(env["VAULT_ROLE_ID"], env["VAULT_SECRET_ID"])

    async def one(seed: int) -> tuple[int, int]:
        client = AsyncVaultClient(config=ClientConfig(addr=env["VAULT_ADDR"]))
        config = LeaseConfig(relogin_interval=1.0, shutdown_timeout=5.0)
        async with client, LeaseManager(client, config, rng=random.Random(seed)) as mgr:
            token = mgr.manage_token(client, auth)
            creds = mgr.manage_database_credentials(client, role=env["VAULT_DB_ROLE"])
            await creds.wait_ready(timeout=60)
            return token.total_failures, creds.total_failures

    try:
        results = await asyncio.gather(*(one(seed) for seed in range(8)))
    finally:
        clear_quotas(cluster)
    refusals = sum(a + b for a, b in results)
    assert refusals > 0, results  # 8 engines at 2/s: some were refused, all got through
    print(f"8 engines through a 2/s quota without Retry-After; {refusals} refusals")
