"""A warm-up that cannot finish (cancelled, overtaken by ``dispose``, or a database that stops
answering) leaves no session of the new login behind and does not hold the swap past its
deadline; one whose login the database refuses is not done twice.

The database that stops answering is a ``do_connect`` listener that makes the warm-up's
connects past the first few wait for an event set only at the end: no timing, only events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_only

from vault_async._prewarm import WARMING
from vault_async.devstack import DevStack
from vault_async.sqlalchemy import EngineBinding, Prewarm, bind_credentials

from .conftest import FakeSource, backends_of, dialect_url, login, wait_for_backends
from .test_prewarm import BOUND, SIZE, checked_out, session_users

pytestmark = pytest.mark.integration



@pytest.fixture
async def engine(migrated: DevStack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(
        dialect_url(migrated, "asyncpg"), pool_size=SIZE, max_overflow=0
    )
    yield engine
    await engine.dispose()


class HungConnects:
    """The warm-up's connects past the first ``passing`` wait until :meth:`release`."""

    def __init__(self, engine: AsyncEngine, passing: int) -> None:
        self._engine = engine
        self.passing = passing
        self.entered = 0
        self.blocked = asyncio.Event()
        self._release = asyncio.Event()
        event.listen(engine.sync_engine, "do_connect", self._on_do_connect)

    def _on_do_connect(
        self, dialect: Dialect, conn_rec: ConnectionPoolEntry, cargs: Any, cparams: Any
    ) -> None:
        if not WARMING.get():
            return
        self.entered += 1
        if self.entered > self.passing:
            self.blocked.set()
            await_only(self._release.wait())

    def release(self) -> None:
        if self._release.is_set():
            return
        self._release.set()
        event.remove(self._engine.sync_engine, "do_connect", self._on_do_connect)


@asynccontextmanager
async def rotated_into_hung_connects(
    migrated: DevStack, engine: AsyncEngine, leases: list[str], prewarm: Prewarm
) -> AsyncIterator[tuple[EngineBinding, HungConnects, str, str]]:
    """A full pool of login A, then a rotation to login B whose warm-up connects past the
    first two hang; yields the binding, the hang and A's and B's users, and undoes both at
    the end."""
    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    hung = HungConnects(engine, passing=2)
    binding = bind_credentials(engine, source, prewarm=prewarm)
    try:
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        source.set(user_b, password_b)
        yield binding, hung, user_a, user_b
    finally:
        hung.release()
        binding.detach()


async def test_a_cancelled_swap_closes_the_connections_it_opened(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    prewarm = Prewarm(concurrency=2, timeout=60)
    async with rotated_into_hung_connects(migrated, engine, leases, prewarm) as (
        binding, hung, _, user_b
    ):
        # Two connections of B are open, the next connect hangs. The cancelled swap keeps only
        # the spares already in place of an idle connection of A (their records reconnect
        # with them), and the shutdown closes those.
        await asyncio.wait_for(hung.blocked.wait(), BOUND)
        swaps = list(binding._swaps._tasks)
        for task in swaps:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*swaps, return_exceptions=True), BOUND)
        kept = len(binding._spares.claimed)
        assert not binding._spares.free
        assert 1 <= kept <= 2
        assert await wait_for_backends(migrated, user_b, kept) == kept
        await asyncio.wait_for(binding.aclose(), BOUND)
        assert await wait_for_backends(migrated, user_b, 0) == 0


