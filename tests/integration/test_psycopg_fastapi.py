"""FastAPI on the psycopg_pool binding: a pooled connection per request, errors answered cleanly."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from vault_async.devstack import DevStack
from vault_async.fastapi import PsycopgConnectionDep, add_database_error_handlers, pool_lifespan
from vault_async.psycopg import bind_pool

from .conftest import FakeSource, vault_creds
from .test_psycopg_pool import wait_for_backends

pytestmark = pytest.mark.integration


def build_app(stack: DevStack, source: FakeSource) -> FastAPI:
    app = FastAPI(
        lifespan=pool_lifespan(
            lambda: bind_pool(
                stack.database_url, source, assume_role="app_rw", min_size=1, max_size=2
            )
        )
    )
    add_database_error_handlers(app)

    @app.post("/users/{name}")
    async def create(name: str, conn: PsycopgConnectionDep) -> dict[str, str]:
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


async def test_connection_per_request_and_sql_errors_answered(migrated: DevStack) -> None:
    username, password, lease = vault_creds(migrated)
    app = build_app(migrated, FakeSource(username, password))
    name = f"psy-{uuid.uuid4().hex[:8]}"
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
            ) == 2  # the pool committed each request's work when the connection went back
        assert await wait_for_backends(migrated, username, 0) == 0
    finally:
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})
