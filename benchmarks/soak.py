"""Does the service stay flat while it rotates credentials for a long time?

    python benchmarks/soak.py --minutes 10 [--warmup 120] [--quick]

Two copies of the reference service run side by side under the same steady load
(concurrency 16 each): `rotating` (default_ttl 5 s / max_ttl 15 s: a new login every
10-15 s) and `plain` (a fixed login), the baseline measured in the same run. Every interval
it prints each one's resident memory, the rotating service's open PostgreSQL connections,
its `v-` roles present in pg_roles, and the requests and errors so far.
Targets: rotating memory growth under 5 % after warm-up (printed next to plain's growth, so
what the interpreter and allocator do anyway is visible, and again over the run's second
half), live `v-` roles never more than
two generations (at most 2 at once), zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.load import LoadResult, run_load
from tests.support.modes import ROTATING_ROLE, service_modes
from tests.support.service import ServiceProcess, run_migrations
from vault_async.devstack import DevStack

MODES = ("plain", "rotating")


def rss_mib(service: ServiceProcess) -> float:
    return float(psutil.Process(service.pid).memory_info().rss) / 2**20


async def rotating_logins(stack: DevStack) -> tuple[int, int]:
    """(open connections of the rotating service's logins, its live v- roles)."""
    async with stack.admin_connection() as conn:
        connections = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE $1",
            f"v-%-{ROTATING_ROLE}-%",
        )
    roles = [r for r in await stack.v_roles() if f"-{ROTATING_ROLE}-" in r]
    return int(connections), len(roles)


async def load_all(
    services: dict[str, ServiceProcess], seconds: float, known: dict[str, list[int]]
) -> list[LoadResult]:
    """Load every service at once; ``known`` (user ids per mode) is read and updated."""
    results = await asyncio.gather(*(
        run_load(service.base_url, concurrency=16, duration=seconds, ids=known.get(mode))
        for mode, service in services.items()
    ))
    for mode, result in zip(services, results, strict=True):
        known[mode] = result.ids
    return results


async def soak(stack: DevStack, services: dict[str, ServiceProcess], warmup: float,
               total: float, interval: float) -> int:
    known: dict[str, list[int]] = {}
    await load_all(services, warmup, known)
    base = {mode: rss_mib(service) for mode, service in services.items()}
    print(f"after {warmup:.0f} s warm-up: rss plain {base['plain']:.1f} MiB, "
          f"rotating {base['rotating']:.1f} MiB")
    print(f"{'t (s)':>7} {'plain MiB':>9} {'rot. MiB':>9} {'conns':>5} {'v-roles':>7} "
          f"{'req':>8} {'errors':>6}")
    started = time.monotonic()
    requests = errors = max_roles = 0
    rss = dict(base)
    halfway: dict[str, float] | None = None
    while time.monotonic() - started < total:
        if halfway is None and time.monotonic() - started >= total / 2:
            halfway = dict(rss)
        for result in await load_all(services, interval, known):
            requests += result.requests
            errors += result.errors
        rss = {mode: rss_mib(service) for mode, service in services.items()}
        conns, roles = await rotating_logins(stack)
        max_roles = max(max_roles, roles)
        print(f"{time.monotonic() - started:7.0f} {rss['plain']:9.1f} {rss['rotating']:9.1f} "
              f"{conns:5d} {roles:7d} {requests:8d} {errors:6d}", flush=True)
    _, health = services["rotating"].healthz()
    growth = {mode: (rss[mode] - base[mode]) / base[mode] for mode in MODES}
    verdict = "met" if growth["rotating"] < 0.05 else "MISSED"
    print(f"\nmemory growth after warm-up: rotating {growth['rotating']:+.1%} "
          f"(target < 5 %: {verdict}), plain {growth['plain']:+.1%}, "
          f"rotating minus plain {growth['rotating'] - growth['plain']:+.1%}")
    if halfway is not None:
        late = {mode: (rss[mode] - halfway[mode]) / halfway[mode] for mode in MODES}
        print(f"memory growth over the second half: rotating {late['rotating']:+.1%}, "
              f"plain {late['plain']:+.1%}")
    print(f"most live v- roles at once: {max_roles} (target <= 2); "
          f"rotations: {health['database']['rotations']}")
    print(f"requests: {requests}, errors: {errors} (target 0)")
    # Failed requests and leaked logins are correctness failures; memory is reported above.
    return 0 if errors == 0 and max_roles <= 2 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--warmup", type=float, default=120.0,
        help="seconds of load before the baseline sample (the allocator's high-water mark "
        "was measured to settle after about 2 minutes at this load)",
    )
    parser.add_argument("--quick", action="store_true", help="30 s: proves it runs")
    args = parser.parse_args()
    total = 30.0 if args.quick else args.minutes * 60
    warmup = 10.0 if args.quick else args.warmup
    interval = 5.0 if args.quick else 30.0
    with DevStack() as stack, ExitStack() as running:
        envs = service_modes(stack)
        run_migrations(stack.migration_env())
        services = {mode: running.enter_context(ServiceProcess(envs[mode])) for mode in MODES}
        return asyncio.run(soak(stack, services, warmup, total, interval))


if __name__ == "__main__":
    raise SystemExit(main())
