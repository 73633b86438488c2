"""Faults of the rollover found by an outside review: each test states a guarantee of
``_prewarm`` / ``sqlalchemy`` and fails while it does not hold."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from vault_async.devstack import DevStack
from vault_async.sqlalchemy import EngineBinding, Prewarm, bind_credentials

from .conftest import (
    ASYNC_DIALECTS,
    FakeSource,
    TrackingSource,
    backends_of,
    dialect_url,
    login,
    wait_for_backends,
)
from .test_prewarm import BOUND, SIZE, checked_out, session_users, spare_ready

pytestmark = pytest.mark.integration


@asynccontextmanager
async def bound_engine(
    migrated: DevStack,
    leases: list[str],
    driver: str,
    *,
    logins: int = 2,
    prewarm: Prewarm | None = None,
    source_class: type[FakeSource] = FakeSource,
    **options: Any,
) -> AsyncIterator[tuple[AsyncEngine, EngineBinding, Any, list[tuple[str, str]]]]:
    """An engine of ``driver`` (pool of SIZE, no overflow, unless ``options`` say otherwise)
    bound to a ``source_class`` on the first of ``logins`` logins; detached and disposed at
    the end."""
    engine = create_async_engine(
        dialect_url(migrated, driver), **({"pool_size": SIZE, "max_overflow": 0} | options)
    )
    users = [login(migrated, leases) for _ in range(logins)]
    source = source_class(*users[0])
    binding = bind_credentials(engine, source, prewarm=prewarm or Prewarm())
    try:
        yield engine, binding, source, users
    finally:
        # Closes the spares still kept before the next test (whose loop would run it).
        await asyncio.wait_for(binding.aclose(), BOUND)
        await engine.dispose()


def to_second_login(source: FakeSource, users: list[tuple[str, str]]) -> str:
    """Rotate ``source`` to the second of ``users``; that login's user name."""
    user_b, password_b = users[1]
    source.set(user_b, password_b)
    return user_b


async def states_of(stack: DevStack, username: str) -> list[str]:
    """pg_stat_activity.state of each session of ``username``."""
    async with stack.admin_connection() as conn:
        rows = await conn.fetch("SELECT state FROM pg_stat_activity WHERE usename = $1", username)
    return sorted(str(r["state"]) for r in rows)


# 1. The spare that measures PostgreSQL's room is left idle in a transaction --------------


def _short_idle_in_transaction(driver: str) -> dict[str, Any]:
    if driver == "asyncpg":
        return {"server_settings": {"idle_in_transaction_session_timeout": "300"}}
    return {"options": "-c idle_in_transaction_session_timeout=300"}


@pytest.mark.parametrize("driver", ASYNC_DIALECTS)
async def test_spares_wait_outside_any_transaction(
    migrated: DevStack, leases: list[str], driver: str
) -> None:
    async with bound_engine(migrated, leases, driver) as (engine, binding, source, users):
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        user_b = to_second_login(source, users)
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        assert len(binding._spares.claimed) == SIZE
        # Spares wait for their record's next checkout, which may be minutes away.
        assert await states_of(migrated, user_b) == ["idle"] * SIZE


@pytest.mark.parametrize("driver", ASYNC_DIALECTS)
async def test_a_spare_survives_idle_in_transaction_session_timeout(
    migrated: DevStack, leases: list[str], driver: str
) -> None:
    # A common production setting: sessions idle *in a transaction* are killed. An idle pool
    # is fine with it; a spare must be too, since a request takes it later.
    async with bound_engine(
        migrated, leases, driver, connect_args=_short_idle_in_transaction(driver)
    ) as (engine, binding, source, users):
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        user_b = to_second_login(source, users)
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        await asyncio.sleep(1.0)  # the spares wait for requests
        held = await checked_out(engine, SIZE)  # raises if a spare was killed meanwhile
        assert await session_users(held) == [user_b] * SIZE
        for conn in held:
            await conn.close()


@pytest.mark.parametrize("driver", ["psycopg"])  # asyncpg's adapter rolls back first
async def test_an_engine_with_an_isolation_level_takes_every_spare(
    migrated: DevStack, leases: list[str], driver: str
) -> None:
    async with bound_engine(
        migrated, leases, driver, isolation_level="REPEATABLE READ"
    ) as (engine, binding, source, users):
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        user_b = to_second_login(source, users)
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        held = await checked_out(engine, SIZE)  # raises on the spare left in a transaction
        assert await session_users(held) == [user_b] * SIZE
        for conn in held:
            await conn.close()


