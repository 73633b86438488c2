"""The psycopg_pool binding follows the credential on a real PostgreSQL: log-in, drain, retry,
SET ROLE, use counting; the same guarantees as the asyncpg and SQLAlchemy bindings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest

from vault_async.asyncpg import plain_dsn
from vault_async.devstack import DevStack
from vault_async.psycopg import PsycopgPoolBinding, bind_pool, create_pool

from .conftest import (
    FakeSource,
    TrackingSource,
    backends_of,
    login,
    vault_creds,
    vault_refreshed_source,
    wait_for_backends,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def tracked(
    migrated: DevStack, leases: list[str]
) -> AsyncIterator[tuple[TrackingSource, PsycopgPoolBinding]]:
    source = TrackingSource(*login(migrated, leases))
    binding = await create_pool(migrated.database_url, source, min_size=2, max_size=4)
    try:
        yield source, binding
    finally:
        await binding.aclose()


async def session_user(binding: PsycopgPoolBinding) -> tuple[str, str]:
    async with binding.pool.connection() as conn:
        row = await (await conn.execute("SELECT session_user, current_user")).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


async def test_new_connections_log_in_with_the_current_credential(
    migrated: DevStack, leases: list[str]
) -> None:
    user_a, password_a = login(migrated, leases)
    source = FakeSource(user_a, password_a)
    async with bind_pool(migrated.database_url, source, min_size=1, max_size=2) as binding:
        assert (await session_user(binding))[0] == user_a
        assert binding.stats.connects == 1
    assert await wait_for_backends(migrated, user_a, 0) == 0


async def test_rotation_closes_idle_at_once_and_busy_when_returned(
    migrated: DevStack, leases: list[str], tracked: tuple[TrackingSource, PsycopgPoolBinding]
) -> None:
    source, binding = tracked
    user_a = source.current.data["username"]
    assert source.calls[0] == (1, 0)  # the pool announces itself before any connection
    assert source.outstanding() == {1: 2}  # min_size connections open with generation 1
    held = await binding.pool.getconn()
    await held.execute("SELECT count(*) FROM users")  # a transaction left open
    assert await backends_of(migrated, user_a) == 2

    user_b, password_b = login(migrated, leases)
    source.set(user_b, password_b)  # emits "rotated"
    await binding.aclose_pending()
    # The idle one is gone at once; the held one still works and finishes its transaction.
    assert await wait_for_backends(migrated, user_a, 1) == 1
    assert source.outstanding()[1] == 1  # generation 1 stays in use until it is closed
    await held.execute("SELECT count(*) FROM users")
    await held.commit()
    await binding.pool.putconn(held)
    assert held.closed
    assert await wait_for_backends(migrated, user_a, 0) == 0
    assert 1 not in source.outstanding()
    assert (await session_user(binding))[0] == user_b
    assert binding.stats.pool_swaps == 1
    assert all(delta in (1, -1) for _, delta in source.calls[1:])


async def test_rotation_nobody_announced_is_refused_on_the_next_getconn(
    migrated: DevStack, leases: list[str], tracked: tuple[TrackingSource, PsycopgPoolBinding]
) -> None:
    source, binding = tracked
    user_a = source.current.data["username"]
    assert (await session_user(binding))[0] == user_a
    source.set(*login(migrated, leases), emit=False)
    # No event: getconn notices the old login, closes it and gets one of the new one.
    assert (await session_user(binding))[0] != user_a
    await binding.aclose_pending()
    assert await wait_for_backends(migrated, user_a, 0) == 0
    assert binding.stats.stale_closed >= 1
    assert 1 not in source.outstanding()


async def test_connection_killed_while_in_use_is_counted_back(
    migrated: DevStack, tracked: tuple[TrackingSource, PsycopgPoolBinding]
) -> None:
    source, binding = tracked
    conn = await binding.pool.getconn()
    row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
    assert row is not None
    assert source.outstanding() == {1: 2}
    async with migrated.admin_connection() as admin:
        await admin.execute("SELECT pg_terminate_backend($1)", row[0])
    with pytest.raises(psycopg.OperationalError):
        await conn.execute("SELECT 1")
    await binding.pool.putconn(conn)
    assert source.outstanding() == {1: 1}  # the broken one is counted back; the idle stays
    assert (await session_user(binding))[0] == source.current.data["username"]


async def test_rejected_login_forces_one_rotation_and_retries(migrated: DevStack) -> None:
    user_a, password_a, lease_a = vault_creds(migrated)
    migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease_a})  # role dropped
    source, issued = vault_refreshed_source(migrated, user_a, password_a)
    try:
        async with bind_pool(migrated.database_url, source, min_size=1) as binding:
            user, _ = await session_user(binding)
            assert user != user_a
            assert user.startswith("v-")
            assert source.rotate_calls == 1
            assert source.forced_generations == [1]  # the generation rejected
            assert binding.stats.login_retries == 1
    finally:
        for lease in issued:
            migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})


async def test_set_role_on_connect_survives_rollbacks(
    migrated: DevStack, leases: list[str]
) -> None:
    user_a, password_a = login(migrated, leases)
    async with bind_pool(
        migrated.database_url, FakeSource(user_a, password_a), assume_role="app_rw",
        min_size=1, max_size=1,
    ) as binding:
        assert await session_user(binding) == (user_a, "app_rw")
        async with binding.pool.connection() as conn:
            await conn.rollback()
        assert await session_user(binding) == (user_a, "app_rw")
        assert binding.stats.connects == 1


def direct_connect(stack: DevStack) -> Callable[..., Awaitable[Any]]:
    """What the pool's connection class does, for one login outside the pool."""
    conninfo = plain_dsn(stack.database_url) or ""

    async def connect(**params: Any) -> Any:
        return await psycopg.AsyncConnection.connect(conninfo, **params)

    return connect


