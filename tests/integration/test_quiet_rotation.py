"""A rotation on a quiet service: the old lease is revoked only after its idle connections close.

Nothing is checked out when the credential is replaced, so no connection holds the old
generation; its idle pooled sessions are closed by the pool swap, which runs after the
``rotated`` event. PostgreSQL's ``DROP ROLE`` leaves sessions open, so a revocation that won
that race would leave a session of a login nobody has. The swap is delayed here (a busy event
loop, a slow close) so a revocation that does not wait for it is seen winning.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.pools import watch_login_end
from vault_async import AsyncVaultClient, LeaseManager
from vault_async.asyncpg import PoolBinding
from vault_async.auth import AppRoleAuth
from vault_async.devstack import DevStack
from vault_async.lifecycle import LeaseConfig, ManagedSecret
from vault_async.psycopg import PsycopgPoolBinding
from vault_async.sqlalchemy import EngineBinding

from .conftest import dialect_url

pytestmark = pytest.mark.integration

ROLE = "quiet"  # at most 8 characters: Vault truncates it in the login name
IDLE = 4
SWAP_DELAY = 1.0
"""Seconds each binding's swap waits before it starts closing connections."""

EAGER = LeaseConfig(min_force_interval=0)  # the forced rotation is not shared with the login

Pool = Callable[[DevStack, ManagedSecret], AbstractAsyncContextManager[None]]


class SlowEngineBinding(EngineBinding):
    async def swap_pool(self) -> None:
        await asyncio.sleep(SWAP_DELAY)
        await super().swap_pool()


class SlowPoolBinding(PoolBinding):
    async def swap_pool(self) -> None:
        await asyncio.sleep(SWAP_DELAY)
        await super().swap_pool()


class SlowPsycopgBinding(PsycopgPoolBinding):
    async def swap_pool(self) -> None:
        await asyncio.sleep(SWAP_DELAY)
        await super().swap_pool()


def sqlalchemy_pool(driver: str) -> Pool:
    @asynccontextmanager
    async def pool(stack: DevStack, creds: ManagedSecret) -> AsyncIterator[None]:
        engine = create_async_engine(
            dialect_url(stack, driver), pool_size=IDLE, max_overflow=0
        )
        binding = SlowEngineBinding(engine, creds)
        binding.attach()
        try:
            held = [await engine.connect() for _ in range(IDLE)]
            for conn in held:
                await conn.execute(text("SELECT 1"))
            for conn in held:
                await conn.close()  # all idle in the pool, none checked out
            yield
        finally:
            await binding.aclose()
            await engine.dispose()

    return pool


@asynccontextmanager
async def asyncpg_pool(stack: DevStack, creds: ManagedSecret) -> AsyncIterator[None]:
    binding = await SlowPoolBinding(creds).open(
        stack.database_url, min_size=IDLE, max_size=IDLE
    )
    try:
        yield
    finally:
        await binding.aclose()


@asynccontextmanager
async def psycopg_pool(stack: DevStack, creds: ManagedSecret) -> AsyncIterator[None]:
    binding = await SlowPsycopgBinding(creds).open(
        stack.database_url, min_size=IDLE, max_size=IDLE
    )
    try:
        yield
    finally:
        await binding.aclose()


POOLS: dict[str, Pool] = {
    "sqlalchemy+asyncpg": sqlalchemy_pool("asyncpg"),
    "sqlalchemy+psycopg": sqlalchemy_pool("psycopg"),
    "asyncpg": asyncpg_pool,
    "psycopg": psycopg_pool,
}


@pytest.mark.parametrize("kind", list(POOLS))
async def test_idle_sessions_close_before_the_old_lease_is_revoked(
    migrated: DevStack, kind: str
) -> None:
    migrated.create_dynamic_role(ROLE, "1h", "2h")
    client = AsyncVaultClient(migrated.vault_addr)
    async with client, LeaseManager(client, EAGER) as manager:
        manager.manage_token(client, AppRoleAuth(migrated.role_id, secret_id=migrated.secret_id))
        creds = manager.manage_database_credentials(client, role=ROLE, mount=migrated.db_mount)
        old = (await creds.wait_ready(timeout=30)).data["username"]
        async with POOLS[kind](migrated, creds):
            async with migrated.admin_connection() as conn:
                pids = [
                    r["pid"]
                    for r in await conn.fetch(
                        "SELECT pid FROM pg_stat_activity WHERE usename = $1", old
                    )
                ]
            assert len(pids) == IDLE
            watcher = asyncio.create_task(
                watch_login_end(migrated, old, pids, seconds=10 + SWAP_DELAY)
            )
            await creds.force_rotate("quiet pool")
            end = await asyncio.wait_for(watcher, timeout=20 + SWAP_DELAY)
    assert end.role_gone_at is not None, "the old lease was never revoked"
    assert end.sessions_gone_at is not None, "the old login's idle sessions stayed open"
    # The sessions went first: none is left once the drop has been seen (a backend whose
    # client had closed may still be leaving pg_stat_activity at the very poll of the drop).
    assert end.alive_after_drop == [], "sessions of the old login outlived its role"