# 2. An overflow connection replaced on return, then discarded by QueuePool ----------------


@pytest.mark.parametrize("driver", ASYNC_DIALECTS)
async def test_no_spare_is_kept_for_an_overflow_record_the_pool_discards(
    migrated: DevStack, leases: list[str], driver: str
) -> None:
    async with bound_engine(
        migrated, leases, driver, pool_size=2, max_overflow=2,
        prewarm=Prewarm(margin=1, timeout=BOUND),
    ) as (engine, binding, source, users):
        held = await checked_out(engine, 4)  # 2 pooled + 2 overflow, all of login A
        user_b = to_second_login(source, users)
        for conn in held:  # each comes back with a spare ready for it
            assert await spare_ready(binding)
            await conn.close()
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        # The pool keeps 2 records; the 2 overflow ones were closed by QueuePool on return.
        assert engine.sync_engine.pool.checkedin() == 2
        assert await wait_for_backends(migrated, user_b, 2) == 2


# 3. A stale free spare when the next rotation finds nothing to roll over -----------------


@pytest.mark.parametrize("driver", ASYNC_DIALECTS)
async def test_a_spare_given_back_by_a_reconnecting_record_is_closed(
    migrated: DevStack, leases: list[str], driver: str
) -> None:
    async with bound_engine(
        migrated, leases, driver, pool_size=1, max_overflow=0, logins=3
    ) as (engine, binding, source, users):
        _, (user_b, password_b), (user_c, password_c) = users
        [conn] = await checked_out(engine, 1)
        await conn.close()
        source.set(user_b, password_b)  # the idle record's A connection makes way for a B spare
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        assert await wait_for_backends(migrated, user_b, 1) == 1
        source.set(user_c, password_c)
        # A request takes the record at once: its B spare is older, given back as free.
        [conn] = await checked_out(engine, 1)
        assert await session_users([conn]) == [user_c]
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        # The swap is over: nothing of login B may stay open (its lease may now be revoked).
        assert await wait_for_backends(migrated, user_b, 0) == 0
        await conn.close()


# 5. detach() (the documented shutdown) while a rollover runs ------------------------------


@pytest.mark.parametrize("driver", ASYNC_DIALECTS)
async def test_detach_during_a_rollover_leaves_no_spare_open(
    migrated: DevStack, leases: list[str], driver: str
) -> None:
    async with bound_engine(
        migrated, leases, driver, prewarm=Prewarm(timeout=BOUND)
    ) as (engine, binding, source, users):
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        user_b = to_second_login(source, users)
        # Wait (bounded) until the rollover's first spare connect is under way.
        for _ in range(1000):
            rollover = binding._rollover
            if rollover is not None and rollover._opening:
                break
            await asyncio.sleep(0)
        for _ in range(3):
            await asyncio.sleep(0)  # the connect reaches the network
        binding.detach()  # the module's shutdown: detach, then (other clean-up, then) dispose
        swaps = list(binding._swaps._tasks)
        await asyncio.wait_for(asyncio.gather(*swaps, return_exceptions=True), BOUND)
        await engine.dispose()
        assert await wait_for_backends(migrated, user_b, 0) == 0


# 4. The rollover closes a record a checkout has already taken (pool_pre_ping) -------------


@pytest.mark.parametrize("driver", ASYNC_DIALECTS)
async def test_a_checkout_in_its_pre_ping_is_not_closed_under_it(
    migrated: DevStack, leases: list[str], driver: str
) -> None:
    from sqlalchemy.util import await_only

    engine = create_async_engine(
        dialect_url(migrated, driver), pool_size=SIZE, max_overflow=0, pool_pre_ping=True
    )
    ping = engine.sync_engine.dialect.do_ping

    def slow_ping(dbapi_connection: Any) -> bool:
        alive = ping(dbapi_connection)
        await_only(asyncio.sleep(0.5))  # the answer is on its way back (network latency)
        return alive

    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    binding = bind_credentials(engine, source, prewarm=Prewarm(timeout=BOUND))
    try:
        *idle, busy = await checked_out(engine, SIZE)  # busy: keeps the rollover going
        for conn in idle:
            await conn.close()
        engine.sync_engine.dialect.do_ping = slow_ping  # type: ignore[method-assign]

        async def request() -> str:
            async with engine.connect() as conn:
                return str((await conn.execute(text("SELECT session_user"))).scalar_one())

        task = asyncio.ensure_future(request())
        await asyncio.sleep(0.05)  # the request has taken a record and pings it
        source.set(user_b, password_b)
        got = await asyncio.wait_for(task, BOUND)
        assert got in (user_a, user_b)  # no request fails
        await busy.close()
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
    finally:
        engine.sync_engine.dialect.__dict__.pop("do_ping", None)
        binding.detach()
        await engine.dispose()


