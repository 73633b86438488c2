"""A genuine SQL error is the application's, not the pool's: no reconnect, no 503.

Only a connection whose login is gone (dropped from outside) is treated as lost; that case is
covered here too, next to the errors that look the same but are not.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from vault_async import AsyncVaultClient
from vault_async.auth import AppRoleAuth
from vault_async.devstack import DevStack
from vault_async.fastapi import (
    SessionDep,
    VaultRuntime,
    add_database_error_handlers,
    is_transient_database_error,
    open_runtime,
)
from vault_async.sqlalchemy import EngineBinding, bind_credentials

from .conftest import ASYNC_DIALECTS, FakeSource, dialect_url, vault_creds, vault_refreshed_source

pytestmark = pytest.mark.integration

POOLED = 3
"""Idle connections the pool holds before the bad statement."""

RLS_TABLE = f"rls_probe_{uuid.uuid4().hex[:8]}"

BAD_STATEMENTS = {
    "undefined-table": ("SELECT * FROM no_such_table_here", "42P01"),
    "insufficient-privilege": ("SELECT rolpassword FROM pg_authid", "42501"),
    "row-level-security": (f"INSERT INTO {RLS_TABLE} (id) VALUES (1)", "42501"),
}


@pytest.fixture(scope="module")
async def rls_table(migrated: DevStack) -> AsyncIterator[str]:
    """A table the service's role may read but whose policy lets it insert nothing."""
    async with migrated.admin_connection() as conn:
        await conn.execute(f"SET ROLE {migrated.owner_role}")
        await conn.execute(f"CREATE TABLE {RLS_TABLE} (id int)")
        await conn.execute(f"ALTER TABLE {RLS_TABLE} ENABLE ROW LEVEL SECURITY")
        await conn.execute(f"CREATE POLICY read_all ON {RLS_TABLE} FOR SELECT USING (true)")
    yield RLS_TABLE
    async with migrated.admin_connection() as conn:
        await conn.execute(f"DROP TABLE {RLS_TABLE}")


@pytest.fixture(params=ASYNC_DIALECTS)
async def engine(migrated: DevStack, request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(dialect_url(migrated, request.param), pool_size=4, max_overflow=0)
    yield engine
    await engine.dispose()


@pytest.fixture
def bound(migrated: DevStack, engine: AsyncEngine) -> Iterator[tuple[EngineBinding, FakeSource]]:
    user, password, lease = vault_creds(migrated)
    source = FakeSource(user, password)
    binding = bind_credentials(engine, source)
    yield binding, source
    binding.detach()
    migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})


async def pooled_pids(engine: AsyncEngine, count: int = POOLED) -> set[int]:
    """Backend PIDs of `count` connections held at once, then returned to the pool."""
    held = [await engine.connect() for _ in range(count)]
    try:
        return {int((await c.execute(text("SELECT pg_backend_pid()"))).scalar_one()) for c in held}
    finally:
        for conn in held:
            await conn.close()


def sqlstate(error: BaseException) -> str | None:
    orig: Any = getattr(error, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return str(state) if state else None


@pytest.mark.parametrize("name", sorted(BAD_STATEMENTS))
async def test_genuine_sql_error_reaches_the_caller_and_keeps_the_pool(
    rls_table: str, engine: AsyncEngine, bound: tuple[EngineBinding, FakeSource], name: str
) -> None:
    binding, source = bound
    statement, expected_state = BAD_STATEMENTS[name]
    before = await pooled_pids(engine)
    assert len(before) == POOLED
    connects = binding.stats.connects

    with pytest.raises(DBAPIError) as info:
        async with engine.connect() as conn:
            await conn.execute(text(statement))

    assert sqlstate(info.value) == expected_state
    assert not info.value.connection_invalidated
    assert not is_transient_database_error(info.value)
    # The same backends serve the next requests: nothing was closed or reopened.
    assert await pooled_pids(engine) == before
    assert binding.stats.connects == connects
    assert binding.stats.permission_invalidations == 0
    assert source.rotate_calls == 0


async def test_a_stream_of_bad_queries_checks_the_login_once(
    migrated: DevStack, engine: AsyncEngine
) -> None:
    user, password, lease = vault_creds(migrated)
    binding = EngineBinding(engine, FakeSource(user, password), login_check_interval=3600)
    binding.attach()
    try:
        for _ in range(5):
            with pytest.raises(DBAPIError):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT * FROM no_such_table_here"))
        assert binding.stats.login_checks == 1
        assert binding.stats.connects == 1
    finally:
        binding.detach()
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})


