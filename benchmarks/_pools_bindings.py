"""The rows of ``benchmarks/pools.py``: each binding opened on a credential source, as a query.

Each opener takes the stack's ``DATABASE_URL`` and a source (a fixed login or the lease
engine's rotating one) and yields a :data:`~tests.support.pools.Query` that acquires a
connection, runs one ``SELECT`` and gives the connection back, like a request. The sync
bindings run on ``WORKERS`` threads of their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.pools import Query, in_threads
from vault_async._credential_source import CredentialSource
from vault_async.asyncpg import bind_pool
from vault_async.lifecycle import ManagedSecret
from vault_async.psycopg import bind_pool as bind_psycopg_pool
from vault_async.sqlalchemy import bind_credentials
from vault_async.sqlalchemy_sync import bind_engine, psycopg_url
from vault_async.sync import StaticSyncCredentials, SyncCredentials, SyncCredentialSource

WORKERS = 8
POOL_SIZE = 10
SELECT = "SELECT id, username FROM users WHERE id = $1"
SELECT_PYFORMAT = SELECT.replace("$1", "%s")
SELECT_NAMED = SELECT.replace("$1", ":id")

OpenQuery = Callable[[str, CredentialSource], AbstractAsyncContextManager[Query]]


def sync_credentials(source: CredentialSource) -> SyncCredentialSource:
    """The thread-safe view a sync binding takes of ``source`` (call it on the engine's loop)."""
    if isinstance(source, ManagedSecret):
        return SyncCredentials(source, asyncio.get_running_loop())
    value = source.current
    assert value is not None
    return StaticSyncCredentials(value.data["username"], value.data["password"])


@asynccontextmanager
async def asyncpg_query(dsn: str, source: CredentialSource) -> AsyncIterator[Query]:
    async with bind_pool(dsn, source, min_size=POOL_SIZE, max_size=POOL_SIZE) as binding:

        async def query(user_id: int) -> object:
            async with binding.pool.acquire() as con:
                return await con.fetchrow(SELECT, user_id)

        yield query


@asynccontextmanager
async def psycopg_pool_query(dsn: str, source: CredentialSource) -> AsyncIterator[Query]:
    async with bind_psycopg_pool(
        dsn, source, min_size=POOL_SIZE, max_size=POOL_SIZE
    ) as binding:

        async def query(user_id: int) -> object:
            async with binding.pool.connection() as conn:
                cursor = await conn.execute(SELECT_PYFORMAT, (user_id,))
                return await cursor.fetchone()

        yield query


@asynccontextmanager
async def sqlalchemy_async_query(dsn: str, source: CredentialSource) -> AsyncIterator[Query]:
    """The ``AsyncEngine`` binding on ``postgresql+psycopg``."""
    url = dsn.replace("postgresql+asyncpg://", "postgresql+psycopg://", 1)
    engine = create_async_engine(url, pool_size=POOL_SIZE, max_overflow=0)
    binding = bind_credentials(engine, source)
    select = text(SELECT_NAMED)
    try:

        async def query(user_id: int) -> object:
            async with engine.connect() as conn:
                return (await conn.execute(select, {"id": user_id})).first()

        yield query
    finally:
        await binding.aclose()
        await engine.dispose()


@asynccontextmanager
async def sqlalchemy_sync_query(dsn: str, source: CredentialSource) -> AsyncIterator[Query]:
    """The sync ``Engine`` binding (Flask-SQLAlchemy's), its load on WORKERS threads."""
    engine = create_engine(psycopg_url(dsn), pool_size=POOL_SIZE, max_overflow=0)
    binding = bind_engine(engine, sync_credentials(source))
    select = text(SELECT_NAMED)

    def query(user_id: int) -> object:
        with engine.connect() as conn:
            return conn.execute(select, {"id": user_id}).first()

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as threads:
        try:
            yield in_threads(query, threads)
        finally:
            binding.detach()
            engine.dispose()
