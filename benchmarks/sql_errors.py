"""Does a stream of bad SQL slow down the good queries beside it? One engine, one run.

    python benchmarks/sql_errors.py [--seconds 20] [--rounds 4] [--bad-rate 9] [--quick]

The service's engine (Vault-issued credentials through the lease engine, pool 10 + 10) on a
dev stack. 8 workers run good queries (``SELECT ... FROM users WHERE id = :id``, one
checkout per query, like a request) in turns of two kinds, interleaved so that drift lands on
both alike:
- baseline: the good queries alone;
- bad stream: the same, with one more task sending ``--bad-rate`` bad statements a second
  (alternately a table that does not exist, 42P01, and one the role may not read, 42501).
Prints good queries/s, p50, p99, reconnects and login checks per kind, and the ratio.
Target: good-query throughput with the bad stream >= 0.95x the baseline, no reconnect.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.service import run_migrations
from vault_async import AsyncVaultClient
from vault_async.auth import AppRoleAuth
from vault_async.devstack import DevStack
from vault_async.fastapi import VaultRuntime, open_runtime

WORKERS = 8
ENGINE_OPTIONS = {"pool_size": 10, "max_overflow": 10, "pool_timeout": 10}
SEED_USERS = 200
GOOD = text("SELECT id, username FROM users WHERE id = :id")
BAD = (text("SELECT * FROM no_such_table"), text("SELECT rolpassword FROM pg_authid"))


@dataclass
class Turn:
    """What one turn (or several merged) observed."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    good_failures: int = 0
    bad_sent: int = 0
    reconnects: int = 0
    login_checks: int = 0

    def add(self, other: Turn) -> None:
        self.seconds += other.seconds
        self.latencies.extend(other.latencies)
        self.good_failures += other.good_failures
        self.bad_sent += other.bad_sent
        self.reconnects += other.reconnects
        self.login_checks += other.login_checks

    @property
    def qps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: int) -> float:
        if len(self.latencies) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100)[q - 1]

    def summary(self) -> str:
        return (
            f"{self.qps:7.0f} good q/s, p50 {self.percentile(50) * 1000:.2f} ms, "
            f"p99 {self.percentile(99) * 1000:.2f} ms, good failures {self.good_failures}, "
            f"bad sent {self.bad_sent}, reconnects {self.reconnects}, "
            f"login checks {self.login_checks}"
        )


async def good_worker(engine: AsyncEngine, ids: list[int], deadline: float, turn: Turn) -> None:
    i = 0
    while time.monotonic() < deadline:
        i += 1
        t0 = time.monotonic()
        try:
            async with engine.connect() as conn:
                (await conn.execute(GOOD, {"id": ids[i % len(ids)]})).one()
        except Exception:
            turn.good_failures += 1
            continue
        turn.latencies.append(time.monotonic() - t0)


async def bad_stream(engine: AsyncEngine, rate: float, deadline: float, turn: Turn) -> None:
    interval = 1.0 / rate
    next_at = time.monotonic()
    while next_at < deadline:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        try:
            async with engine.connect() as conn:
                await conn.execute(BAD[turn.bad_sent % len(BAD)])
        except DBAPIError:
            pass
        turn.bad_sent += 1
        next_at += interval


async def run_turn(
    runtime: VaultRuntime, ids: list[int], seconds: float, bad_rate: float | None
) -> Turn:
    stats = runtime.binding.stats
    connects, checks = stats.connects, stats.login_checks
    turn = Turn(seconds=seconds)
    deadline = time.monotonic() + seconds
    tasks = [good_worker(runtime.engine, ids, deadline, turn) for _ in range(WORKERS)]
    if bad_rate:
        tasks.append(bad_stream(runtime.engine, bad_rate, deadline, turn))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 30)
    turn.reconnects = stats.connects - connects
    turn.login_checks = stats.login_checks - checks
    return turn


async def warm_up(engine: AsyncEngine) -> None:
    """Open as many connections as both kinds of turn use at once, so no turn pays a connect."""
    held = [await engine.connect() for _ in range(WORKERS + 1)]
    for conn in held:
        await conn.execute(text("SELECT 1"))
        await conn.close()


async def seed(runtime: VaultRuntime) -> list[int]:
    async with runtime.engine.begin() as conn:
        rows = await conn.execute(
            text(
                "INSERT INTO users (username, email) "
                "SELECT 'bench-' || g || '-' || md5(random()::text), 'b@x.test' "
                "FROM generate_series(1, :n) AS g RETURNING id"
            ),
            {"n": SEED_USERS},
        )
        return [int(row[0]) for row in rows]


async def bench(stack: DevStack, seconds: float, rounds: int, bad_rate: float) -> int:
    async with open_runtime(
        stack.database_url,
        client=AsyncVaultClient(stack.vault_addr),
        auth=AppRoleAuth(stack.role_id, secret_id=stack.secret_id),
        db_role=stack.dynamic_role,
        engine_options=dict(ENGINE_OPTIONS),
    ) as runtime:
        ids = await seed(runtime)
        await warm_up(runtime.engine)
        await run_turn(runtime, ids, 1.0, None)  # code paths hot
        totals = {"baseline": Turn(), "bad stream": Turn()}
        per_turn = seconds / rounds
        for _ in range(rounds):
            totals["baseline"].add(await run_turn(runtime, ids, per_turn, None))
            totals["bad stream"].add(await run_turn(runtime, ids, per_turn, bad_rate))
    print(f"\n{WORKERS} workers, {seconds:.0f} s per kind in {rounds} rounds, "
          f"bad stream {bad_rate:g}/s")
    for kind, turn in totals.items():
        print(f"  {kind:10s} {turn.summary()}")
    base, mixed = totals["baseline"], totals["bad stream"]
    ratio = mixed.qps / base.qps if base.qps else float("nan")
    p99_ratio = mixed.percentile(99) / base.percentile(99)
    verdict = "met" if ratio >= 0.95 and mixed.reconnects == 0 else "MISSED"
    print(f"  bad stream: good throughput {ratio:.3f}x baseline, p99 {p99_ratio:.2f}x "
          f"(target >= 0.95x, no reconnect: {verdict})")
    failed = base.good_failures + mixed.good_failures
    print("\nerrors: none" if not failed else f"\nerrors: {failed} GOOD QUERIES FAILED")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load per kind")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved turns per kind")
    parser.add_argument("--bad-rate", type=float, default=9.0, help="bad statements a second")
    parser.add_argument("--quick", action="store_true", help="2 s per kind: proves it runs")
    args = parser.parse_args()
    seconds, rounds = (2.0, 1) if args.quick else (args.seconds, args.rounds)
    with DevStack() as stack:
        run_migrations(stack.migration_env())
        return asyncio.run(bench(stack, seconds, rounds, args.bad_rate))


if __name__ == "__main__":
    raise SystemExit(main())
