"""The asyncpg pool follows the credential on a real PostgreSQL: log-in, swap, retry, SET ROLE.

The same guarantees as the SQLAlchemy binding (test_engine_binding.py, test_use_tracking.py),
on a plain ``asyncpg.Pool``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from vault_async.asyncpg import PoolBinding, bind_pool, create_pool
from vault_async.devstack import DevStack

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
async def tracked(migrated: DevStack, leases: list[str]) -> AsyncIterator[
    tuple[TrackingSource, PoolBinding]
]:
    source = TrackingSource(*login(migrated, leases))
    binding = await create_pool(migrated.database_url, source, min_size=0, max_size=4)
    try:
        yield source, binding
    finally:
        await binding.aclose()
    assert source.outstanding() == {}  # closed: every +1, the pool's hold included, is back


async def session_user(binding: PoolBinding) -> tuple[str, str]:
    async with binding.pool.acquire() as con:
        row = await con.fetchrow("SELECT session_user, current_user")
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


async def test_rotation_closes_idle_at_once_and_busy_when_released(
    migrated: DevStack, leases: list[str], tracked: tuple[TrackingSource, PoolBinding]
) -> None:
    source, binding = tracked
    user_a = source.current.data["username"]
    # Before any acquire the pool holds the generation in force (and so announces itself):
    # its idle connections are not counted, the hold keeps their lease until a swap.
    assert source.calls == [(1, 1)]
    held = await binding.pool.acquire()
    transaction = held.transaction()
    await transaction.start()
    await held.fetchval("SELECT count(*) FROM users")
    async with binding.pool.acquire() as idle:  # returned to the pool, stays open there
        await idle.fetchval("SELECT 1")
    assert await backends_of(migrated, user_a) == 2
    assert source.outstanding() == {1: 2}  # the held connection and the pool's hold

    user_b, password_b = login(migrated, leases)
    source.set(user_b, password_b)  # emits "rotated"
    await binding.aclose_pending()
    # The idle one is gone at once; the held one still works and finishes its transaction.
    assert await wait_for_backends(migrated, user_a, 1) == 1
    await held.fetchval("SELECT count(*) FROM users")
    await transaction.commit()
    # Generation 1 stays in use until it is back; the hold moved to 2 once the swap was done.
    assert source.outstanding() == {1: 1, 2: 1}
    await binding.pool.release(held)
    assert await wait_for_backends(migrated, user_a, 0) == 0
    await asyncio.sleep(0)  # the -1 follows the close
    assert source.outstanding() == {2: 1}
    assert (await session_user(binding))[0] == user_b
    assert binding.stats.pool_swaps == 1
    assert binding.stats.stale_closed >= 1
    assert source.outstanding() == {2: 1}
    assert all(delta in (1, -1) for _, delta in source.calls[1:])


async def test_rotation_nobody_announced_is_noticed_on_the_next_acquire(
    migrated: DevStack, leases: list[str], tracked: tuple[TrackingSource, PoolBinding]
) -> None:
    source, binding = tracked
    user_a = source.current.data["username"]
    assert (await session_user(binding))[0] == user_a
    source.set(*login(migrated, leases), emit=False)
    # The idle connection of login A may serve once more (it is counted, so its lease
    # stays); it is closed when returned, and the next one logs in as B.
    await session_user(binding)
    await binding.aclose_pending()
    assert await wait_for_backends(migrated, user_a, 0) == 0
    assert (await session_user(binding))[0] != user_a
    await asyncio.sleep(0)
    assert source.outstanding() == {2: 1}  # the hold, moved by the acquire that noticed


async def test_login_overtaken_by_a_rotation_keeps_its_lease_and_logs_in_again(
    migrated: DevStack, leases: list[str]
) -> None:
    source = TrackingSource(*login(migrated, leases))
    user_a = source.current.data["username"]
    entered, gate = asyncio.Event(), asyncio.Event()

    async def slow_connect(*args: object, **kwargs: object) -> object:
        connection = await asyncpg.connect(*args, **kwargs)  # type: ignore[arg-type]
        entered.set()
        await asyncio.wait_for(gate.wait(), timeout=10)
        return connection

    binding = await create_pool(
        migrated.database_url, source, connect=slow_connect, min_size=0, max_size=2
    )
    try:
        acquiring = asyncio.create_task(session_user(binding))
        await asyncio.wait_for(entered.wait(), timeout=10)  # logged in as A, not yet back
        user_b, password_b = login(migrated, leases)
        source.set(user_b, password_b)  # the swap runs while the login of A is in flight
        await asyncio.wait_for(binding.aclose_pending(), timeout=10)
        gate.set()
        user, _ = await asyncio.wait_for(acquiring, timeout=10)
        # The lease of A was not given up under its login in flight, and no session of A
        # was counted (handed out) after A was given up.
        assert source.counted_after_drop == []
        assert user == user_b
        assert await wait_for_backends(migrated, user_a, 0) == 0
    finally:
        await binding.aclose()
    assert source.outstanding() == {}


async def test_rotation_during_close_leaves_no_swap_behind(
    migrated: DevStack, leases: list[str]
) -> None:
    source = TrackingSource(*login(migrated, leases))
    binding = await create_pool(migrated.database_url, source, min_size=0, max_size=2)
    held = await binding.pool.acquire()
    closing = asyncio.create_task(binding.aclose())  # waits for the connection in use
    for _ in range(100):
        if binding.pool.is_closing():
            break
        await asyncio.sleep(0.01)
    assert binding.pool.is_closing()
    source.set(*login(migrated, leases))  # a rotation while the pool closes
    await binding.pool.release(held)
    await asyncio.wait_for(closing, timeout=10)
    # Nothing left running after aclose: every count is back, the pool's hold included.
    assert source.outstanding() == {}
    assert binding.stats.pool_swaps == 0


async def test_connection_killed_while_in_use_is_counted_back(
    migrated: DevStack, tracked: tuple[TrackingSource, PoolBinding]
) -> None:
    source, binding = tracked
    con = await binding.pool.acquire()
    pid = await con.fetchval("SELECT pg_backend_pid()")
    assert source.outstanding() == {1: 2}  # this connection and the pool's hold
    async with migrated.admin_connection() as admin:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    # The server's goodbye arrives asynchronously; the pool then takes the connection back.
    for _ in range(100):
        if source.outstanding() == {1: 1}:
            break
        await asyncio.sleep(0.05)
    assert source.outstanding() == {1: 1}  # the pool's hold
    await binding.pool.release(con)  # already back: nothing to do
    assert source.outstanding() == {1: 1}
    assert (await session_user(binding))[0] == source.current.data["username"]


async def test_rejected_login_forces_one_rotation_and_retries(migrated: DevStack) -> None:
    user_a, password_a, lease_a = vault_creds(migrated)
    migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease_a})  # role dropped
    source, issued = vault_refreshed_source(migrated, user_a, password_a)
    try:
        async with bind_pool(migrated.database_url, source, min_size=0) as binding:
            user, _ = await session_user(binding)
            assert user != user_a
            assert user.startswith("v-")
            assert source.rotate_calls == 1
            assert source.forced_generations == [1]  # the generation rejected
            assert binding.stats.login_retries == 1
    finally:
        for lease in issued:
            migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})


async def test_set_role_on_connect_survives_the_reset_on_release(
    migrated: DevStack, leases: list[str]
) -> None:
    user_a, password_a = login(migrated, leases)
    async with bind_pool(
        migrated.database_url, FakeSource(user_a, password_a), assume_role="app_rw",
        min_size=1, max_size=1,
    ) as binding:
        assert await session_user(binding) == (user_a, "app_rw")
        assert await session_user(binding) == (user_a, "app_rw")  # after RESET ALL
        assert binding.stats.connects == 1


async def test_hostile_role_name_stays_an_identifier(
    migrated: DevStack, leases: list[str]
) -> None:
    user_a, password_a = login(migrated, leases)
    hostile = 'app_rw"; CREATE TABLE pwned (id int); --'
    async with bind_pool(
        migrated.database_url, FakeSource(user_a, password_a), assume_role=hostile, min_size=0
    ) as binding:
        with pytest.raises(asyncpg.PostgresError, match="does not exist"):
            await session_user(binding)
    async with migrated.admin_connection() as conn:
        assert await conn.fetchval("SELECT to_regclass('public.pwned')") is None
    assert await wait_for_backends(migrated, user_a, 0) == 0


async def test_genuine_sql_error_keeps_the_connection(
    tracked: tuple[TrackingSource, PoolBinding],
) -> None:
    source, binding = tracked
    async with binding.pool.acquire() as con:
        pid = await con.fetchval("SELECT pg_backend_pid()")
    for bad in ("SELECT * FROM no_such_table", "SELECT rolpassword FROM pg_authid", "SELEC 1"):
        with pytest.raises(asyncpg.PostgresError):
            async with binding.pool.acquire() as con:
                await con.fetch(bad)
    async with binding.pool.acquire() as con:
        assert await con.fetchval("SELECT pg_backend_pid()") == pid
    assert binding.stats.connects == 1
    assert binding.stats.pool_swaps == 0
    assert source.rotate_calls == 0
    assert source.outstanding() == {1: 1}  # the pool's hold


async def test_repr_has_no_password(migrated: DevStack) -> None:
    source = FakeSource("someone", "pw-not-shown-123")
    async with bind_pool(migrated.database_url, source, min_size=0) as binding:
        assert "pw-not-shown-123" not in repr(binding)
        assert "pw-not-shown-123" not in repr(binding.stats)


async def test_source_without_credential_gives_a_clear_error(migrated: DevStack) -> None:
    source = FakeSource("someone", "x")
    source.current = None
    with pytest.raises(ConnectionError, match="no database credential"):
        await create_pool(migrated.database_url, source, min_size=1)
