"""Batch tokens: the login and lookup-self results say so, for the lease engine to skip them.

A batch token (``b.``/``hvb.``) has no accessor and cannot be renewed or revoked.
"""

from __future__ import annotations

import pytest

from tests.client._util import unique
from vault_async import (
    AppRoleAuth,
    AsyncVaultClient,
    ClientConfig,
    InvalidRequest,
    TokenAuth,
)
from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration


async def _approle_role(root_client: AsyncVaultClient, mount: str, token_type: str) -> AppRoleAuth:
    """A new AppRole role issuing ``token_type`` tokens, and its credentials."""
    role = unique(f"{token_type}-role")
    base = f"auth/{mount}/role/{role}"
    settings = {"token_type": token_type, "token_ttl": "10m", "token_policies": ["default"]}
    await root_client.request("POST", base, json=settings, idempotent=True)
    role_id = (await root_client.request("GET", f"{base}/role-id", idempotent=True))["data"]
    secret_id = (await root_client.request("POST", f"{base}/secret-id", idempotent=False))["data"]
    return AppRoleAuth(role_id["role_id"], secret_id["secret_id"], mount_point=mount)


async def test_approle_batch_token_is_reported_as_batch(
    devstack: DevStack, root_client: AsyncVaultClient
) -> None:
    method = await _approle_role(root_client, devstack.approle_mount, "batch")
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as client:
        auth = await client.login(method)
        assert auth.token_type == "batch"
        assert auth.is_batch
        assert not auth.renewable
        assert auth.accessor == ""
        assert 0 < auth.lease_duration <= 600

        info = await client.auth.token.lookup_self()
        assert info.type == info.token_type == "batch"
        assert info.is_batch
        assert not info.renewable
        assert 0 < info.ttl <= 600
        assert info.expire_time

        # What the lease engine must not try: Vault refuses both for a batch token.
        with pytest.raises(InvalidRequest, match="batch tokens cannot be renewed"):
            await client.auth.token.renew_self()
        with pytest.raises(InvalidRequest, match="batch tokens cannot be revoked"):
            await client.auth.token.revoke_self()

    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as client:
        given = await client.login(TokenAuth(auth.client_token))  # facts from lookup-self
        assert given.token_type == "batch"
        assert given.is_batch
        assert not given.renewable


async def test_approle_service_token_is_not_batch(
    devstack: DevStack, root_client: AsyncVaultClient
) -> None:
    method = await _approle_role(root_client, devstack.approle_mount, "service")
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as client:
        auth = await client.login(method)
        assert auth.token_type == "service"
        assert not auth.is_batch
        assert auth.renewable
        assert auth.accessor
        info = await client.auth.token.lookup_self()
        assert info.token_type == "service"
        assert not info.is_batch
        assert info.expire_time
