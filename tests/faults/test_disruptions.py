"""PostgreSQL restarts, and leases or tokens revoked behind the service's back, under load:
the service recovers by itself; the failed requests are counted and reported."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.support.health import healthz, wait_for_health
from tests.support.load import run_load
from tests.support.service import ServiceProcess
from vault_async.devstack import DevStack


async def test_postgres_restart_under_load(stack: DevStack) -> None:
    env = stack.env()
    with ServiceProcess(env) as service:
        load = asyncio.create_task(run_load(service.base_url, concurrency=8, duration=16))
        await asyncio.sleep(4)
        down_at = time.monotonic()
        back_at = await asyncio.to_thread(stack.restart_postgres)
        result = await load
    failures = result.failures
    late = [o for o in failures if o.started > back_at + 5]
    after_back = [o for o in result.outcomes if o.started > back_at + 5]
    print(
        f"postgres restart (down {back_at - down_at:.1f} s): {result.summary()}; "
        f"failures started {[round(o.started - back_at, 2) for o in failures][:10]} s "
        "relative to PostgreSQL accepting again"
    )
    assert after_back, "the load ended before recovery could be observed"
    assert not late, f"{len(late)} requests failed more than 5 s after PostgreSQL was back"
    # Only requests in flight around the restart may fail.
    assert all(o.started <= back_at + 1.0 for o in failures), [
        (round(o.started - back_at, 2), o.detail) for o in failures
    ]


def service_token_accessors(stack: DevStack) -> list[str]:
    """Accessors of the AppRole tokens Vault holds (the services' own tokens)."""
    listing = stack.vault_call("LIST", "auth/token/accessors")
    found = []
    for accessor in listing["data"]["keys"]:
        info = stack.vault_call("POST", "auth/token/lookup-accessor", {"accessor": accessor})
        if info["data"].get("path", "").startswith("auth/approle/login"):
            found.append(accessor)
    return found


async def run_disruption(
    stack: DevStack, role: str, disrupt: str
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    stack.create_dynamic_role(role, "1h", "24h")
    with ServiceProcess(stack.env() | {"VAULT_DB_ROLE": role}) as service:
        _, before = await healthz(service.base_url)
        load = asyncio.create_task(run_load(service.base_url, concurrency=8, duration=20))
        await asyncio.sleep(4)
        if disrupt == "lease":
            stack.vault_call("PUT", f"sys/leases/revoke-prefix/{stack.db_mount}/creds/{role}")
        else:
            for accessor in service_token_accessors(stack):
                stack.vault_call("POST", "auth/token/revoke-accessor", {"accessor": accessor})
        generation = before["database"]["generation"]
        after = await wait_for_health(
            service.base_url,
            lambda body: body["status"] == "ok" and body["database"]["generation"] > generation,
            within=14,
        )
        result = await load
        tail = await run_load(service.base_url, concurrency=4, duration=3)
    return before, after, (result, tail)


async def test_lease_revoked_from_outside_under_load(stack: DevStack) -> None:
    before, after, (result, tail) = await run_disruption(stack, "revoked-lease", "lease")
    print(f"lease revoked under load: {result.summary()}; generation "
          f"{before['database']['generation']} -> {after['database']['generation']}")
    assert tail.errors == 0, tail.failure_kinds()


async def test_token_revoked_from_outside_under_load(stack: DevStack) -> None:
    """Revoking the token also revokes its leases: the service must log in and rotate."""
    before, after, (result, tail) = await run_disruption(stack, "revoked-token", "token")
    print(f"token revoked under load: {result.summary()}; generation "
          f"{before['database']['generation']} -> {after['database']['generation']}")
    assert tail.errors == 0, tail.failure_kinds()
    assert after["token"]["ttl_remaining"] > 0
