"""The sync Engine binding on a real PostgreSQL: login, swap, stale close, retry, SQL errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import ProgrammingError

from vault_async.devstack import DevStack
from vault_async.sqlalchemy_sync import SyncEngineBinding, bind_engine, psycopg_url

from .conftest import FakeSyncSource, vault_creds

pytestmark = pytest.mark.integration


async def backends_of(stack: DevStack, username: str, expected: int) -> int:
    """Sessions of ``username``, polled briefly until ``expected`` (closing is asynchronous)."""
    count = -1
    for _ in range(50):
        async with stack.admin_connection() as conn:
            count = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", username
            )
        if count == expected:
            break
        await asyncio.sleep(0.05)
    return count


async def settled(source: FakeSyncSource, expected: dict[int, int]) -> dict[int, int]:
    """The outstanding counts, polled briefly until ``expected``: a swap holds the replaced
    generation until its retired pool has been disposed once more."""
    for _ in range(100):
        if source.outstanding() == expected:
            break
        await asyncio.sleep(0.05)
    return source.outstanding()


@pytest.fixture
def engine(migrated: DevStack) -> Iterator[Engine]:
    engine = create_engine(psycopg_url(migrated.database_url), pool_size=4, max_overflow=0)
    yield engine
    engine.dispose()


def who(engine: Engine) -> tuple[str, str]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT session_user, current_user")).one()
    return str(row[0]), str(row[1])


async def test_rotation_closes_idle_at_once_and_busy_when_returned(
    migrated: DevStack, engine: Engine
) -> None:
    user_a, password_a, _ = vault_creds(migrated)
    user_b, password_b, _ = vault_creds(migrated)
    source = FakeSyncSource(user_a, password_a)
    binding = bind_engine(engine, source, assume_role="app_rw")
    try:
        assert who(engine) == (user_a, "app_rw")
        busy = engine.connect()
        busy.execute(text("SELECT 1"))
        with engine.connect() as idle:  # a second connection, idle once returned
            idle.execute(text("SELECT 1"))
        assert await backends_of(migrated, user_a, 2) == 2
        source.set(user_b, password_b)
        assert await backends_of(migrated, user_a, 1) == 1, "idle connection not closed at once"
        assert await settled(source, {1: 1}) == {1: 1}  # the busy one still holds it
        busy.execute(text("SELECT 1"))  # still usable until returned
        busy.close()
        assert await backends_of(migrated, user_a, 0) == 0, "busy connection kept after return"
        assert await settled(source, {}) == {}
        assert who(engine) == (user_b, "app_rw")
        assert binding.stats.pool_swaps == 1
    finally:
        binding.detach()


def test_rejected_login_rotates_once_and_retries(migrated: DevStack, engine: Engine) -> None:
    user_a, _, _ = vault_creds(migrated)
    user_b, password_b, _ = vault_creds(migrated)
    source = FakeSyncSource(user_a, "not-the-password")
    source.on_force = lambda: (user_b, password_b)
    binding = bind_engine(engine, source)
    try:
        assert who(engine)[0] == user_b
        assert source.rotate_calls == 1
        assert source.forced_generations == [1]  # the generation rejected
        assert binding.stats.login_retries == 1
    finally:
        binding.detach()


def test_sql_error_keeps_the_pool(migrated: DevStack, engine: Engine) -> None:
    user, password, _ = vault_creds(migrated)
    source = FakeSyncSource(user, password)
    binding: SyncEngineBinding = bind_engine(engine, source, assume_role="app_rw")
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        for statement in ("SELECT * FROM no_such_table", "SELECT * FROM pg_authid"):
            with engine.connect() as conn, pytest.raises(ProgrammingError):
                conn.execute(text(statement))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == pid
        assert binding.stats.connects == 1
        assert binding.stats.permission_invalidations == 0
        assert source.rotate_calls == 0
        assert source.outstanding() == {}
    finally:
        binding.detach()
