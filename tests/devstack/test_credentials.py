"""The dev stack's credentials are real: PostgreSQL accepts them, and stops accepting them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.postgres import can_login, connected_as
from vault_async.devstack import DevStack
from vault_async.devstack._configure import AppRoleCredentials

pytestmark = pytest.mark.integration


async def vault(
    stack: DevStack, method: str, path: str, token: str, body: Any = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.vault_addr, timeout=10) as http:
        return await http.request(
            method, f"/v1/{path}", json=body, headers={"X-Vault-Token": token}
        )


async def approle_token(stack: DevStack, login: AppRoleCredentials | None = None) -> str:
    """A token of the service's AppRole login, or of `login`."""
    login = login or AppRoleCredentials(stack.role_id, stack.secret_id)
    response = await vault(
        stack, "POST", "auth/approle/login", "",
        {"role_id": login.role_id, "secret_id": login.secret_id},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["auth"]["client_token"]
    return token


async def login(stack: DevStack, user: str, password: str) -> str:
    """Log in and return PostgreSQL's `current_user` (refusals raise; see `can_login`)."""
    async with connected_as(stack, user, password) as conn:
        who: str = await conn.fetchval("SELECT current_user")
    return who


async def test_approle_login_gets_the_service_policy(devstack: DevStack) -> None:
    token = await approle_token(devstack)
    lookup = (await vault(devstack, "GET", "auth/token/lookup-self", token)).json()["data"]
    assert "app-service" in lookup["policies"]
    assert "root" not in lookup["policies"]
    # The policy is narrow: it cannot administer Vault.
    denied = await vault(devstack, "GET", "sys/policies/acl", token)
    assert denied.status_code == 403


async def test_dynamic_credentials_log_in_until_revoked(devstack: DevStack) -> None:
    token = await approle_token(devstack)
    secret = (await vault(devstack, "GET", "database/creds/app", token)).json()
    user, password = secret["data"]["username"], secret["data"]["password"]
    assert user.startswith("v-")
    assert await login(devstack, user, password) == user

    # The body form is refused: the policy names the leases it may revoke, in the URL.
    by_body = await vault(
        devstack, "PUT", "sys/leases/revoke", token, {"lease_id": secret["lease_id"]}
    )
    assert by_body.status_code == 403
    revoked = await vault(devstack, "PUT", f"sys/leases/revoke/{secret['lease_id']}", token)
    assert revoked.status_code == 204
    assert user not in await devstack.v_roles()
    assert not await can_login(devstack, user, password)


async def test_credentials_past_valid_until_no_longer_log_in(devstack: DevStack) -> None:
    devstack.create_dynamic_role("two-seconds", "2s", "2s")
    response = await vault(devstack, "GET", "database/creds/two-seconds", devstack.root_token)
    secret = response.json()
    user, password = secret["data"]["username"], secret["data"]["password"]
    assert await login(devstack, user, password) == user

    async with devstack.admin_connection() as conn:
        valid_until = await conn.fetchval(
            "SELECT extract(epoch FROM rolvaliduntil) FROM pg_roles WHERE rolname = $1", user
        )
    assert valid_until is not None
    assert abs(float(valid_until) - (time.time() + 2)) < 5

    deadline = time.monotonic() + 15
    while await can_login(devstack, user, password):
        assert time.monotonic() < deadline, "an expired credential still logs in"
        await asyncio.sleep(0.5)


async def test_static_role_credentials_log_in(devstack: DevStack) -> None:
    token = await approle_token(devstack)
    static = (await vault(devstack, "GET", "database/static-creds/app-static", token)).json()
    assert static["data"]["username"] == "app_static"
    assert await login(devstack, "app_static", static["data"]["password"]) == "app_static"
    assert not await can_login(devstack, "app_static", static["data"]["password"] + "x")


async def test_roles_split_owner_and_service_rights(devstack: DevStack) -> None:
    """Migrators create objects as app_owner; service users read and write them, create nothing."""
    token = await approle_token(devstack)
    migrator_token = await approle_token(devstack, devstack.migrator_login)
    mig = (await vault(devstack, "GET", "database/creds/migrator", migrator_token)).json()["data"]
    app = (await vault(devstack, "GET", "database/creds/app", token)).json()["data"]

    async with connected_as(devstack, mig["username"], mig["password"]) as conn:
        await conn.execute('SET ROLE "app_owner"')
        await conn.execute("CREATE TABLE devstack_probe (id serial PRIMARY KEY, v text)")
        owner = await conn.fetchval(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'devstack_probe'"
        )
        assert owner == "app_owner"

    async with connected_as(devstack, app["username"], app["password"]) as conn:
        await conn.execute("INSERT INTO devstack_probe (v) VALUES ('x')")
        assert await conn.fetchval("SELECT count(*) FROM devstack_probe") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE not_allowed (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute('SET ROLE "app_owner"')
    async with devstack.admin_connection() as admin:
        await admin.execute("DROP TABLE devstack_probe")


async def test_extra_approle_role_has_its_own_token_ttls(devstack: DevStack) -> None:
    creds = devstack.create_approle_role("short-tokens", token_ttl="7s", token_max_ttl="9s")
    response = await vault(
        devstack, "POST", "auth/approle/login", "",
        {"role_id": creds.role_id, "secret_id": creds.secret_id},
    )
    auth = response.json()["auth"]
    assert auth["lease_duration"] == 7
    assert auth["policies"] == ["app-service"]  # the service's policy, nothing more
    assert creds.role_id != devstack.role_id


async def test_service_token_ttl_bounds_a_crashed_replicas_login(devstack: DevStack) -> None:
    """The service's token lives 5 min unless renewed: a killed replica's database login (a
    child of that token) is revoked at most 5 min after the kill, not after the lease's TTL."""
    response = await vault(
        devstack, "POST", "auth/approle/login", "",
        {"role_id": devstack.role_id, "secret_id": devstack.secret_id},
    )
    auth = response.json()["auth"]
    assert (auth["lease_duration"], auth["renewable"]) == (300, True)


def test_approle_credentials_repr_shows_no_secret_id(devstack: DevStack) -> None:
    for login in (devstack.migrator_login, devstack.examples_login):
        assert login.secret_id
        assert login.secret_id not in repr(login)
        assert login.role_id in repr(login)  # which login it is stays visible