async def test_login_dropped_from_outside_invalidates_every_connection_of_it(
    migrated: DevStack, engine: AsyncEngine
) -> None:
    user, password, lease = vault_creds(migrated)
    source, leases = vault_refreshed_source(migrated, user, password)
    binding = bind_credentials(engine, source)
    try:
        before = await pooled_pids(engine)
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})
        assert user not in await migrated.v_roles()
        with pytest.raises(DBAPIError) as info:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT count(*) FROM users"))
        assert info.value.connection_invalidated
        assert is_transient_database_error(info.value)
        # Every session of the dropped login is replaced; the new ones log in afresh.
        after = await pooled_pids(engine)
        assert not after & before
        assert source.rotate_calls == 1
        assert binding.stats.permission_invalidations == 1
    finally:
        binding.detach()
        for lease in leases:
            migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})


async def test_old_generation_login_dropped_costs_only_its_own_connection(
    migrated: DevStack, engine: AsyncEngine
) -> None:
    user_a, password_a, lease_a = vault_creds(migrated)
    user_b, password_b, lease_b = vault_creds(migrated)
    source = FakeSource(user_a, password_a)
    binding = bind_credentials(engine, source)
    try:
        held = await engine.connect()  # generation 1, busy through the rotation
        await held.execute(text("SELECT 1"))
        source.set(user_b, password_b)
        await binding.aclose_pending()
        current = await pooled_pids(engine)
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease_a})
        with pytest.raises(DBAPIError) as info:
            await held.execute(text("SELECT count(*) FROM users"))
        await held.close()
        # A's login is gone (looked up from a connection of B's): only A's session goes.
        assert info.value.connection_invalidated
        assert binding.stats.permission_invalidations == 1
        assert binding.stats.login_checks == 1
        assert await pooled_pids(engine) == current
        assert source.rotate_calls == 0
    finally:
        binding.detach()
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease_b})


@pytest.fixture
async def runtime(migrated: DevStack) -> AsyncIterator[VaultRuntime]:
    async with open_runtime(
        migrated.database_url,
        client=AsyncVaultClient(migrated.vault_addr),
        auth=AppRoleAuth(migrated.role_id, secret_id=migrated.secret_id),
        db_role=migrated.dynamic_role,
        engine_options={"pool_size": 4, "max_overflow": 0},
    ) as runtime:
        yield runtime


def service_app(runtime: VaultRuntime) -> FastAPI:
    app = FastAPI()
    add_database_error_handlers(app)
    app.state.vault_runtime = runtime

    @app.get("/good")
    async def good(session: SessionDep) -> int:
        return int((await session.execute(text("SELECT count(*) FROM users"))).scalar_one())

    @app.get("/bad/{name}")
    async def bad(session: SessionDep, name: str) -> None:
        await session.execute(text(BAD_STATEMENTS[name][0]))

    return app


@pytest.mark.parametrize("name", sorted(BAD_STATEMENTS))
async def test_service_answers_a_genuine_permission_error_500(
    rls_table: str, runtime: VaultRuntime, name: str
) -> None:
    transport = httpx.ASGITransport(app=service_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        assert (await client.get("/good")).status_code == 200
        connects = runtime.binding.stats.connects
        response = await client.get(f"/bad/{name}")
        assert response.status_code == 500
        assert "retry-after" not in response.headers
        assert (await client.get("/good")).status_code == 200
    assert runtime.binding.stats.connects == connects
    assert runtime.binding.stats.permission_invalidations == 0
