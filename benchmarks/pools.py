"""What does rotation cost each pool binding? Queries/s and p99, rotating vs a fixed password.

    python benchmarks/pools.py [--seconds 4] [--rounds 8] [--only NAME ...] [--quick]

One dev stack, one run. For each binding (a row; add one to ``BINDINGS``) two pools are open
side by side:
- fixed: the binding on a fixed login (a plain PostgreSQL user);
- rotating: the same binding on the lease engine's credential for a 5 s / 15 s dynamic role,
  so a new login every 10-15 s.
8 workers run one ``SELECT ... FROM users WHERE id = $1`` per acquire, in short turns of each
kind, interleaved so that drift (other load on the machine) lands on both alike. Prints
queries/s, p50 and p99 per kind, the ratios over all turns and the median of the ratios of
adjacent turn pairs (targets: >= 0.95x queries/s, p99 <= 1.2x), the rotations seen under load
and their cost: the p99 of queries started within 1 s after a rotation, minus the fixed pool's
p99. ``--quick`` proves it runs: short turns, and one rotation forced into each rotating turn
(the role's own would not come in time), so its figures are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.engine import make_url

from benchmarks._pools_bindings import (
    POOL_SIZE,
    WORKERS,
    OpenQuery,
    asyncpg_query,
    psycopg_pool_query,
    sqlalchemy_async_query,
    sqlalchemy_sync_query,
)
from benchmarks._pools_django import django_query
from tests.support.modes import ROTATING_ROLE, service_modes
from tests.support.pools import LoadStats, run_queries
from tests.support.service import run_migrations
from vault_async import AsyncVaultClient, LeaseManager
from vault_async._credential_source import StaticCredentials
from vault_async.auth import AppRoleAuth
from vault_async.devstack import DevStack
from vault_async.lifecycle import ManagedSecret

AFTER_ROTATION = 1.0
"""Seconds after a rotation whose queries count towards its cost."""

BINDINGS: dict[str, OpenQuery] = {
    "asyncpg": asyncpg_query,
    "psycopg-pool": psycopg_pool_query,
    "sqlalchemy-async": sqlalchemy_async_query,
    "sqlalchemy-sync": sqlalchemy_sync_query,
    "django": django_query,
}
CONNECTIONS = {"django": f"{WORKERS} persistent connections (one per thread)"}
"""How a row holds its connections, when not in a pool of POOL_SIZE."""


@dataclass
class Plan:
    seconds: float
    rounds: int
    warm_up: float
    force_rotation: bool


@dataclass
class Kind:
    """Every turn of one kind of pool, merged, and each turn's own figures."""

    stats: LoadStats = field(default_factory=LoadStats)
    turns: list[LoadStats] = field(default_factory=list)

    def add(self, turn: LoadStats) -> None:
        self.turns.append(turn)
        self.stats.seconds += turn.seconds
        self.stats.latencies.extend(turn.latencies)
        self.stats.failures.extend(turn.failures)
        self.stats.started.extend(turn.started)


def near_rotation(rotating: LoadStats, rotations: list[float]) -> LoadStats:
    """The queries started within AFTER_ROTATION s after a rotation."""
    near = [
        latency
        for started, latency in zip(rotating.started, rotating.latencies, strict=True)
        if any(0 <= started - at <= AFTER_ROTATION for at in rotations)
    ]
    return LoadStats(seconds=1.0, latencies=near)


def rotation_cost(window: LoadStats, fixed_p99: float) -> tuple[str, float | None]:
    """The cost of rotations in words, and in ms added at p99 against the fixed pool."""
    if len(window.latencies) < 2:
        return "no rotation under load", None
    added = (window.percentile(99) - fixed_p99) * 1000
    return (
        f"{len(window.latencies)} queries within {AFTER_ROTATION:g} s after a rotation: "
        f"p99 {window.percentile(99) * 1000:.2f} ms, {added:+.2f} ms at p99"
    ), added


def paired(fixed: Kind, rotating: Kind) -> tuple[float, float]:
    """Medians over the rounds of rotating/fixed, queries/s and p99, turn against turn."""
    pairs = list(zip(fixed.turns, rotating.turns, strict=True))
    rates = [r.rate / f.rate for f, r in pairs if f.rate]
    p99s = [r.percentile(99) / f.percentile(99) for f, r in pairs]
    return statistics.median(rates), statistics.median(p99s)


async def force_soon(creds: ManagedSecret, delay: float) -> None:
    await asyncio.sleep(delay)
    await creds.force_rotate("benchmark: a rotation under load")


@dataclass
class Row:
    """One binding's outcome, for the closing table."""

    name: str
    rate: float
    p99: float
    pair_rate: float
    pair_p99: float
    rotations: int
    added_p99_ms: float | None
    failed: int

    def line(self) -> str:
        added = "-" if self.added_p99_ms is None else f"{self.added_p99_ms:+.2f}"
        return (f"  {self.name:17s} {self.rate:6.3f}x {self.p99:6.2f}x {self.pair_rate:7.3f}x "
                f"{self.pair_p99:6.2f}x {self.rotations:4d} {added:>9s} {self.failed:6d}")


