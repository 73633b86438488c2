"""The service's Vault policy reaches its own leases only (dev stack and deploy/vault-init.sh).

A lease of a role the service does not own is issued with the root token; the service's
token must not revoke, renew or look it up, whatever URL or body it sends. Its own leases
still renew (200) and revoke (204), through the client and through raw URL-form calls.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vault_async import AppRoleAuth, AsyncVaultClient, ClientConfig, Forbidden
from vault_async.devstack import DevStack
from vault_async.devstack._configure import REVOCATION_STATEMENTS, dynamic_creation_statements
from vault_async.devstack._policies import service_policy

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FOREIGN_ROLE = "other-team"


async def raw(
    stack: DevStack, method: str, path: str, token: str, body: Any = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.vault_addr, timeout=10) as http:
        return await http.request(
            method, f"/v1/{path}", json=body, headers={"X-Vault-Token": token}
        )


def foreign_lease(stack: DevStack) -> str:
    """A lease of a role written straight through the API (not one of the service's roles)."""
    stack.vault_call(
        "POST", f"{stack.db_mount}/roles/{FOREIGN_ROLE}",
        {
            "db_name": "app",
            "creation_statements": dynamic_creation_statements("app_rw"),
            "revocation_statements": REVOCATION_STATEMENTS,
            "default_ttl": "10m",
            "max_ttl": "1h",
        },
    )
    lease: str = stack.vault_call("GET", f"{stack.db_mount}/creds/{FOREIGN_ROLE}")["lease_id"]
    return lease


def lease_exists(stack: DevStack, lease_id: str) -> bool:
    found = stack.vault_call("PUT", "sys/leases/lookup", {"lease_id": lease_id})
    return found["data"]["id"] == lease_id


@pytest.fixture
async def app_client(devstack: DevStack) -> AsyncIterator[AsyncVaultClient]:
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as client:
        await client.login(
            AppRoleAuth(devstack.role_id, devstack.secret_id, mount_point=devstack.approle_mount)
        )
        yield client


async def assert_foreign_lease_out_of_reach(
    stack: DevStack, token: str, own_lease: str, client: AsyncVaultClient | None = None
) -> None:
    other = foreign_lease(stack)
    if client is not None:
        with pytest.raises(Forbidden):
            await client.sys.leases.revoke(other)
        with pytest.raises(Forbidden):
            await client.sys.leases.renew(other, increment=60)
        with pytest.raises(Forbidden):
            await client.sys.leases.lookup(other)
    attempts = [
        ("sys/leases/revoke", {"lease_id": other}),
        ("sys/leases/renew", {"lease_id": other}),
        ("sys/leases/lookup", {"lease_id": other}),
        ("sys/revoke", {"lease_id": other}),
        ("sys/renew", {"lease_id": other}),
        (f"sys/leases/revoke/{other}", None),
        (f"sys/leases/renew/{other}", None),
        # An allowed URL with another lease in the body: Vault prefers the body's lease_id.
        (f"sys/leases/revoke/{own_lease}", {"lease_id": other}),
        (f"sys/leases/renew/{own_lease}", {"lease_id": other}),
        (f"sys/leases/revoke-prefix/{stack.db_mount}/creds/{FOREIGN_ROLE}", None),
    ]
    for path, body in attempts:
        response = await raw(stack, "PUT", path, token, body)
        assert response.status_code == 403, (path, response.status_code)
    assert lease_exists(stack, other)
    stack.vault_call("PUT", "sys/leases/revoke", {"lease_id": other})


async def test_service_token_cannot_touch_a_lease_of_another_role(
    devstack: DevStack, app_client: AsyncVaultClient
) -> None:
    own = await app_client.secrets.database.generate_credentials(devstack.dynamic_role)
    token = app_client.token
    assert token is not None
    await assert_foreign_lease_out_of_reach(devstack, token, own.lease_id, app_client)
    await app_client.sys.leases.revoke(own.lease_id)


async def test_service_token_renews_and_revokes_its_own_leases(
    devstack: DevStack, app_client: AsyncVaultClient
) -> None:
    own = await app_client.secrets.database.generate_credentials(devstack.dynamic_role)
    renewed = await app_client.sys.leases.renew(own.lease_id, increment=120)
    assert renewed.lease_id == own.lease_id
    assert 0 < renewed.lease_duration <= 120
    await app_client.sys.leases.revoke(own.lease_id)
    assert own.data["username"] not in await devstack.v_roles()

    token = app_client.token
    assert token is not None
    second = await app_client.secrets.database.generate_credentials(devstack.dynamic_role)
    response = await raw(
        devstack, "PUT", f"sys/leases/renew/{second.lease_id}", token, {"increment": 60}
    )
    assert response.status_code == 200, response.text
    response = await raw(devstack, "PUT", f"sys/leases/revoke/{second.lease_id}", token)
    assert response.status_code == 204, response.text
    assert second.data["username"] not in await devstack.v_roles()


async def test_service_token_carries_no_default_policy(
    devstack: DevStack, app_client: AsyncVaultClient
) -> None:
    """Vault's `default` policy grants renew and lookup of any lease by id in the body."""
    info = await app_client.auth.token.lookup_self()
    assert "default" not in info.policies


def deploy_policy(name: str) -> str:
    """The HCL of one `bao policy write <name>` heredoc in deploy/vault-init.sh."""
    script = (ROOT / "deploy" / "vault-init.sh").read_text()
    match = re.search(
        rf"bao policy write {re.escape(name)} - <<'HCL'\n(.*?)\nHCL\n", script, re.DOTALL
    )
    assert match is not None, f"no policy {name!r} in deploy/vault-init.sh"
    return match.group(1)


@pytest.mark.parametrize(
    ("name", "own_role", "other_role"),
    [("app-service", "app", "migrator"), ("app-migrator", "migrator", "app")],
)
async def test_deploy_policy_reaches_only_its_own_leases(
    devstack: DevStack, name: str, own_role: str, other_role: str
) -> None:
    """A policy deploy/vault-init.sh writes, installed on the dev stack (same mount, roles)."""
    policy = f"deploy-{name}-{uuid.uuid4().hex[:8]}"
    devstack.vault_call("PUT", f"sys/policies/acl/{policy}", {"policy": deploy_policy(name)})
    created = devstack.vault_call(
        "POST", "auth/token/create", {"policies": [policy], "no_default_policy": True, "ttl": "10m"}
    )
    token = created["auth"]["client_token"]
    creds = await raw(devstack, "GET", f"{devstack.db_mount}/creds/{own_role}", token)
    assert creds.status_code == 200, creds.text
    own = creds.json()["lease_id"]
    other = await raw(devstack, "GET", f"{devstack.db_mount}/creds/{other_role}", token)
    assert other.status_code == 403
    await assert_foreign_lease_out_of_reach(devstack, token, own)
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr, token=token)) as c:
        renewed = await c.sys.leases.renew(own, increment=60)
        assert renewed.lease_duration > 0
        await c.sys.leases.revoke(own)
        assert (await c.auth.token.lookup_self()).policies == (policy,)
    assert creds.json()["data"]["username"] not in await devstack.v_roles()
    # The AppRoles' tokens are issued without Vault's `default` policy, as here.
    script = (ROOT / "deploy" / "vault-init.sh").read_text()
    assert script.count("token_no_default_policy=true") == 2