# 6. A wake-up lost while the rollover closes an idle connection --------------------------


async def test_a_spare_ready_while_an_idle_connection_closes_is_not_left_waiting(
    migrated: DevStack, leases: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import event
    from sqlalchemy.util import await_only

    import vault_async._spares as spares_module
    from vault_async._prewarm import WARMING

    release = asyncio.Event()
    entered = 0

    def hang_third(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> None:
        nonlocal entered
        if WARMING.get():
            entered += 1
            if entered == 3:
                await_only(asyncio.wait_for(release.wait(), BOUND))

    engine = create_async_engine(dialect_url(migrated, "asyncpg"), pool_size=SIZE, max_overflow=0)
    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    event.listen(engine.sync_engine, "do_connect", hang_third)  # spares 1, 2 open, 3 waits
    closing, proceed = asyncio.Event(), asyncio.Event()
    closes = 0
    real_close = spares_module.close_quietly

    async def gate() -> None:
        closing.set()
        await asyncio.wait_for(proceed.wait(), BOUND)

    idle_a: set[int] = set()

    def slow_close(connection: Any) -> None:
        nonlocal closes
        closes += id(connection) in idle_a  # (other tests' clean-up may close connections too)
        if closes == 2 and id(connection) in idle_a:  # the second idle A one replaced
            await_only(gate())
        real_close(connection)

    monkeypatch.setattr(spares_module, "close_quietly", slow_close)
    monkeypatch.setattr(spares_module, "CLOSE_TIMEOUT", BOUND)  # the gate, not a dead server
    prewarm = Prewarm(concurrency=2, timeout=6.0, interval=0)  # spares 1 and 2 together
    binding = bind_credentials(engine, source, prewarm=prewarm)
    try:
        busy, *idle = await checked_out(engine, 3)  # busy's record is the first the book saw
        for conn in idle:
            idle_a.add(id((await conn.get_raw_connection()).dbapi_connection))
            await conn.close()
        source.set(user_b, password_b)
        await asyncio.wait_for(closing.wait(), BOUND)  # replacing the last idle A connection
        await busy.close()  # comes back while no spare is free: serves on, idle
        release.set()
        assert await spare_ready(binding)  # ... and now one is free for it
        proceed.set()
        # Nothing else will happen: the rollover must see the free spare and the idle record.
        await asyncio.wait_for(binding.aclose_pending(), 3.0)
        before = binding.stats.connects
        held = await checked_out(engine, 3)
        assert binding.stats.connects == before  # no login on the request path
        for conn in held:
            await conn.close()
    finally:
        proceed.set()
        release.set()
        binding.detach()
        await engine.dispose()


# 7. Connects under way on the request path are not counted in the rollover's bound -------


async def test_spares_and_logins_under_way_stay_within_the_bound(
    migrated: DevStack, leases: list[str]
) -> None:
    from sqlalchemy.util import await_only

    from vault_async._prewarm import WARMING

    engine = create_async_engine(dialect_url(migrated, "asyncpg"), pool_size=SIZE, max_overflow=0)
    dialect = engine.sync_engine.dialect
    connect = dialect.connect
    logins_go = asyncio.Event()

    def slow_login(*cargs: Any, **cparams: Any) -> Any:
        if not WARMING.get():  # a request's login (SCRAM, SET ROLE ...) takes its time
            await_only(asyncio.wait_for(logins_go.wait(), BOUND))
        return connect(*cargs, **cparams)

    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    # Bound: pool size 4 + overflow 0 + margin 1 = 5 sessions.
    binding = bind_credentials(engine, source, prewarm=Prewarm(margin=1, timeout=BOUND))
    held = await checked_out(engine, 2)  # two requests hold A connections
    dialect.connect = slow_login  # type: ignore[method-assign]
    growing = [asyncio.ensure_future(checked_out(engine, 1)) for _ in range(2)]
    try:
        await asyncio.sleep(0.1)  # the pool grows: two more requests are logging in
        source.set(user_b, password_b)
        for _ in range(100):  # the rollover opens what it thinks fits (bounded: 2 s)
            if len(binding._spares.free) >= 2:
                break
            await asyncio.sleep(0.02)
        logins_go.set()
        for conn in await asyncio.wait_for(asyncio.gather(*growing), BOUND):
            held.extend(conn)
        sessions = await backends_of(migrated, user_a) + await backends_of(migrated, user_b)
        assert sessions <= SIZE + 0 + 1
    finally:
        logins_go.set()
        dialect.__dict__.pop("connect", None)
        for conn in held:
            await conn.close()
        binding.detach()
        await engine.dispose()


# 8. pool_pre_ping does not cover a spare that waited for its record ------------------------


async def _terminate_sessions_of(stack: DevStack, username: str) -> None:
    """What idle_session_timeout, a failover or a network cut does to idle sessions."""
    async with stack.admin_connection() as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            username,
        )


@pytest.mark.parametrize("driver", ASYNC_DIALECTS)
@pytest.mark.parametrize("rotate", [False, True], ids=["control", "rotated"])
async def test_pre_ping_covers_the_connections_a_rotation_put_in_place(
    migrated: DevStack, leases: list[str], driver: str, rotate: bool
) -> None:
    async with bound_engine(
        migrated, leases, driver, pool_pre_ping=True
    ) as (engine, binding, source, users):
        (user_a, _), (user_b, password_b) = users
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        user = user_a
        if rotate:
            source.set(user_b, password_b)
            await asyncio.wait_for(binding.aclose_pending(), BOUND)
            user = user_b
        await _terminate_sessions_of(migrated, user)  # while the pool is idle
        assert await wait_for_backends(migrated, user, 0) == 0
        held = await checked_out(engine, SIZE)  # pre-ping replaces the dead ones
        assert await session_users(held) == [user] * SIZE
        for conn in held:
            await conn.close()


# 9. An old connection coming back waits for its server to end the session ---------------


@pytest.mark.parametrize("driver", ASYNC_DIALECTS)
async def test_returning_an_old_connection_does_not_wait_for_its_session_to_end(
    migrated: DevStack, leases: list[str], driver: str
) -> None:
    async with bound_engine(
        migrated, leases, driver, pool_size=1, source_class=TrackingSource
    ) as (engine, binding, source, users):
        (user_a, _), (user_b, password_b) = users
        [conn] = await checked_out(engine, 1)
        pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        await conn.commit()  # the return needs no rollback from the server
        source.set(user_b, password_b)
        assert await spare_ready(binding)
        os.kill(pid, signal.SIGSTOP)  # a backend slow to end its session (a loaded server)
        try:
            # The request returning its connection is not held up by the session's end...
            await asyncio.wait_for(conn.close(), 1.0)
            # ...and login A stays counted (its lease not revoked) until the session is closed,
            for _ in range(int(BOUND / 0.02)):  # (the rollover, which holds it too, ends)
                if binding._rollover is None:
                    break
                await asyncio.sleep(0.02)
            # (psycopg's close sends its goodbye without waiting for an answer: done by now)
            assert source.in_use[1] == (1 if driver == "asyncpg" else 0)
            assert 1 not in source.dropped or driver != "asyncpg"
            # which a stopped server does not hold up for ever either.
            await asyncio.wait_for(binding.aclose_pending(), BOUND)
            assert source.in_use[1] == 0
            assert 1 in source.dropped
            assert source.counted_after_drop == []
        finally:
            os.kill(pid, signal.SIGCONT)
        assert await wait_for_backends(migrated, user_a, 0) == 0
        [conn] = await checked_out(engine, 1)  # the record reconnects with its spare
        assert await session_users([conn]) == [user_b]
        await conn.close()


# 10. New records take the free spares while the rollover sleeps ---------------------------


@pytest.mark.parametrize("driver", ["asyncpg"])
async def test_spares_taken_by_new_records_are_opened_again(
    migrated: DevStack, leases: list[str], driver: str
) -> None:
    # A burst of checkouts opens overflow records, which take the free spares; the old
    # connections then come back with no spare for them and serve on. The rollover must look
    # again and open more, not sleep to its deadline and leave them to go stale.
    async with bound_engine(
        migrated, leases, driver, pool_size=2, max_overflow=2,
        prewarm=Prewarm(interval=0, timeout=BOUND),
    ) as (engine, binding, source, users):
        old = await checked_out(engine, 2)
        user_b = to_second_login(source, users)
        assert await spare_ready(binding, 2)  # both spares ready: the rollover waits
        burst = await checked_out(engine, 2)  # overflow records take the two spares
        for conn in old:
            await conn.close()  # no spare for them: they serve on, idle
        await asyncio.wait_for(binding.aclose_pending(), BOUND / 4)  # not at the deadline
        assert binding._rollover is None
        assert await wait_for_backends(migrated, user_b, 4) == 4
        for conn in burst:
            await conn.close()
