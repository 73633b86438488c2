"""Does the service stay flat while it rotates credentials for a long time?

    python benchmarks/soak.py --minutes 10 [--quick]

The reference service in rotating mode (default_ttl 5 s / max_ttl 15 s: a new login every
10-15 s) under steady load at concurrency 16. Every interval it prints the service's resident
memory, its open PostgreSQL connections, the `v-` roles present in pg_roles and the errors so
far. Targets: memory growth under 5 % after warm-up, live `v-` roles never more than two
generations (at most 2 at once), zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.load import run_load
from tests.support.service import ServiceProcess, run_migrations
from vault_async.devstack import DevStack

ROLE = "soak"


async def sample(stack: DevStack, pid: int) -> tuple[float, int, int]:
    """(resident MiB, open connections of the service's logins, live v- roles of this role)."""
    rss = psutil.Process(pid).memory_info().rss / 2**20
    conn = await stack.admin_connect()
    try:
        connections = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE $1", f"v-%-{ROLE}-%"
        )
    finally:
        await conn.close()
    roles = [r for r in await stack.v_roles() if f"-{ROLE}-" in r]
    return rss, int(connections), len(roles)


async def soak(stack: DevStack, service: ServiceProcess, warmup: float, total: float,
               interval: float) -> int:
    await run_load(service.base_url, concurrency=16, duration=warmup)
    base_rss, _, _ = await sample(stack, service.pid)
    print(f"after {warmup:.0f} s warm-up: rss {base_rss:.1f} MiB")
    print(f"{'t (s)':>7} {'rss MiB':>8} {'conns':>5} {'v-roles':>7} {'req':>7} {'errors':>6}")
    started = time.monotonic()
    requests = errors = 0
    max_roles = 0
    rss = base_rss
    while time.monotonic() - started < total:
        result = await run_load(service.base_url, concurrency=16, duration=interval)
        requests += result.requests
        errors += result.errors
        rss, conns, roles = await sample(stack, service.pid)
        max_roles = max(max_roles, roles)
        print(f"{time.monotonic() - started:7.0f} {rss:8.1f} {conns:5d} {roles:7d} "
              f"{requests:7d} {errors:6d}", flush=True)
    _, health = service.healthz()
    growth = (rss - base_rss) / base_rss
    rotations = health["database"]["rotations"]
    verdict = "met" if growth < 0.05 else "MISSED"
    print(f"\nmemory growth after warm-up: {growth:+.1%} (target < 5 %: {verdict})")
    print(f"most live v- roles at once: {max_roles} (target <= 2); rotations: {rotations}")
    print(f"requests: {requests}, errors: {errors} (target 0)")
    # Failed requests and leaked logins are correctness failures; memory is reported above.
    return 0 if errors == 0 and max_roles <= 2 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="30 s: proves it runs")
    args = parser.parse_args()
    total = 30.0 if args.quick else args.minutes * 60
    warmup = 10.0 if args.quick else 60.0
    interval = 5.0 if args.quick else 30.0
    with DevStack() as stack:
        stack.create_dynamic_role(ROLE, "5s", "15s")
        run_migrations(stack.env())
        with ServiceProcess(stack.env() | {"VAULT_DB_ROLE": ROLE}) as service:
            return asyncio.run(soak(stack, service, warmup, total, interval))


if __name__ == "__main__":
    raise SystemExit(main())