def test_deploy_policies_are_the_dev_stack_ones() -> None:
    """deploy/vault-init.sh writes what the dev stack's policy builder writes for its roles."""
    assert deploy_policy("app-service") + "\n" == service_policy("database", ["app"])
    assert deploy_policy("app-migrator") + "\n" == service_policy("database", ["migrator"])
    assert 'path "sys/leases/revoke" ' not in (ROOT / "deploy" / "vault-init.sh").read_text()


@contextlib.asynccontextmanager
async def approle_client(stack: DevStack, env: dict[str, str]) -> AsyncIterator[AsyncVaultClient]:
    """A client logged in with the AppRole credentials of `env` (a dev stack environment)."""
    async with AsyncVaultClient(config=ClientConfig(addr=stack.vault_addr)) as client:
        await client.login(
            AppRoleAuth(
                env["VAULT_ROLE_ID"], env["VAULT_SECRET_ID"], mount_point=stack.approle_mount
            )
        )
        yield client


async def test_dev_stack_service_login_cannot_touch_a_migrator_lease(devstack: DevStack) -> None:
    """The service's environment (`env()`) logs in with the service's policy alone."""
    migrator_lease: str = devstack.vault_call(
        "GET", f"{devstack.db_mount}/creds/{devstack.migrator_role}"
    )["lease_id"]
    try:
        async with approle_client(devstack, devstack.env()) as client:
            with pytest.raises(Forbidden):
                await client.sys.leases.revoke(migrator_lease)
            with pytest.raises(Forbidden):
                await client.sys.leases.renew(migrator_lease, increment=60)
            with pytest.raises(Forbidden):
                await client.secrets.database.generate_credentials(devstack.migrator_role)
            with pytest.raises(Forbidden):  # the client examples' KV is not the service's
                await client.secrets.kv_v2.read_secret("anything")
            assert (await client.auth.token.lookup_self()).policies == ("app-service",)
        assert lease_exists(devstack, migrator_lease)
    finally:
        devstack.vault_call("PUT", f"sys/leases/revoke/{migrator_lease}")


async def test_dev_stack_migrator_login_reaches_only_migrator_leases(devstack: DevStack) -> None:
    """The migrations' environment (`migration_env()`): its own role, not the service's."""
    env = devstack.migration_env()
    assert env["VAULT_ROLE_ID"] != devstack.env()["VAULT_ROLE_ID"]
    service_lease: str = devstack.vault_call(
        "GET", f"{devstack.db_mount}/creds/{devstack.dynamic_role}"
    )["lease_id"]
    try:
        async with approle_client(devstack, env) as client:
            assert (await client.auth.token.lookup_self()).policies == ("app-migrator",)
            with pytest.raises(Forbidden):
                await client.secrets.database.generate_credentials(devstack.dynamic_role)
            with pytest.raises(Forbidden):
                await client.secrets.database.get_static_credentials(devstack.static_role)
            with pytest.raises(Forbidden):
                await client.sys.leases.revoke(service_lease)
            with pytest.raises(Forbidden):
                await client.sys.leases.renew(service_lease, increment=60)
            own = await client.secrets.database.generate_credentials(devstack.migrator_role)
            await client.sys.leases.renew(own.lease_id, increment=60)
            await client.sys.leases.revoke(own.lease_id)
        assert own.data["username"] not in await devstack.v_roles()
        assert lease_exists(devstack, service_lease)
    finally:
        devstack.vault_call("PUT", f"sys/leases/revoke/{service_lease}")


def test_dev_stack_login_environments_carry_no_root_token(devstack: DevStack) -> None:
    """Both log in by AppRole: the root token stays with whoever runs the stack."""
    for env in (devstack.env(), devstack.migration_env()):
        assert "VAULT_TOKEN" not in sorted(env)  # names only in a failure message
        assert [key for key, value in env.items() if value == devstack.root_token] == []
        assert env["VAULT_AUTH_METHOD"] == "approle"
