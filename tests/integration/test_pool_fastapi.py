"""FastAPI on the asyncpg and psycopg_pool bindings: a pooled connection per request, errors
answered cleanly. One app per binding (the handlers speak the driver's own API), one test."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI

from vault_async import asyncpg as asyncpg_binding
from vault_async import psycopg as psycopg_binding
from vault_async.devstack import DevStack
from vault_async.fastapi import (
    ConnectionDep,
    PooledConnections,
    PsycopgConnectionDep,
    add_database_error_handlers,
    pool_lifespan,
)

from .conftest import FakeSource, vault_creds, wait_for_backends

pytestmark = pytest.mark.integration

Opener = Callable[..., AbstractAsyncContextManager[PooledConnections]]


def app_on(stack: DevStack, source: FakeSource, bind_pool: Opener) -> FastAPI:
    app = FastAPI(
        lifespan=pool_lifespan(
            lambda: bind_pool(
                stack.database_url, source, assume_role="app_rw", min_size=1, max_size=2
            )
        )
    )
    add_database_error_handlers(app)
    return app


def asyncpg_app(stack: DevStack, source: FakeSource) -> FastAPI:
    app = app_on(stack, source, asyncpg_binding.bind_pool)

    @app.post("/users/{name}")
    async def create(name: str, con: ConnectionDep) -> dict[str, str]:
        async with con.transaction():
            await con.execute(
                "INSERT INTO users (username, email) VALUES ($1, 'pool@x.test')", name
            )
        return {"user": str(await con.fetchval("SELECT current_user"))}

    @app.get("/broken")
    async def broken(con: ConnectionDep) -> None:
        await con.fetch("SELECT * FROM no_such_table")

    return app


def psycopg_app(stack: DevStack, source: FakeSource) -> FastAPI:
    app = app_on(stack, source, psycopg_binding.bind_pool)

    @app.post("/users/{name}")
    async def create(name: str, conn: PsycopgConnectionDep) -> dict[str, str]:
        # No transaction block: the pool commits the request's work when the connection
        # goes back.
        await conn.execute(
            "INSERT INTO users (username, email) VALUES (%s, 'psy@x.test')", (name,)
        )
        row = await (await conn.execute("SELECT current_user")).fetchone()
        assert row is not None
        return {"user": str(row[0])}

    @app.get("/broken")
    async def broken(conn: PsycopgConnectionDep) -> None:
        await conn.execute("SELECT * FROM no_such_table")

    return app


@pytest.fixture(params=["asyncpg", "psycopg"])
def build_app(request: pytest.FixtureRequest) -> Callable[[DevStack, FakeSource], FastAPI]:
    builders = {"asyncpg": asyncpg_app, "psycopg": psycopg_app}
    builder: Callable[[DevStack, FakeSource], FastAPI] = builders[request.param]
    return builder


async def test_connection_per_request_and_sql_errors_answered(
    migrated: DevStack, build_app: Callable[[DevStack, FakeSource], FastAPI]
) -> None:
    username, password, lease = vault_creds(migrated)
    app = build_app(migrated, FakeSource(username, password))
    name = f"pool-{uuid.uuid4().hex[:8]}"
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                response = await client.post(f"/users/{name}")
                assert response.status_code == 200
                assert response.json() == {"user": "app_rw"}
                broken = await client.get("/broken")
                assert broken.status_code == 500
                assert "no_such_table" not in broken.text
                assert (await client.post(f"/users/{name}-2")).status_code == 200
            binding = app.state.vault_pool
            assert binding.stats.connects <= 2
        assert not hasattr(app.state, "vault_pool")
        async with migrated.admin_connection() as conn:
            assert await conn.fetchval(
                "SELECT count(*) FROM users WHERE username LIKE $1", f"{name}%"
            ) == 2  # psycopg: committed by the pool when each connection went back
        assert await wait_for_backends(migrated, username, 0) == 0
    finally:
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})
