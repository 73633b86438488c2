"""Query load on a connection pool and a watch on the server's sessions, for every binding.

The rotation tests and ``benchmarks/pools.py`` drive a binding through the same loop: workers
that each run one query per acquire (like a request), counting latencies and failures; and
a watcher that notes any session still open after its login was dropped (revoked).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from vault_async.devstack import DevStack

Query = Callable[[int], Awaitable[object]]
"""Run one query on a freshly acquired connection; the argument is a user id to look up."""


@dataclass
class LoadStats:
    """What a run of :func:`run_queries` observed."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    """Monotonic start of each successful query, in the order of ``latencies``."""

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile in seconds (q in 0..100)."""
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        cuts = statistics.quantiles(self.latencies, n=1000, method="inclusive")
        return cuts[min(998, max(0, round(q * 10) - 1))]

    def summary(self) -> str:
        return (
            f"{len(self.latencies)} queries in {self.seconds:.1f} s = {self.rate:.0f}/s, "
            f"p50 {self.percentile(50) * 1000:.2f} ms, p99 {self.percentile(99) * 1000:.2f} ms, "
            f"failures {len(self.failures)}"
        )


async def run_queries(
    query: Query,
    *,
    concurrency: int,
    seconds: float,
    ids: int = 100,
    until: Callable[[], bool] | None = None,
    seed: int = 7,
) -> LoadStats:
    """``concurrency`` workers call ``query`` back to back for ``seconds`` (sooner once
    ``until()`` is true), recording every latency and every failure's class and message."""
    stats = LoadStats()
    rng = random.Random(seed)
    begin = time.monotonic()
    deadline = begin + seconds

    def done() -> bool:
        return time.monotonic() >= deadline or (until is not None and until())

    async def worker() -> None:
        while not done():
            started = time.monotonic()
            try:
                await asyncio.wait_for(query(rng.randint(1, ids)), timeout=10)
            except Exception as error:
                stats.failures.append(f"{type(error).__name__}: {error}"[:200])
            else:
                stats.latencies.append(time.monotonic() - started)
                stats.started.append(started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    stats.seconds = time.monotonic() - begin
    return stats


async def watch_dropped_sessions(
    stack: DevStack, login_pattern: str, stop: asyncio.Event, interval: float = 0.2
) -> list[int]:
    """Until ``stop``: PIDs of sessions seen under a login like ``login_pattern`` that later
    show no login at all (the role was dropped while the session stayed open)."""
    ours: set[int] = set()
    orphans: set[int] = set()
    async with stack.admin_connection() as conn:
        while True:
            rows = await conn.fetch(
                "SELECT pid, usename FROM pg_stat_activity WHERE usesysid IS NOT NULL "
                "AND (usename LIKE $1 OR usename IS NULL)",
                login_pattern,
            )
            for row in rows:
                if row["usename"] is not None:
                    ours.add(row["pid"])
                elif row["pid"] in ours:
                    orphans.add(row["pid"])
            if stop.is_set():
                return sorted(orphans)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


def in_threads(
    query: Callable[[int], object], executor: concurrent.futures.ThreadPoolExecutor
) -> Query:
    """A blocking ``query`` run on ``executor``'s threads, as :func:`run_queries` expects
    (give the executor at least as many threads as the load's concurrency)."""

    async def run(user_id: int) -> object:
        return await asyncio.get_running_loop().run_in_executor(executor, query, user_id)

    return run


@dataclass
class LoginEnd:
    """How one login ended, as polled: when its last session and its role disappeared."""

    sessions_gone_at: float | None = None
    role_gone_at: float | None = None
    alive_after_drop: list[int] = field(default_factory=list)
    """Sessions still open at the poll after the first one that found the role dropped: a
    session that survives the drop, not one whose backend was exiting as it happened (a
    closed client's backend leaves ``pg_stat_activity`` a moment after the socket closes)."""


async def watch_login_end(
    stack: DevStack, login: str, pids: list[int], *, seconds: float, interval: float = 0.01
) -> LoginEnd:
    """Poll the sessions ``pids`` of ``login`` and its role until both are gone (or
    ``seconds`` pass); times are ``time.monotonic()`` at each poll."""
    end = LoginEnd()
    polled_after_drop = False
    deadline = time.monotonic() + seconds
    async with stack.admin_connection() as conn:
        while time.monotonic() < deadline:
            row = await conn.fetchrow(
                "SELECT array(SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])) "
                "AS alive, EXISTS(SELECT 1 FROM pg_roles WHERE rolname = $2) AS role",
                pids,
                login,
            )
            assert row is not None
            now = time.monotonic()
            alive: list[int] = list(row["alive"])
            if not alive and end.sessions_gone_at is None:
                end.sessions_gone_at = now
            if not row["role"]:
                if end.role_gone_at is None:
                    end.role_gone_at = now
                elif not polled_after_drop:
                    polled_after_drop = True
                    end.alive_after_drop = sorted(alive)
            if polled_after_drop and end.sessions_gone_at is not None:
                break
            await asyncio.sleep(interval)
    return end


async def assert_rotation_proof(
    stack: DevStack,
    role: str,
    loads: tuple[LoadStats, LoadStats],
    *,
    rotations: int,
    pool_swaps: int,
    orphans: list[int],
) -> None:
    """What every binding's rotation test proves, once the pool and the engine are closed.

    ``loads``: the load until the second rotation, then the little after it (its old lease
    drained too); ``orphans``: what :func:`watch_dropped_sessions` saw.
    """
    stats, stats_after = loads
    assert stats.failures == [], stats.failures[:5]
    assert stats_after.failures == []
    assert rotations >= 2
    assert len(stats.latencies) > 1000
    assert pool_swaps >= 2
    assert orphans == [], "sessions left open after their login was dropped"
    assert not [r for r in await stack.v_roles() if f"-{role}-" in r]
    async with stack.admin_connection() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE $1", f"v-%-{role}-%"
        ) == 0
