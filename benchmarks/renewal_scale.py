"""How the lease engine scales: 10,000 managed leases on one scheduler task.

Everything goes through the real client and adapters; only the transport is an
in-process fake (``httpx.MockTransport``) answering ``database/creds`` and
``sys/leases/renew|revoke/<lease_id>``. Three measurements, in one run:

1. memory per lease (tracemalloc, after every lease is acquired and scheduled);
2. CPU per renewal, on a virtual clock (4 virtual minutes of 60 s leases);
3. idle CPU per minute of wall time, on the real clock, with nothing due
   (1 h leases), and steady-state CPU with 15 s leases (about 950 renewals/s
   for 10,000 leases; 6 s leases in --quick mode).

Usage::

    .venv/bin/python benchmarks/renewal_scale.py            # full: 10,000 leases, 60 s windows
    .venv/bin/python benchmarks/renewal_scale.py --quick    # 2,000 leases, 5 s windows
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import random
import time
import tracemalloc
from urllib.parse import unquote

import httpx

from vault_async import AsyncVaultClient
from vault_async.lifecycle import LeaseConfig, LeaseManager, ManagedSecret, VirtualClock

RENEW = "/v1/sys/leases/renew/"
REVOKE = "/v1/sys/leases/revoke/"


def fake_vault(ttl: int) -> tuple[httpx.MockTransport, dict[str, int]]:
    """A transport that hands out leases of ``ttl`` seconds and renews them forever."""
    ids = itertools.count()
    counts = {"creds": 0, "renew": 0, "revoke": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/v1/database/creds/"):
            counts["creds"] += 1
            n = next(ids)
            return httpx.Response(
                200,
                json={
                    "request_id": f"r{n}",
                    "lease_id": f"database/creds/app/{n:024d}",
                    "lease_duration": ttl,
                    "renewable": True,
                    "data": {"username": f"v-app-{n:012d}", "password": f"pw-{n:020d}"},
                    "warnings": None,
                },
            )
        if path.startswith(RENEW):
            counts["renew"] += 1
            lease_id = unquote(path.removeprefix(RENEW))
            return httpx.Response(
                200,
                json={
                    "request_id": "r",
                    "lease_id": lease_id,
                    "lease_duration": ttl,
                    "renewable": True,
                    "data": None,
                    "warnings": None,
                },
            )
        if path.startswith(REVOKE):
            counts["revoke"] += 1
            return httpx.Response(204)
        return httpx.Response(404, json={"errors": []})

    return httpx.MockTransport(handle), counts


def client_with(transport: httpx.MockTransport) -> AsyncVaultClient:
    return AsyncVaultClient(
        addr="http://127.0.0.1:8200", token="bench-token", transport=transport, max_retries=0
    )


async def manage_all(mgr: LeaseManager, client: AsyncVaultClient, n: int) -> list[ManagedSecret]:
    return [
        mgr.manage_database_credentials(client, role="app", name=f"lease-{i}") for i in range(n)
    ]


async def measure_memory_and_cpu(n: int, virtual_minutes: float) -> dict[str, float]:
    clock = VirtualClock()
    transport, counts = fake_vault(ttl=60)
    async with (
        client_with(transport) as client,
        LeaseManager(
            client, LeaseConfig(revoke_on_shutdown=True), clock=clock, rng=random.Random(1)
        ) as mgr,
    ):
        # Warm up one lease so that imports and caches are not billed to the 10,000.
        warm = mgr.manage_database_credentials(client, role="app", name="warm-up")
        await warm.wait_ready(timeout=10)
        await clock.settle()
        gc.collect()
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        handles = await manage_all(mgr, client, n)
        await clock.settle()
        for h in handles:
            await h.wait_ready(timeout=120)
        await clock.settle()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        per_lease = (after - before) / n

        renew_before = counts["renew"]
        cpu0 = time.process_time()
        await clock.advance(virtual_minutes * 60.0)
        cpu = time.process_time() - cpu0
        renewals = counts["renew"] - renew_before
        tasks = len(asyncio.all_tasks())
        ready = sum(h.ready for h in handles)
    return {
        "bytes_per_lease": per_lease,
        "renewals": renewals,
        "cpu_s": cpu,
        "cpu_us_per_renewal": cpu / max(renewals, 1) * 1e6,
        "tasks_at_idle": tasks,
        "ready": ready,
        "revoked": counts["revoke"],
    }


async def measure_wall_cpu(n: int, ttl: int, seconds: float) -> dict[str, float]:
    transport, counts = fake_vault(ttl=ttl)
    async with client_with(transport) as client, LeaseManager(client) as mgr:
        handles = await manage_all(mgr, client, n)
        for h in handles:
            await h.wait_ready(timeout=120)
        await asyncio.sleep(0.5)  # let the acquisition burst pass
        renew0 = counts["renew"]
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        renewals = counts["renew"] - renew0
    return {
        "cpu_percent": 100.0 * cpu / wall,
        "cpu_s_per_wall_minute": cpu / wall * 60.0,
        "renewals": renewals,
        "wall_s": wall,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 leases, 5 s windows")
    parser.add_argument("--leases", type=int, default=None)
    args = parser.parse_args()
    n = args.leases or (2_000 if args.quick else 10_000)
    window = 5.0 if args.quick else 60.0
    virtual_minutes = 4.0
    steady_ttl = 6 if args.quick else 15

    mem = await measure_memory_and_cpu(n, virtual_minutes)
    idle = await measure_wall_cpu(n, ttl=3600, seconds=window)
    busy = await measure_wall_cpu(n, ttl=steady_ttl, seconds=window)

    print(
        f"renewal_scale: {n} leases, asyncio tasks at idle: "
        f"{mem['tasks_at_idle']} (this script's + the one scheduler), {mem['ready']} ready"
    )
    print(f"  memory per lease          : {mem['bytes_per_lease']:8.0f} B   (target < 2048 B)")
    print(
        f"  CPU per renewal (virtual) : {mem['cpu_us_per_renewal']:8.1f} us  "
        f"({mem['renewals']} renewals over {virtual_minutes:g} virtual min, "
        "client + mock transport included)"
    )
    print(
        f"  idle CPU (1 h leases)     : {idle['cpu_percent']:8.3f} % of a core "
        f"= {idle['cpu_s_per_wall_minute']:.3f} CPU-s per wall minute "
        f"({idle['renewals']} renewals in {idle['wall_s']:.0f} s; target < 1 %)"
    )
    print(
        f"  steady CPU ({steady_ttl:2d} s leases)  : {busy['cpu_percent']:8.3f} % of a core "
        f"({busy['renewals'] / busy['wall_s']:.0f} renewals/s)"
    )
    print(f"  revoked on shutdown       : {mem['revoked']}")


if __name__ == "__main__":
    asyncio.run(main())
