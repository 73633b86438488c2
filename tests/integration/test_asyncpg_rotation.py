"""Proof for the asyncpg binding: concurrent queries on 5 s / 15 s credentials through the lease
engine, across at least two rotations, without one failed query or one orphaned session."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.pools import run_queries, watch_dropped_sessions
from vault_async import AsyncVaultClient, LeaseManager
from vault_async.asyncpg import bind_pool
from vault_async.auth import AppRoleAuth
from vault_async.devstack import DevStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLE = "apgload"  # at most 8 characters: Vault truncates it in the login name
CONCURRENCY = 12
MAX_SECONDS = 50.0


async def test_rotations_under_load_fail_no_query(migrated: DevStack) -> None:
    migrated.create_dynamic_role(ROLE, "5s", "15s")
    pattern = f"v-%-{ROLE}-%"
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_dropped_sessions(migrated, pattern, stop))
    client = AsyncVaultClient(migrated.vault_addr)
    async with client, LeaseManager(client) as manager:
        manager.manage_token(client, AppRoleAuth(migrated.role_id, secret_id=migrated.secret_id))
        creds = manager.manage_database_credentials(client, role=ROLE, mount=migrated.db_mount)
        await creds.wait_ready(timeout=30)
        async with bind_pool(
            migrated.database_url, creds, assume_role="app_rw", min_size=2, max_size=8
        ) as binding:

            async def query(user_id: int) -> object:
                async with binding.pool.acquire() as con:
                    return await con.fetchrow(
                        "SELECT id, username FROM users WHERE id = $1", user_id
                    )

            stats = await run_queries(
                query, concurrency=CONCURRENCY, seconds=MAX_SECONDS,
                until=lambda: creds.rotations >= 2,
            )
            # A little more load after the second rotation: its old lease is drained too.
            stats_after = await run_queries(query, concurrency=CONCURRENCY, seconds=2.0)
        rotations = creds.rotations
    stop.set()
    orphans = await asyncio.wait_for(watcher, timeout=10)
    print(f"\n[asyncpg] {stats.summary()}; rotations {rotations}; {binding.stats}")
    assert stats.failures == [], stats.failures[:5]
    assert stats_after.failures == []
    assert rotations >= 2
    assert len(stats.latencies) > 1000
    assert binding.stats.pool_swaps >= 2
    assert orphans == [], "sessions left open after their login was dropped"
    assert not [r for r in await migrated.v_roles() if f"-{ROLE}-" in r]
    async with migrated.admin_connection() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE $1", pattern
        ) == 0
