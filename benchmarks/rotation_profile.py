"""Where does a rotation's time go? Each step of one, timed alone on a dev stack.

    python benchmarks/rotation_profile.py [--times 30] [--quick]

Steps, in the order a rotation meets them:
- vault.creds:    GET database/creds/<role> (Vault creates the PostgreSQL login);
- pool.swap:      ``engine.dispose()`` of an SQLAlchemy pool holding 10 idle connections;
- sqla.fresh:     ``engine.connect()`` and the service's read through SQLAlchemy, on a
  connection the pool has to open (everything a request on a fresh connection pays);
- login.burst:    20 logins at once, until the last is in (what a swap of a busy pool
  sets off when every request opens its own connection);
- login.connect:  ``asyncpg.connect`` with the new login (TCP, backend start-up, SCRAM);
  of which scram.client: the client's PBKDF2 (SHA-256, 4096 rounds) alone;
  of which backend.start: from the backend's start (pg_stat_activity) to its first query;
- set_role:       ``SET ROLE`` to the group role (the service's DB_ASSUME_ROLE);
- codecs:         the json/jsonb codecs SQLAlchemy's asyncpg dialect sets on every new
  connection (each one a type introspection query);
- first.query:    the service's read on a fresh connection (prepare + execute), against
  first.warm:     the same read on a connection that has run it before;
- vault.revoke:   the old lease's revocation (Vault drops the login).
Then, through the binding and the lease engine, with 10 idle connections: the rotation
(force_rotate), the pool swap (pre-warmed, or disposed as without pre-warming), 10
requests at once right after, and how many of them had to log in.
A request that lands on a fresh connection pays login.connect + codecs + set_role +
first.query; a pre-warmed pool pays them in the background. Prints the median and p90 (ms)
of each step over ``--times`` rotations; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.service import run_migrations
from vault_async import AsyncVaultClient, LeaseManager
from vault_async.devstack import DevStack
from vault_async.lifecycle import LeaseConfig
from vault_async.sqlalchemy import Prewarm, bind_credentials

T = TypeVar("T")
BURST = 20
READ = "SELECT id, username, email, created_at FROM users WHERE id = $1"


class Steps:
    """Durations per step name, in seconds."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.logins: list[int] = []
        """Logins on the request path, per rotation."""

    async def timed(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        result = await call()
        self.times[name].append(time.perf_counter() - started)
        return result

    def add(self, name: str, seconds: float) -> None:
        self.times[name].append(seconds)

    def print(self) -> None:
        for name, xs in self.times.items():
            p90 = statistics.quantiles(xs, n=10)[-1] if len(xs) > 1 else xs[0]
            print(f"  {name:14s} median {statistics.median(xs) * 1000:7.2f} ms   "
                  f"p90 {p90 * 1000:7.2f} ms   (n={len(xs)})")
        if self.logins:
            print(f"  logins on the request path, per rotation: {self.logins}")


async def swap_cost(stack: DevStack, username: str, password: str, steps: Steps) -> None:
    """Time ``engine.dispose()`` with 10 idle connections."""
    url = f"postgresql+asyncpg://{username}:{password}@{stack.pg_host}:{stack.pg_port}/" \
        f"{stack.database}"
    engine = create_async_engine(url, pool_size=10, max_overflow=0)
    held = []
    try:
        for _ in range(10):
            started = time.perf_counter()
            conn = await engine.connect()
            await conn.execute(text(READ.replace("$1", ":id")), {"id": 1})
            steps.add("sqla.fresh", time.perf_counter() - started)
            held.append(conn)
        for conn in held:
            await conn.close()
        await steps.timed("pool.swap", lambda: engine.dispose(close=True))
    finally:
        await engine.dispose()


async def one_rotation(
    client: AsyncVaultClient, stack: DevStack, role: str, user_id: int, steps: Steps,
    swap: bool,
) -> str:
    """One credential's life, step by step; returns its lease id (revoked by the next)."""
    secret = await steps.timed(
        "vault.creds", lambda: client.secrets.database.generate_credentials(role)
    )
    username, password = secret.data["username"], secret.data["password"]
    if swap:
        await swap_cost(stack, username, password, steps)

        async def burst() -> None:
            conns = await asyncio.gather(*(asyncpg.connect(
                host=stack.pg_host, port=stack.pg_port, database=stack.database,
                user=username, password=password,
            ) for _ in range(BURST)))
            await asyncio.gather(*(c.close() for c in conns))

        await steps.timed("login.burst", burst)
    conn = await steps.timed("login.connect", lambda: asyncpg.connect(
        host=stack.pg_host, port=stack.pg_port, database=stack.database,
        user=username, password=password,
    ))
    try:
        lag = await conn.fetchval(
            "SELECT extract(epoch FROM statement_timestamp() - backend_start) "
            "FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        )
        steps.add("backend.start", float(lag))
        await steps.timed("set_role", lambda: conn.execute(f"SET ROLE {stack.group_role}"))

        async def codecs() -> None:
            for name in ("json", "jsonb"):
                await conn.set_type_codec(name, encoder=str.encode, decoder=bytes.decode,
                                          schema="pg_catalog", format="binary")

        await steps.timed("codecs", codecs)
        await steps.timed("first.query", lambda: conn.fetchrow(READ, user_id))
        await steps.timed("first.warm", lambda: conn.fetchrow(READ, user_id))
    finally:
        await conn.close()
    salt = os.urandom(16)
    started = time.perf_counter()
    hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 4096)
    steps.add("scram.client", time.perf_counter() - started)
    return secret.lease_id


async def profile(stack: DevStack, times: int) -> Steps:
    steps = Steps()
    async with stack.admin_connection() as admin:
        user_id = await admin.fetchval(
            "INSERT INTO users (username, email) VALUES ('profile', 'p@x.test') RETURNING id"
        )
    async with AsyncVaultClient(stack.vault_addr, token=stack.root_token) as client:
        previous = None
        for i in range(times):
            lease = await one_rotation(client, stack, stack.dynamic_role, user_id, steps, i < 5)
            if previous is not None:
                revoke = functools.partial(client.sys.leases.revoke, previous)
                await steps.timed("vault.revoke", revoke)
            previous = lease
        if previous is not None:
            await client.sys.leases.revoke(previous)
    return steps


async def through_the_binding(stack: DevStack, times: int, prewarm: Prewarm) -> Steps:
    """A rotation of the lease engine under an engine holding 10 idle connections: the
    rotation (Vault's credential), the swap (with or without pre-warming), then 10 requests
    at once, and how many of them had to log in."""
    steps = Steps()
    async with AsyncVaultClient(stack.vault_addr, token=stack.root_token) as client, \
            LeaseManager(client, LeaseConfig(min_force_interval=0)) as manager:
        handle = manager.manage_database_credentials(client, role=stack.dynamic_role)
        await handle.wait_ready(timeout=30)
        engine = create_async_engine(stack.database_url, pool_size=10, max_overflow=0)
        binding = bind_credentials(engine, handle, prewarm=prewarm)

        async def request() -> None:
            async with engine.connect() as conn:
                await conn.execute(text(READ.replace("$1", ":id")), {"id": 1})

        try:
            await asyncio.gather(*(request() for _ in range(10)))
            for _ in range(times):
                await steps.timed("rotate", lambda: handle.force_rotate("profile"))
                await steps.timed("swap", binding.aclose_pending)
                before = binding.stats.connects
                await steps.timed("10.requests", lambda: asyncio.gather(
                    *(request() for _ in range(10))
                ))
                steps.logins.append(binding.stats.connects - before)
        finally:
            await binding.aclose()
            await engine.dispose()
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=30, help="rotations to time")
    parser.add_argument("--quick", action="store_true", help="5 rotations: proves it runs")
    args = parser.parse_args()
    with DevStack() as stack:
        run_migrations(stack.migration_env())
        times = 5 if args.quick else args.times
        steps = asyncio.run(profile(stack, times))
        swaps = {
            mode: asyncio.run(through_the_binding(stack, min(times, 10), Prewarm(enabled=on)))
            for mode, on in (("pre-warmed", True), ("disposed", False))
        }
    print("steps of a rotation (a fresh connection pays login.connect + codecs + set_role + "
          "first.query):")
    steps.print()
    for mode, timed in swaps.items():
        print(f"through the binding and the lease engine, pool swap {mode}:")
        timed.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