async def bench_binding(
    name: str, open_query: OpenQuery, stack: DevStack, plain: Any, plan: Plan
) -> Row:
    rotations: list[float] = []
    kinds = {"fixed": Kind(), "rotating": Kind()}
    client = AsyncVaultClient(stack.vault_addr)
    async with AsyncExitStack() as exits:
        await exits.enter_async_context(client)
        manager = await exits.enter_async_context(LeaseManager(client))
        manager.manage_token(client, AppRoleAuth(stack.role_id, secret_id=stack.secret_id))
        creds = manager.manage_database_credentials(
            client, role=ROTATING_ROLE, mount=stack.db_mount
        )
        await creds.wait_ready(timeout=30)
        creds.subscribe(
            lambda event: rotations.append(time.monotonic()) if event.kind == "rotated" else None
        )
        dsn = stack.database_url
        fixed = StaticCredentials(plain.username, plain.password)
        queries = {
            "fixed": await exits.enter_async_context(open_query(dsn, fixed)),
            "rotating": await exits.enter_async_context(open_query(dsn, creds)),
        }
        for query in queries.values():  # warm-up, not counted
            await run_queries(query, concurrency=WORKERS, seconds=plan.warm_up)
        for round_ in range(plan.rounds):
            order = ("fixed", "rotating") if round_ % 2 == 0 else ("rotating", "fixed")
            for kind in order:
                forced = None
                if plan.force_rotation and kind == "rotating":
                    forced = asyncio.create_task(force_soon(creds, plan.seconds / 3))
                turn = await run_queries(queries[kind], concurrency=WORKERS, seconds=plan.seconds)
                if forced is not None:
                    await forced
                kinds[kind].add(turn)
    fixed_stats, rotating_stats = kinds["fixed"].stats, kinds["rotating"].stats
    print(f"\n[{name}] {WORKERS} workers, {CONNECTIONS.get(name, f'pool {POOL_SIZE}')}, "
          f"{plan.seconds:g} s per kind x {plan.rounds}")
    for kind, merged in kinds.items():
        print(f"  {kind:9s} {merged.stats.summary()}")
    rate = rotating_stats.rate / fixed_stats.rate if fixed_stats.rate else float("nan")
    p99 = rotating_stats.percentile(99) / fixed_stats.percentile(99)
    pair_rate, pair_p99 = paired(kinds["fixed"], kinds["rotating"])
    print(f"  rotating vs fixed: {rate:.3f}x queries/s (target >= 0.95), "
          f"p99 {p99:.2f}x (target <= 1.2); median of turn pairs: "
          f"{pair_rate:.3f}x, p99 {pair_p99:.2f}x")
    cost, added = rotation_cost(
        near_rotation(rotating_stats, rotations), fixed_stats.percentile(99)
    )
    print(f"  rotations during the run: {len(rotations)} "
          f"(generation {creds.generation}); cost: {cost}")
    failed = len(fixed_stats.failures) + len(rotating_stats.failures)
    if failed:
        print(f"  FAILED QUERIES: {failed}: {(fixed_stats.failures + rotating_stats.failures)[:3]}")
    return Row(name, rate, p99, pair_rate, pair_p99, len(rotations), added, failed)


async def bench(stack: DevStack, plain: Any, plan: Plan, names: list[str]) -> int:
    rows = [await bench_binding(name, BINDINGS[name], stack, plain, plan) for name in names]
    print("\nrotating vs fixed (targets: queries/s >= 0.95x, p99 <= 1.2x)")
    print(f"  {'binding':17s} {'q/s':>7s} {'p99':>7s} {'pair q/s':>8s} {'pair p99':>7s} "
          f"{'rot.':>4s} {'+p99 ms':>9s} {'failed':>6s}")
    for row in rows:
        print(row.line())
    failed = sum(row.failed for row in rows)
    print("\nerrors: none" if not failed else f"\nerrors: {failed} QUERIES FAILED")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="load per turn")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved turns per kind")
    parser.add_argument("--only", nargs="+", choices=list(BINDINGS), help="these rows only")
    parser.add_argument("--quick", action="store_true",
                        help="2 turns of 2 s per kind, a forced rotation in each: proves it runs")
    args = parser.parse_args()
    if args.quick:
        plan = Plan(seconds=2.0, rounds=2, warm_up=0.5, force_rotation=True)
    else:
        plan = Plan(seconds=args.seconds, rounds=args.rounds, warm_up=1.0, force_rotation=False)
    started = time.monotonic()
    with DevStack() as stack:
        run_migrations(stack.migration_env())
        plain = make_url(service_modes(stack)["plain"]["DATABASE_URL"])
        status = asyncio.run(bench(stack, plain, plan, args.only or list(BINDINGS)))
    print(f"total {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
