"""The binding tells the credential source how many connections of each generation are out.

Every checkout of a generation's connection is answered by exactly one return of it, whether
the connection is closed, invalidated, refused as stale or dropped by the garbage collector.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from vault_async.devstack import DevStack
from vault_async.psycopg import PsycopgPoolBinding
from vault_async.sqlalchemy import EngineBinding, bind_credentials

from .conftest import ASYNC_DIALECTS, FakeSource, TrackingSource, dialect_url, login

pytestmark = pytest.mark.integration


@pytest.fixture(params=ASYNC_DIALECTS)
async def engine(migrated: DevStack, request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(dialect_url(migrated, request.param), pool_size=3, max_overflow=2)
    yield engine
    await engine.dispose()


async def test_use_count_returns_to_zero_across_rotations(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    source = TrackingSource(*login(migrated, leases))
    binding = bind_credentials(engine, source)
    try:
        # Before any checkout the binding holds the generation in force (and so announces
        # the pool): idle connections are not counted, the hold keeps their lease until the
        # swap of the next rotation has closed them. It is the +1 beside the checkouts below.
        assert source.calls == [(1, 1)]
        held = [await engine.connect() for _ in range(2)]
        for conn in held:
            await conn.execute(text("SELECT 1"))
        assert source.outstanding() == {1: 3}

        source.set(*login(migrated, leases))  # rotated: generation 2, pool swapped
        await binding.aclose_pending()  # the swap is done: the hold moved to 2
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            assert source.outstanding() == {1: 2, 2: 2}
        # One old connection returned, the other invalidated instead of returned.
        await held[0].close()
        await held[1].invalidate()
        await held[1].close()
        assert source.outstanding() == {2: 1}

        # A rotation nobody announced: the checkout refuses the stale connection and makes
        # a fresh one, which is the only one counted (the hold stays where the last
        # announced rotation put it).
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        source.set(*login(migrated, leases), emit=False)
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            assert source.outstanding() == {2: 1, 3: 1}
        assert binding.stats.stale_closed >= 1
        assert source.outstanding() == {2: 1}

        # Sessions, several at once past the pool size (overflow), all closed again.
        conns = [await engine.connect() for _ in range(5)]
        for conn in conns:
            await conn.execute(text("SELECT 1"))
        assert source.outstanding() == {2: 1, 3: 5}
        for conn in conns:
            await conn.close()
        assert source.outstanding() == {2: 1}
        assert all(delta in (1, -1) for _, delta in source.calls)
    finally:
        binding.detach()
    assert source.outstanding() == {}  # detached: the hold is given back too
    assert sum(delta for _, delta in source.calls) == 0


async def test_connection_dropped_by_the_garbage_collector_is_returned(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    source = TrackingSource(*login(migrated, leases))
    binding = bind_credentials(engine, source)
    try:
        conn = await engine.connect()
        await conn.execute(text("SELECT 1"))
        assert source.outstanding() == {1: 2}  # the connection and the binding's hold
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SAWarning)  # "garbage collector is trying to ..."
            del conn
            gc.collect()
        assert source.outstanding() == {1: 1}
    finally:
        binding.detach()


async def test_psycopg_connection_collected_on_another_thread_reports_on_the_loop() -> None:
    source = TrackingSource("someone", "x")
    threads: list[int] = []
    track = source.track_use

    def track_use(generation: int, delta: int) -> None:
        threads.append(threading.get_ident())
        track(generation, delta)

    source.track_use = track_use  # type: ignore[method-assign]
    binding = PsycopgPoolBinding(source)
    binding._follow()
    holder = [_Collectable()]
    binding._register(holder[0], 1)
    assert source.outstanding() == {1: 1}

    def collect() -> None:  # the last reference goes on a thread of its own
        holder.clear()
        gc.collect()

    await asyncio.to_thread(collect)
    for _ in range(10):
        await asyncio.sleep(0)
    assert source.outstanding() == {}
    assert set(threads) == {threading.get_ident()}  # every update on the loop's thread
    binding._detach()


class _Collectable:
    """Stands for a connection: only its collection matters here."""

    vault_login: object


async def test_source_without_track_use_is_fine(
    migrated: DevStack, engine: AsyncEngine, leases: list[str]
) -> None:
    source = FakeSource(*login(migrated, leases))
    binding = EngineBinding(engine, source)
    binding.attach()
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        binding.detach()
