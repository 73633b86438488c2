"""What does rotation cost each pool binding? Queries/s and p99, rotating vs a fixed password.

    python benchmarks/pools.py [--seconds 20] [--rounds 3] [--quick]

One dev stack, one run. For each binding (a row; add one to ``BINDINGS``) two pools are open
side by side:
- fixed: the binding on a fixed login (``StaticCredentials``, a plain PostgreSQL user);
- rotating: the same binding on the lease engine's credential for a 5 s / 15 s dynamic role,
  so a new login every 10-15 s.
8 workers run one ``SELECT ... FROM users WHERE id = $1`` per acquire, in turns of each kind,
interleaved so that drift lands on both alike. Prints queries/s, p50 and p99 per kind, the
ratios (targets: >= 0.95x queries/s, p99 <= 1.2x), the rotations seen under load and their
cost: the p99 of queries started within 1 s after a rotation, minus the fixed pool's p99.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.modes import ROTATING_ROLE, service_modes
from tests.support.pools import LoadStats, Query, in_threads, run_queries
from tests.support.service import run_migrations
from vault_async import AsyncVaultClient, LeaseManager
from vault_async._credential_source import CredentialSource, StaticCredentials
from vault_async.asyncpg import bind_pool
from vault_async.auth import AppRoleAuth
from vault_async.devstack import DevStack
from vault_async.lifecycle import ManagedSecret
from vault_async.sqlalchemy_sync import bind_engine, psycopg_url
from vault_async.sync import StaticSyncCredentials, SyncCredentials, SyncCredentialSource

WORKERS = 8
POOL_SIZE = 10
AFTER_ROTATION = 1.0
"""Seconds after a rotation whose queries count towards its cost."""
SELECT = "SELECT id, username FROM users WHERE id = $1"

OpenQuery = Callable[[str, CredentialSource], AbstractAsyncContextManager[Query]]


@asynccontextmanager
async def asyncpg_query(dsn: str, source: CredentialSource) -> AsyncIterator[Query]:
    async with bind_pool(dsn, source, min_size=POOL_SIZE, max_size=POOL_SIZE) as binding:

        async def query(user_id: int) -> object:
            async with binding.pool.acquire() as con:
                return await con.fetchrow(SELECT, user_id)

        yield query


@asynccontextmanager
async def sync_sqlalchemy_query(dsn: str, source: CredentialSource) -> AsyncIterator[Query]:
    """The sync Engine binding, its load on WORKERS threads of its own."""
    credentials: SyncCredentialSource
    if isinstance(source, ManagedSecret):
        credentials = SyncCredentials(source, asyncio.get_running_loop())
    else:
        value = source.current
        assert value is not None
        credentials = StaticSyncCredentials(value.data["username"], value.data["password"])
    engine = create_engine(psycopg_url(dsn), pool_size=POOL_SIZE, max_overflow=0)
    binding = bind_engine(engine, credentials)
    select = text(SELECT.replace("$1", ":id"))

    def query(user_id: int) -> object:
        with engine.connect() as conn:
            return conn.execute(select, {"id": user_id}).first()

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as threads:
        try:
            yield in_threads(query, threads)
        finally:
            binding.detach()
            engine.dispose()


BINDINGS: dict[str, OpenQuery] = {
    "asyncpg": asyncpg_query,
    "sqlalchemy-sync": sync_sqlalchemy_query,
}


@dataclass
class Kind:
    """Every turn of one kind of pool, merged."""

    stats: LoadStats = field(default_factory=LoadStats)

    def add(self, turn: LoadStats) -> None:
        self.stats.seconds += turn.seconds
        self.stats.latencies.extend(turn.latencies)
        self.stats.failures.extend(turn.failures)
        self.stats.started.extend(turn.started)


def rotation_cost(rotating: LoadStats, rotations: list[float], fixed_p99: float) -> str:
    """p99 of the queries started within AFTER_ROTATION s of a rotation, against fixed."""
    near = [
        latency
        for started, latency in zip(rotating.started, rotating.latencies, strict=True)
        if any(0 <= started - at <= AFTER_ROTATION for at in rotations)
    ]
    if len(near) < 2:
        return "no rotation under load"
    window = LoadStats(seconds=1.0, latencies=near)
    added = (window.percentile(99) - fixed_p99) * 1000
    return (
        f"{len(near)} queries within {AFTER_ROTATION:g} s after a rotation: "
        f"p99 {window.percentile(99) * 1000:.2f} ms, {added:+.2f} ms at p99"
    )


async def bench_binding(
    name: str, open_query: OpenQuery, stack: DevStack, plain: Any, seconds: float, rounds: int
) -> int:
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
            await run_queries(query, concurrency=WORKERS, seconds=1.0)
        for round_ in range(rounds):
            order = ("fixed", "rotating") if round_ % 2 == 0 else ("rotating", "fixed")
            for kind in order:
                turn = await run_queries(queries[kind], concurrency=WORKERS, seconds=seconds)
                kinds[kind].add(turn)
    fixed_stats, rotating_stats = kinds["fixed"].stats, kinds["rotating"].stats
    in_turns = sorted(rotations)
    print(f"\n[{name}] {WORKERS} workers, pool {POOL_SIZE}, {seconds:g} s per kind x {rounds}")
    for kind, merged in kinds.items():
        print(f"  {kind:9s} {merged.stats.summary()}")
    rate = rotating_stats.rate / fixed_stats.rate if fixed_stats.rate else float("nan")
    p99 = rotating_stats.percentile(99) / fixed_stats.percentile(99)
    print(f"  rotating vs fixed: {rate:.3f}x queries/s (target >= 0.95), "
          f"p99 {p99:.2f}x (target <= 1.2)")
    print(f"  rotations during the run: {len(in_turns)} "
          f"(generation {creds.generation}); cost: "
          f"{rotation_cost(rotating_stats, in_turns, fixed_stats.percentile(99))}")
    failed = len(fixed_stats.failures) + len(rotating_stats.failures)
    if failed:
        print(f"  FAILED QUERIES: {failed}: {(fixed_stats.failures + rotating_stats.failures)[:3]}")
    return failed


async def bench(stack: DevStack, plain: Any, seconds: float, rounds: int) -> int:
    failed = 0
    for name, open_query in BINDINGS.items():
        failed += await bench_binding(name, open_query, stack, plain, seconds, rounds)
    print("\nerrors: none" if not failed else f"\nerrors: {failed} QUERIES FAILED")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load per turn")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved turns per kind")
    parser.add_argument("--quick", action="store_true", help="2 turns of 8 s: proves it runs")
    args = parser.parse_args()
    seconds, rounds = (8.0, 2) if args.quick else (args.seconds, args.rounds)
    with DevStack() as stack:
        run_migrations(stack.migration_env())
        plain = make_url(service_modes(stack)["plain"]["DATABASE_URL"])
        return asyncio.run(bench(stack, plain, seconds, rounds))


if __name__ == "__main__":
    raise SystemExit(main())
