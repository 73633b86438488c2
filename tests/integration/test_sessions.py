"""get_session against the real stack: commit on success, rollback on error, one engine for life."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vault_async import AsyncVaultClient
from vault_async.auth import AppRoleAuth
from vault_async.devstack import DevStack
from vault_async.fastapi import VaultRuntime, get_session, health_payload, open_runtime

pytestmark = pytest.mark.integration

Session = Annotated[AsyncSession, Depends(get_session)]


def build_app() -> FastAPI:
    app = FastAPI()

    @app.post("/ok/{name}")
    async def ok(name: str, session: Session) -> dict[str, str]:
        await session.execute(
            text("INSERT INTO users (username, email) VALUES (:n, 'ok@x.test')"), {"n": name}
        )
        return {"user": str((await session.execute(text("SELECT current_user"))).scalar())}

    @app.post("/fail/{name}")
    async def fail(name: str, session: Session) -> None:
        await session.execute(
            text("INSERT INTO users (username, email) VALUES (:n, 'no@x.test')"), {"n": name}
        )
        raise HTTPException(418, "changed my mind")

    return app


@pytest.fixture
async def runtime(migrated: DevStack) -> AsyncIterator[VaultRuntime]:
    async with open_runtime(
        migrated.database_url,
        client=AsyncVaultClient(migrated.vault_addr),
        auth=AppRoleAuth(migrated.role_id, secret_id=migrated.secret_id),
        db_role=migrated.dynamic_role,
    ) as runtime:
        yield runtime


async def exists(stack: DevStack, name: str) -> bool:
    async with stack.admin_connection() as conn:
        return bool(await conn.fetchval("SELECT count(*) FROM users WHERE username = $1", name))


async def test_commit_on_success_rollback_on_error(
    migrated: DevStack, runtime: VaultRuntime
) -> None:
    app = build_app()
    app.state.vault_runtime = runtime
    kept, dropped = f"kept-{uuid.uuid4().hex[:8]}", f"dropped-{uuid.uuid4().hex[:8]}"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.post(f"/ok/{kept}")
        assert response.status_code == 200
        assert response.json()["user"].startswith("v-")
        assert (await client.post(f"/fail/{dropped}")).status_code == 418
    assert await exists(migrated, kept)
    assert not await exists(migrated, dropped)
    db_state = runtime.snapshot()[runtime.db_secret or ""]
    assert db_state.ready
    assert runtime.binding.stats.connects >= 1


async def test_runtime_exit_revokes_what_it_created(migrated: DevStack) -> None:
    before = set(await migrated.v_roles())
    async with open_runtime(
        migrated.database_url,
        client=AsyncVaultClient(migrated.vault_addr),
        auth=AppRoleAuth(migrated.role_id, secret_id=migrated.secret_id),
        db_role=migrated.dynamic_role,
    ) as runtime:
        async with runtime.engine.connect() as conn:
            user = (await conn.execute(text("SELECT current_user"))).scalar_one()
        assert user in set(await migrated.v_roles()) - before
    assert user not in await migrated.v_roles()


async def test_static_role_mode(migrated: DevStack) -> None:
    async with open_runtime(
        migrated.database_url,
        client=AsyncVaultClient(migrated.vault_addr),
        auth=AppRoleAuth(migrated.role_id, secret_id=migrated.secret_id),
        db_static_role=migrated.static_role,
    ) as runtime:
        async with runtime.engine.connect() as conn:
            user = (await conn.execute(text("SELECT current_user"))).scalar_one()
            await conn.execute(text("SELECT count(*) FROM users"))
        state = runtime.snapshot()[runtime.db_secret or ""]
        assert state.kind == "database_static"
    assert user == "app_static"


async def test_plain_mode_uses_the_url_login(migrated: DevStack) -> None:
    url = (
        f"postgresql+asyncpg://{migrated.pg_superuser}:{migrated.pg_superuser_password}"
        f"@{migrated.pg_host}:{migrated.pg_port}/{migrated.database}"
    )
    async with open_runtime(url) as runtime:
        async with runtime.engine.connect() as conn:
            user = (await conn.execute(text("SELECT current_user"))).scalar_one()
        assert runtime.mode == "plain"
        assert runtime.snapshot() == {}
    assert user == migrated.pg_superuser


async def test_given_token_is_renewed_but_not_revoked(migrated: DevStack) -> None:
    created = migrated.vault_call(
        "POST", "auth/token/create", {"policies": ["app-service"], "ttl": "1h"}
    )
    token = created["auth"]["client_token"]
    async with open_runtime(
        migrated.database_url,
        client=AsyncVaultClient(migrated.vault_addr, token=token),
        auth=None,
        db_role=migrated.dynamic_role,
    ) as runtime, runtime.engine.connect() as conn:
        user = (await conn.execute(text("SELECT current_user"))).scalar_one()
    looked_up = migrated.vault_call("POST", "auth/token/lookup", {"token": token})
    assert looked_up["data"]["ttl"] > 0
    assert user not in await migrated.v_roles()  # the database lease itself was revoked


async def wait_status(runtime: VaultRuntime, wanted: str, limit: float = 15) -> dict[str, Any]:
    body: dict[str, Any] = {}
    with anyio.fail_after(limit):
        while True:
            status, body = health_payload(runtime)
            if status == wanted:
                return body
            await asyncio.sleep(0.1)


async def test_health_degraded_while_vault_is_unreachable(migrated: DevStack) -> None:
    async with open_runtime(
        migrated.database_url,
        client=AsyncVaultClient(migrated.vault_addr),
        auth=AppRoleAuth(migrated.role_id, secret_id=migrated.secret_id),
        db_role=migrated.dynamic_role,
        probe_interval=0.5,
        recent_window=2.0,
    ) as runtime:
        await wait_status(runtime, "ok")
        migrated.pause_vault()
        try:
            body = await wait_status(runtime, "degraded")
            assert body["vault"]["answered_recently"] is False
            assert body["database"]["ttl_remaining"] > 0
            # The credential still works while Vault is away.
            async with runtime.engine.connect() as conn:
                await conn.execute(text("SELECT count(*) FROM users"))
        finally:
            migrated.resume_vault()
        body = await wait_status(runtime, "ok")
        assert body["vault"]["answered_recently"] is True