async def test_a_dispose_during_the_warm_up_leaves_no_spare_open(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    prewarm = Prewarm(concurrency=2, timeout=60)
    async with rotated_into_hung_connects(migrated, engine, leases, prewarm) as (
        binding, hung, _, user_b
    ):
        await asyncio.wait_for(hung.blocked.wait(), BOUND)
        await engine.dispose()  # the records the two ready spares were kept for are gone
        disposed_to = engine.sync_engine.pool
        hung.release()  # the warm-up completes with nothing left to replace
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        assert engine.sync_engine.pool is disposed_to
        assert await wait_for_backends(migrated, user_b, 0) == 0
        [fresh] = await checked_out(engine, 1)
        assert await session_users([fresh]) == [user_b]
        await fresh.close()


async def test_connects_hung_at_the_deadline_do_not_hold_the_swap(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    prewarm = Prewarm(concurrency=SIZE, timeout=0.5)
    async with rotated_into_hung_connects(migrated, engine, leases, prewarm) as (
        binding, hung, user_a, user_b
    ):
        # Two of the four connects hang: two idle connections of A are replaced by the
        # deadline, and the swap ends then, although the database never answers the others.
        # The two left of A are stale from then on: closed before the swap ends.
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        assert hung.blocked.is_set()
        assert binding.stats.prewarmed == 2
        assert await backends_of(migrated, user_b) == 2
        assert await wait_for_backends(migrated, user_a, 0) == 0
        held = await checked_out(engine, SIZE)
        assert await session_users(held) == [user_b] * SIZE
        for conn in held:
            await conn.close()


async def test_a_login_refused_during_the_warm_up_is_warmed_once(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    user_a, password_a = login(migrated, leases)
    user_b, _ = login(migrated, leases)
    user_c, password_c = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    source.on_force = lambda: (user_c, password_c)
    binding = bind_credentials(engine, source, prewarm=Prewarm(concurrency=1, timeout=60))
    try:
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        before = binding.stats.connects
        # B's first connect is refused, which forces a rotation to C: the warm-up goes on
        # with C, and the forced rotation's own swap finds the pool already warm.
        source.set(user_b, "not-the-password")
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        assert source.rotate_calls == 1
        assert binding.stats.connects - before == SIZE
        assert binding.stats.pool_swaps == 1
        assert await backends_of(migrated, user_c) == SIZE
        held = await checked_out(engine, SIZE)
        assert await session_users(held) == [user_c] * SIZE
        assert binding.stats.connects - before == SIZE  # no login on the request path
        for conn in held:
            await conn.close()
    finally:
        binding.detach()


async def test_the_warm_ups_checkouts_are_not_request_hold_times(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    # The longest recent hold shortens the next warm-up's budget: a warm-up's own checkouts,
    # held while the others log in, are no request's.
    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    binding = bind_credentials(engine, source, prewarm=Prewarm(concurrency=1))
    try:
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        assert len(binding._holds) == SIZE
        source.set(user_b, password_b)
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        assert binding.stats.prewarmed == SIZE
        assert len(binding._holds) == SIZE
    finally:
        binding.detach()


async def test_the_first_connection_opens_alone_to_measure_the_databases_room(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    # Until one connection of the new pool has asked PostgreSQL how many more it accepts, the
    # warm-up opens no other: a first batch of `concurrency` could take the last free slots.
    user_a, password_a = login(migrated, leases)
    user_b, password_b = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    entered: list[int] = []
    first_pending = False

    def on_do_connect(
        dialect: Dialect, conn_rec: ConnectionPoolEntry, cargs: Any, cparams: Any
    ) -> None:
        nonlocal first_pending
        if not WARMING.get():
            return
        entered.append(int(first_pending))
        if len(entered) == 1:
            first_pending = True
            for _ in range(10):  # the other connects of a batch would enter meanwhile
                await_only(asyncio.sleep(0))
            first_pending = False

    event.listen(engine.sync_engine, "do_connect", on_do_connect)
    binding = bind_credentials(engine, source, prewarm=Prewarm(concurrency=SIZE))
    try:
        for conn in await checked_out(engine, SIZE):
            await conn.close()
        source.set(user_b, password_b)
        await asyncio.wait_for(binding.aclose_pending(), BOUND)
        assert binding.stats.prewarmed == SIZE
        assert entered == [0] * SIZE  # none entered while the first was connecting
    finally:
        binding.detach()
        event.remove(engine.sync_engine, "do_connect", on_do_connect)
