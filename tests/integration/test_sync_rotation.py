"""Proof for the sync Engine binding: queries from threads on 5 s / 15 s credentials through
the sync runtime, across at least two rotations, without one failed query or orphaned session."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest
from sqlalchemy import create_engine, text

from tests.support.pools import (
    assert_rotation_proof,
    in_threads,
    run_queries,
    watch_dropped_sessions,
)
from vault_async import ClientConfig
from vault_async.auth import AppRoleAuth
from vault_async.devstack import DevStack
from vault_async.sqlalchemy_sync import bind_engine, psycopg_url
from vault_async.sync import start

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLE = "syncload"  # at most 8 characters: Vault truncates it in the login name
CONCURRENCY = 12
MAX_SECONDS = 50.0
SELECT = text("SELECT id, username FROM users WHERE id = :id")


async def test_rotations_under_threaded_load_fail_no_query(migrated: DevStack) -> None:
    migrated.create_dynamic_role(ROLE, "5s", "15s")
    pattern = f"v-%-{ROLE}-%"
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_dropped_sessions(migrated, pattern, stop))
    engine = create_engine(psycopg_url(migrated.database_url), pool_size=8, max_overflow=0)
    with (
        concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as threads,
        start(
            ClientConfig.from_env(migrated.env()),
            AppRoleAuth(migrated.role_id, secret_id=migrated.secret_id),
            db_role=ROLE, db_mount=migrated.db_mount,
        ) as runtime,
    ):
        binding = bind_engine(engine, runtime.credentials, assume_role="app_rw")
        first = runtime.credentials.current().generation

        def query(user_id: int) -> object:
            with engine.connect() as conn:
                return conn.execute(SELECT, {"id": user_id}).first()

        stats = await run_queries(
            in_threads(query, threads), concurrency=CONCURRENCY, seconds=MAX_SECONDS,
            until=lambda: runtime.credentials.current().generation >= first + 2,
        )
        # A little more load after the second rotation: its old lease is drained too.
        stats_after = await run_queries(
            in_threads(query, threads), concurrency=CONCURRENCY, seconds=2.0
        )
        rotations = runtime.credentials.current().generation - first
        binding.detach()
        engine.dispose()
    stop.set()
    orphans = await asyncio.wait_for(watcher, timeout=10)
    print(f"\n[sync sqlalchemy] {stats.summary()}; rotations {rotations}; {binding.stats}")
    await assert_rotation_proof(
        migrated, ROLE, (stats, stats_after),
        rotations=rotations, pool_swaps=binding.stats.pool_swaps, orphans=orphans,
    )
