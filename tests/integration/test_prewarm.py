"""A rotation opens the new login's connections before the switch, within the pool's bounds.

Counted, not timed: the binding's ``connects`` counter says whether a request had to log in,
and PostgreSQL's ``pg_stat_activity`` how many sessions each login holds.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_only

from vault_async._prewarm import WARMING
from vault_async.devstack import DevStack
from vault_async.sqlalchemy import EngineBinding, Prewarm, bind_credentials

from .conftest import (
    ASYNC_DIALECTS,
    FakeSource,
    backends_of,
    dialect_url,
    login,
    vault_creds,
    vault_refreshed_source,
    wait_for_backends,
)

pytestmark = pytest.mark.integration

SIZE = 4
BOUND = 10.0
"""Seconds any wait of these tests may take (a bound, never expected to be reached)."""


@pytest.fixture(params=ASYNC_DIALECTS)
async def engine(migrated: DevStack, request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    url = dialect_url(migrated, request.param)
    engine = create_async_engine(url, pool_size=SIZE, max_overflow=0)
    yield engine
    await engine.dispose()


async def checked_out(engine: AsyncEngine, count: int) -> list[AsyncConnection]:
    """``count`` connections held at once, each having run a statement."""
    held = [await engine.connect() for _ in range(count)]
    for conn in held:
        await conn.execute(text("SELECT 1"))
    return held


async def session_users(held: list[AsyncConnection]) -> list[str]:
    return [str((await c.execute(text("SELECT session_user"))).scalar_one()) for c in held]


async def spare_ready(binding: EngineBinding, count: int = 1) -> bool:
    """Wait (bounded) until a rollover has ``count`` spare connections ready for records."""
    for _ in range(int(BOUND / 0.02)):
        if len(binding._spares.free) >= count:
            return True
        await asyncio.sleep(0.02)
    return False


def serving_logged(caplog: pytest.LogCaptureFixture) -> list[object]:
    """The generations of the ``pool.generation_serving`` records so far."""
    return [
        getattr(r, "generation", None)
        for r in caplog.records
        if r.getMessage() == "pool.generation_serving"
    ]


async def test_after_a_rotation_checkouts_find_the_new_login_ready(
    migrated: DevStack, engine: AsyncEngine, leases: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="vault_async.sqlalchemy")
    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    binding = bind_credentials(engine, source)
    try:
        for conn in await checked_out(engine, SIZE):  # SIZE idle connections of login A
            await conn.close()
        source.set(user_b, password_b)  # emits "rotated"
        await binding.aclose_pending()
        assert serving_logged(caplog) == []  # the warm-up's checkouts serve no request
        before = binding.stats.connects
        held = await checked_out(engine, SIZE)
        assert await session_users(held) == [user_b] * SIZE
        assert serving_logged(caplog) == [2]  # the first request on generation 2, once
        assert binding.stats.connects == before  # no login happened on the request path
        assert binding.stats.prewarmed == SIZE
        assert await wait_for_backends(migrated, user_a, 0) == 0
        for conn in held:
            await conn.close()
    finally:
        binding.detach()


async def test_a_full_pool_is_replaced_as_its_connections_come_back(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    # The whole pool is checked out with login A. With a margin of one, each connection of A
    # that comes back gives its place to one of B opened meanwhile: the next checkout finds
    # B logged in, and the two logins never hold more than the pool's size plus one.
    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    binding = bind_credentials(engine, source, prewarm=Prewarm(margin=1, timeout=BOUND))
    held = await checked_out(engine, SIZE)
    try:
        source.set(user_b, password_b)
        on_path = binding.stats.connects - binding.stats.prewarmed
        for i in range(SIZE):
            assert await spare_ready(binding)  # one at a time: the pool is full
            assert await backends_of(migrated, user_b) == i + 1
            assert await backends_of(migrated, user_a) == SIZE - i
            assert await session_users([held[i]]) == [user_a]  # A serves until it is back
            await held[i].close()
            [held[i]] = await checked_out(engine, 1)
            assert await session_users([held[i]]) == [user_b]
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        assert binding.stats.connects - binding.stats.prewarmed == on_path  # none logged in
    finally:
        for conn in held:
            await conn.close()
        binding.detach()


async def test_spares_kept_for_idle_records_are_replaced_at_the_next_rotation(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    # An idle pool rolls over to B: its records wait, without a connection, for their
    # checkout to take the spares of B kept for them. Before any checkout, C replaces B:
    # those spares are old connections too, replaced in turn, not left open.
    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    user_c, password_c = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    binding = bind_credentials(engine, source)
    try:
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        source.set(user_b, password_b)
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        assert await backends_of(migrated, user_b) == SIZE
        source.set(user_c, password_c)
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        assert await wait_for_backends(migrated, user_b, 0) == 0
        assert await backends_of(migrated, user_c) == SIZE
        before = binding.stats.connects
        held = await checked_out(engine, SIZE)
        assert await session_users(held) == [user_c] * SIZE
        assert binding.stats.connects == before
        for conn in held:
            await conn.close()
    finally:
        binding.detach()


async def test_spares_serve_under_the_assumed_role_set_when_they_opened(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    # A spare's SET ROLE runs when it opens, not when a request takes it: the request sees
    # the role in force all the same, also after the pool's rollback on return.
    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    set_role_on_request_path: list[object] = []
    binding = bind_credentials(engine, source, assume_role="app_rw")

    @event.listens_for(engine.sync_engine, "connect")
    def count(dbapi_connection: object, conn_rec: ConnectionPoolEntry) -> None:
        set_role_on_request_path.append(conn_rec.info.get("vault_async.role_set"))

    try:
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        source.set(user_b, password_b)
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        set_role_on_request_path.clear()
        for _ in range(2):
            held = await checked_out(engine, SIZE)
            roles = [(await c.execute(text("SELECT current_user"))).scalar_one() for c in held]
            assert roles == ["app_rw"] * SIZE
            assert await session_users(held) == [user_b] * SIZE
            for conn in held:
                await conn.close()
        # The records reconnected with the spares, each marked as set up: the binding's own
        # connect listener skips SET ROLE for them.
        assert set_role_on_request_path == [True] * SIZE
    finally:
        event.remove(engine.sync_engine, "connect", count)
        binding.detach()


async def test_spares_log_in_an_interval_apart(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    # A burst of logins costs CPU on both sides and shows in every request's latency: the
    # spares start Prewarm.interval apart (the monotonic clock, read at each spare's connect).
    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    started: list[float] = []

    def on_do_connect(
        dialect: Dialect, conn_rec: ConnectionPoolEntry | None, cargs: Any, cparams: Any
    ) -> None:
        if WARMING.get():
            started.append(time.monotonic())

    event.listen(engine.sync_engine, "do_connect", on_do_connect)
    prewarm = Prewarm(interval=0.1, timeout=BOUND)
    binding = bind_credentials(engine, source, prewarm=prewarm)
    try:
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        source.set(user_b, password_b)
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        assert len(started) == SIZE
        gaps = [later - earlier for earlier, later in itertools.pairwise(started)]
        assert min(gaps) >= prewarm.interval
    finally:
        binding.detach()
        event.remove(engine.sync_engine, "do_connect", on_do_connect)


async def test_a_busy_rollover_looks_at_the_pool_only_when_something_changed(
    migrated: DevStack, engine: AsyncEngine, leases: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Under load every request hands a connection back. A rollover that took a look at the
    # pool (a pass over its records) at each return spent CPU in proportion to the load, in
    # the very requests a rotation should not touch; an old connection that serves on calls
    # for no look.
    caplog.set_level(logging.INFO, logger="vault_async.sqlalchemy")
    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    source = FakeSource(user_a, password_a)

    def slow_spare(dialect: Dialect, conn_rec: Any, cargs: Any, cparams: Any) -> None:
        if WARMING.get():  # a login taking 0.2 s: a loaded database
            await_only(asyncio.sleep(0.2))

    event.listen(engine.sync_engine, "do_connect", slow_spare)
    binding = bind_credentials(engine, source, prewarm=Prewarm(timeout=BOUND))
    returns, stop = 0, asyncio.Event()

    async def client() -> None:
        nonlocal returns
        while not stop.is_set():
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            returns += 1

    clients = [asyncio.create_task(client()) for _ in range(SIZE)]
    try:
        await asyncio.sleep(0.1)
        source.set(user_b, password_b)
        before = returns
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        during = returns - before
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), BOUND)
        binding.detach()
        event.remove(engine.sync_engine, "do_connect", slow_spare)
    [record] = [r for r in caplog.records if r.getMessage() == "pool.prewarmed"]
    assert getattr(record, "replaced", None) == SIZE
    assert during > 20 * SIZE  # busy throughout: many more returns than connections
    passes = getattr(record, "passes", None)
    assert isinstance(passes, int)
    assert passes <= 4 * SIZE + 2, (passes, during)


async def test_without_prewarm_requests_open_the_new_connections(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    binding = bind_credentials(engine, source, prewarm=Prewarm(enabled=False))
    try:
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        source.set(user_b, password_b)
        await binding.aclose_pending()
        before = binding.stats.connects
        held = await checked_out(engine, SIZE)
        assert await session_users(held) == [user_b] * SIZE
        assert binding.stats.connects == before + SIZE
        assert binding.stats.prewarmed == 0
        for conn in held:
            await conn.close()
    finally:
        binding.detach()


class SlowSwitchBinding(EngineBinding):
    """The rollover starts a second late (a busy event loop): the old login serves meanwhile."""

    async def _roll_over(self) -> None:
        await asyncio.sleep(1.0)
        await super()._roll_over()


async def test_a_rotation_forced_by_a_refused_login_serves_nothing_more_on_it(
    migrated: DevStack, engine: AsyncEngine
) -> None:
    user_a, password_a, lease_a = vault_creds(migrated)
    source, leases = vault_refreshed_source(migrated, user_a, password_a)
    binding = SlowSwitchBinding(engine, source)
    binding.attach()
    try:
        held = await checked_out(engine, SIZE - 1)
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease_a})  # A dropped
        # The next connect is refused, which forces a rotation; its connection logs in as B.
        [fresh] = await checked_out(engine, 1)
        assert source.rotate_calls == 1
        user_b = (await session_users([fresh]))[0]
        # Login A's sessions come back before the switch: none of them is handed out again,
        # since the database refused that login.
        for conn in held:
            await conn.close()
        again = await checked_out(engine, SIZE - 1)
        assert await session_users(again) == [user_b] * (SIZE - 1)
        for conn in [fresh, *again]:
            await conn.close()
        await binding.aclose_pending()
    finally:
        binding.detach()
        for lease in leases:
            migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})
