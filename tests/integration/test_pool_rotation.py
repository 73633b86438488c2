"""Proof for the async pool bindings (asyncpg, psycopg_pool, and SQLAlchemy on postgresql+asyncpg
and postgresql+psycopg): concurrent queries on 5 s / 15 s credentials through the lease engine,
across at least two rotations, without one failed query or one orphaned session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.pools import Query, assert_rotation_proof, run_queries, watch_dropped_sessions
from vault_async import AsyncVaultClient, LeaseManager
from vault_async.asyncpg import bind_pool as bind_asyncpg_pool
from vault_async.auth import AppRoleAuth
from vault_async.devstack import DevStack
from vault_async.lifecycle import ManagedSecret
from vault_async.psycopg import bind_pool
from vault_async.sqlalchemy import bind_credentials

from .conftest import dialect_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLE = "poolrot"  # with its index, at most 8 characters: Vault truncates it in the login name
CONCURRENCY = 12
MAX_SECONDS = 50.0


@asynccontextmanager
async def asyncpg_pool_query(
    stack: DevStack, creds: ManagedSecret
) -> AsyncIterator[tuple[Query, Callable[[], object]]]:
    async with bind_asyncpg_pool(
        stack.database_url, creds, assume_role="app_rw", min_size=2, max_size=8
    ) as binding:

        async def query(user_id: int) -> object:
            async with binding.pool.acquire() as con:
                return await con.fetchrow("SELECT id, username FROM users WHERE id = $1", user_id)

        yield query, lambda: binding.stats


@asynccontextmanager
async def psycopg_pool_query(
    stack: DevStack, creds: ManagedSecret
) -> AsyncIterator[tuple[Query, Callable[[], object]]]:
    async with bind_pool(
        stack.database_url, creds, assume_role="app_rw", min_size=2, max_size=8
    ) as binding:

        async def query(user_id: int) -> object:
            async with binding.pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT id, username FROM users WHERE id = %s", (user_id,)
                )
                return await cursor.fetchone()

        yield query, lambda: binding.stats


@asynccontextmanager
async def sqlalchemy_query(
    stack: DevStack, creds: ManagedSecret, driver: str
) -> AsyncIterator[tuple[Query, Callable[[], object]]]:
    """An ``AsyncEngine`` on ``postgresql+<driver>`` bound to the credential."""
    engine = create_async_engine(dialect_url(stack, driver), pool_size=8, max_overflow=0)
    binding = bind_credentials(engine, creds, assume_role="app_rw")
    select = text("SELECT id, username FROM users WHERE id = :id")
    try:

        async def query(user_id: int) -> object:
            async with engine.connect() as conn:
                return (await conn.execute(select, {"id": user_id})).first()

        yield query, lambda: binding.stats
    finally:
        await binding.aclose()
        await engine.dispose()


BINDINGS: dict[
    str,
    Callable[[DevStack, ManagedSecret], AbstractAsyncContextManager[
        tuple[Query, Callable[[], object]]
    ]],
] = {
    "asyncpg": asyncpg_pool_query,
    "psycopg_pool": psycopg_pool_query,
    "sqlalchemy+psycopg": lambda stack, creds: sqlalchemy_query(stack, creds, "psycopg"),
    "sqlalchemy+asyncpg": lambda stack, creds: sqlalchemy_query(stack, creds, "asyncpg"),
}


@pytest.mark.parametrize("name", list(BINDINGS))
async def test_rotations_under_load_fail_no_query(migrated: DevStack, name: str) -> None:
    role = f"{ROLE}{list(BINDINGS).index(name)}"
    migrated.create_dynamic_role(role, "5s", "15s")
    pattern = f"v-%-{role}-%"
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_dropped_sessions(migrated, pattern, stop))
    client = AsyncVaultClient(migrated.vault_addr)
    async with client, LeaseManager(client) as manager:
        manager.manage_token(client, AppRoleAuth(migrated.role_id, secret_id=migrated.secret_id))
        creds = manager.manage_database_credentials(client, role=role, mount=migrated.db_mount)
        await creds.wait_ready(timeout=30)
        async with BINDINGS[name](migrated, creds) as (query, stats_of):
            stats = await run_queries(
                query, concurrency=CONCURRENCY, seconds=MAX_SECONDS,
                until=lambda: creds.rotations >= 2,
            )
            # A little more load after the second rotation: its old lease is drained too.
            stats_after = await run_queries(query, concurrency=CONCURRENCY, seconds=2.0)
            binding_stats = stats_of()
        rotations = creds.rotations
    stop.set()
    orphans = await asyncio.wait_for(watcher, timeout=10)
    print(f"\n[{name}] {stats.summary()}; rotations {rotations}; {binding_stats}")
    await assert_rotation_proof(
        migrated, role, (stats, stats_after), rotations=rotations,
        pool_swaps=getattr(binding_stats, "pool_swaps", 0), orphans=orphans,
    )
