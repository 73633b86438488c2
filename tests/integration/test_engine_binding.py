"""The engine follows the credential on a real PostgreSQL: swap, stale close, retry, SET ROLE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from vault_async.devstack import DevStack
from vault_async.sqlalchemy import EngineBinding, Prewarm, bind_credentials

from .conftest import (
    ASYNC_DIALECTS,
    FakeSource,
    backends_of,
    dialect_url,
    vault_creds,
    vault_refreshed_source,
    wait_for_backends,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=ASYNC_DIALECTS)
async def engine(migrated: DevStack, request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(dialect_url(migrated, request.param), pool_size=4, max_overflow=0)
    yield engine
    await engine.dispose()


async def session_user(engine: AsyncEngine) -> tuple[str, str]:
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT session_user, current_user"))).one()
    return str(row[0]), str(row[1])


async def test_rotation_swaps_the_pool_and_closes_old_logins(
    migrated: DevStack, engine: AsyncEngine
) -> None:
    user_a, password_a, lease_a = vault_creds(migrated)
    user_b, password_b, lease_b = vault_creds(migrated)
    source = FakeSource(user_a, password_a)
    binding = bind_credentials(engine, source)
    try:
        # Two connections with login A: one idle in the pool, one held in a transaction.
        held = await engine.connect()
        await held.begin()
        await held.execute(text("SELECT count(*) FROM users"))
        async with engine.connect() as idle:  # returned to the pool, stays open there
            await idle.execute(text("SELECT 1"))
        assert await backends_of(migrated, user_a) == 2

        source.set(user_b, password_b)  # emits "rotated"
        # The idle one is replaced at once; the held one still works and finishes its
        # transaction, and closes when it comes back.
        assert await wait_for_backends(migrated, user_a, 1) == 1
        await held.execute(text("SELECT count(*) FROM users"))
        await held.commit()
        await held.close()
        assert await wait_for_backends(migrated, user_a, 0) == 0
        await asyncio.wait_for(binding.aclose_pending(), 10)
        # New work runs as B, on the same engine object.
        assert (await session_user(engine))[0] == user_b
        assert binding.stats.pool_swaps == 1
        assert binding.stats.prewarmed >= 1
    finally:
        binding.detach()
        for lease in (lease_a, lease_b):
            migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})


async def test_connection_made_in_a_swapped_out_pool_after_the_swap_is_closed(
    migrated: DevStack, engine: AsyncEngine
) -> None:
    # Without a rollover the pool is swapped out at once. A checkout already waiting in it
    # gets a record returned there after the swap, reconnects it with the new login and
    # returns it to that pool. Nothing would ever close it there: once the new login's lease
    # is replaced in turn, its revocation would leave that session open under a dropped role.
    user_a, password_a, lease_a = vault_creds(migrated)
    user_b, password_b, lease_b = vault_creds(migrated)
    source = FakeSource(user_a, password_a)
    binding = bind_credentials(engine, source, prewarm=Prewarm(enabled=False))
    try:
        held = [await engine.connect() for _ in range(4)]  # the whole pool (max_overflow=0)
        for conn in held:
            await conn.execute(text("SELECT 1"))

        async def waiter() -> str:
            async with engine.connect() as conn:
                return str((await conn.execute(text("SELECT session_user"))).scalar_one())

        waiting = asyncio.create_task(waiter())
        for _ in range(20):  # into the old pool's queue: no connection is free
            await asyncio.sleep(0)
        assert not waiting.done()
        source.set(user_b, password_b)  # emits "rotated": the pool is swapped out
        await binding.aclose_pending()
        for conn in held:
            await conn.close()
        assert await asyncio.wait_for(waiting, timeout=10) == user_b
        # Every connection went back to the swapped-out pool and was closed there.
        assert await wait_for_backends(migrated, user_a, 0) == 0
        assert await wait_for_backends(migrated, user_b, 0) == 0
    finally:
        binding.detach()
        for lease in (lease_a, lease_b):
            migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})


async def test_stale_connection_is_not_handed_out_without_event(
    migrated: DevStack, engine: AsyncEngine
) -> None:
    user_a, password_a, lease_a = vault_creds(migrated)
    user_b, password_b, lease_b = vault_creds(migrated)
    source = FakeSource(user_a, password_a)
    binding = bind_credentials(engine, source)
    try:
        assert (await session_user(engine))[0] == user_a
        source.set(user_b, password_b, emit=False)  # no event: checkout must notice
        assert (await session_user(engine))[0] == user_b
        assert await wait_for_backends(migrated, user_a, 0) == 0
    finally:
        binding.detach()
        for lease in (lease_a, lease_b):
            migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})


async def test_rejected_login_forces_one_rotation_and_retries(
    migrated: DevStack, engine: AsyncEngine
) -> None:
    user_a, password_a, lease_a = vault_creds(migrated)
    migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease_a})  # role dropped
    source, leases = vault_refreshed_source(migrated, user_a, password_a)
    binding = bind_credentials(engine, source)
    try:
        user, _ = await session_user(engine)
        assert user != user_a
        assert user.startswith("v-")
        assert source.rotate_calls == 1
        assert source.forced_generations == [1]  # the generation rejected
        assert binding.stats.login_retries == 1
    finally:
        binding.detach()
        for lease in leases:
            migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})


async def test_set_role_on_connect(migrated: DevStack, engine: AsyncEngine) -> None:
    user_a, password_a, lease_a = vault_creds(migrated)
    binding = bind_credentials(engine, FakeSource(user_a, password_a), assume_role="app_rw")
    try:
        assert await session_user(engine) == (user_a, "app_rw")
        # The same pooled connection again, after the pool's rollback on return.
        assert await session_user(engine) == (user_a, "app_rw")
        assert binding.stats.connects == 1
    finally:
        binding.detach()
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease_a})


async def test_hostile_role_name_stays_an_identifier(
    migrated: DevStack, engine: AsyncEngine
) -> None:
    user_a, password_a, lease_a = vault_creds(migrated)
    hostile = 'app_rw"; CREATE TABLE pwned (id int); --'
    binding = bind_credentials(engine, FakeSource(user_a, password_a), assume_role=hostile)
    try:
        with pytest.raises(DBAPIError, match="does not exist"):
            await session_user(engine)
        async with migrated.admin_connection() as conn:
            assert await conn.fetchval("SELECT to_regclass('public.pwned')") is None
    finally:
        binding.detach()
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease_a})


def test_binding_repr_has_no_password(migrated: DevStack) -> None:
    engine = create_async_engine(migrated.database_url)
    binding = EngineBinding(engine, FakeSource("someone", "pw-not-shown-123"))
    assert "pw-not-shown-123" not in repr(binding)


async def test_login_dropped_from_outside_recovers_after_one_error(
    migrated: DevStack, engine: AsyncEngine
) -> None:
    user_a, password_a, lease_a = vault_creds(migrated)
    source, leases = vault_refreshed_source(migrated, user_a, password_a)
    binding = bind_credentials(engine, source)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT count(*) FROM users"))
        # Vault drops the login while its session sits open in the pool.
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease_a})
        assert user_a not in await migrated.v_roles()
        # Its session stays open; the schema's USAGE came with app_rw, now gone.
        with pytest.raises(DBAPIError, match=r"does not exist|permission denied") as info:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT count(*) FROM users"))
        assert info.value.connection_invalidated
        # The next request reconnects, the rejected login forces a rotation, and it works.
        async with engine.connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one()
        assert count >= 0
        assert source.rotate_calls == 1
        assert source.forced_generations == [1]  # the generation rejected
        assert binding.stats.permission_invalidations == 1
        assert (await session_user(engine))[0] != user_a
    finally:
        binding.detach()
        for lease in leases:
            migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})


async def test_connection_returned_to_a_swapped_out_pool_is_closed(
    migrated: DevStack, engine: AsyncEngine
) -> None:
    user_a, password_a, lease_a = vault_creds(migrated)
    source = FakeSource(user_a, password_a)
    binding = bind_credentials(engine, source, prewarm=Prewarm(enabled=False))
    try:
        held = await engine.connect()
        await held.execute(text("SELECT 1"))
        await binding.swap_pool()  # same credential: only the pool changes under `held`
        await held.close()  # back to the old pool, which nothing else would ever close
        assert await wait_for_backends(migrated, user_a, 0) == 0
        assert (await session_user(engine))[0] == user_a
    finally:
        binding.detach()
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease_a})


async def test_connection_returned_to_a_pool_the_application_disposed_is_closed(
    migrated: DevStack, engine: AsyncEngine
) -> None:
    # engine.dispose() from the application replaces the pool too: a connection out at the
    # time comes back to the replaced pool, where nothing would ever close it (and a later
    # rollover would count it as the engine's).
    user_a, password_a, lease_a = vault_creds(migrated)
    binding = bind_credentials(engine, FakeSource(user_a, password_a))
    try:
        held = await engine.connect()
        await held.execute(text("SELECT 1"))
        await engine.dispose()
        await held.close()
        assert await wait_for_backends(migrated, user_a, 0) == 0
        assert (await session_user(engine))[0] == user_a
    finally:
        binding.detach()
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease_a})