async def test_hostile_role_name_stays_an_identifier(
    migrated: DevStack, leases: list[str]
) -> None:
    user_a, password_a = login(migrated, leases)
    hostile = 'app_rw"; CREATE TABLE pwned (id int); --'
    async with bind_pool(
        migrated.database_url, FakeSource(user_a, password_a), assume_role=hostile, min_size=0,
        max_size=1,
    ) as binding:
        with pytest.raises(psycopg.Error, match="does not exist"):
            await binding.login(direct_connect(migrated), {})
    async with migrated.admin_connection() as conn:
        assert await conn.fetchval("SELECT to_regclass('public.pwned')") is None
    assert await wait_for_backends(migrated, user_a, 0) == 0


async def test_genuine_sql_error_keeps_the_connection(
    tracked: tuple[TrackingSource, PsycopgPoolBinding],
) -> None:
    source, binding = tracked
    connects = binding.stats.connects
    for bad in ("SELECT * FROM no_such_table", "SELECT rolpassword FROM pg_authid", "SELEC 1"):
        with pytest.raises(psycopg.errors.ProgrammingError):
            async with binding.pool.connection() as conn:
                await conn.execute(bad)
    assert (await session_user(binding))[0] == source.current.data["username"]
    assert binding.stats.connects == connects
    assert binding.stats.pool_swaps == 0
    assert source.rotate_calls == 0
    assert source.outstanding() == {1: connects}


async def test_repr_has_no_password(migrated: DevStack) -> None:
    source = FakeSource("someone", "pw-not-shown-123")
    binding = PsycopgPoolBinding(source)
    assert "pw-not-shown-123" not in repr(binding)
    assert "pw-not-shown-123" not in repr(binding.stats)


async def test_source_without_credential_gives_a_clear_error(migrated: DevStack) -> None:
    source = FakeSource("someone", "x")
    source.current = None
    async with bind_pool(migrated.database_url, source, min_size=0, max_size=1) as binding:
        with pytest.raises(ConnectionError, match="no database credential"):
            await binding.login(direct_connect(migrated), {})
