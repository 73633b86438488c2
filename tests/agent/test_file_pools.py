"""The pool bindings follow FileCredentials as they follow the lease engine: a new login in
the file swaps the pool, and no session of the old login is left."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import backends_of, login, wait_for_backends
from tests.support.agent import replace_file
from vault_async.asyncpg import bind_pool as bind_asyncpg_pool
from vault_async.devstack import DevStack
from vault_async.file_credentials import FileCredentials
from vault_async.psycopg import bind_pool as bind_psycopg_pool

pytestmark = pytest.mark.integration

Query = Callable[[], Awaitable[Any]]


def _asyncpg(stack: DevStack, source: FileCredentials) -> AbstractAsyncContextManager[Query]:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Query]:
        async with bind_asyncpg_pool(stack.database_url, source, min_size=2, max_size=4) as b:

            async def query() -> Any:
                async with b.pool.acquire() as con:
                    return await con.fetchval("SELECT current_user")

            yield query

    return opened()


def _psycopg(stack: DevStack, source: FileCredentials) -> AbstractAsyncContextManager[Query]:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Query]:
        async with bind_psycopg_pool(stack.database_url, source, min_size=2, max_size=4) as b:

            async def query() -> Any:
                async with b.pool.connection() as conn:
                    row = await (await conn.execute("SELECT current_user")).fetchone()
                    return None if row is None else row[0]

            yield query

    return opened()


@pytest.mark.parametrize("opener", [_asyncpg, _psycopg], ids=["asyncpg", "psycopg_pool"])
async def test_a_new_login_in_the_file_swaps_the_pool(
    migrated: DevStack,
    leases: list[str],
    tmp_path: Path,
    opener: Callable[[DevStack, FileCredentials], AbstractAsyncContextManager[Query]],
) -> None:
    old_user, old_password = login(migrated, leases)
    new_user, new_password = login(migrated, leases)
    path = tmp_path / "db.json"
    replace_file(path, json.dumps({"username": old_user, "password": old_password}))
    async with FileCredentials(path, poll_interval=0.05) as source:
        await source.wait_ready(timeout=2)
        rotated = asyncio.Event()
        source.subscribe(lambda event: rotated.set())
        async with opener(migrated, source) as query:
            assert await asyncio.gather(*(query() for _ in range(4))) == [old_user] * 4
            assert await backends_of(migrated, old_user) > 0
            replace_file(path, json.dumps({"username": new_user, "password": new_password}))
            await asyncio.wait_for(rotated.wait(), timeout=5)
            assert source.generation == 2
            assert await query() == new_user
            assert await wait_for_backends(migrated, old_user, 0) == 0
