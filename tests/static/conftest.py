"""Clients of the real dev stack for the Vault KV provider's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from vault_async import AppRoleAuth, AsyncVaultClient, ClientConfig
from vault_async.devstack import DevStack


@pytest.fixture
async def kv_client(devstack: DevStack) -> AsyncIterator[AsyncVaultClient]:
    """Logged in through the examples' AppRole, whose policy reads and writes ``secret/``."""
    login = devstack.examples_login
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as client:
        await client.login(
            AppRoleAuth(login.role_id, login.secret_id, mount_point=devstack.approle_mount)
        )
        yield client


@pytest.fixture
async def service_client(devstack: DevStack) -> AsyncIterator[AsyncVaultClient]:
    """Logged in through the service's AppRole, whose policy grants no KV path."""
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as client:
        await client.login(
            AppRoleAuth(devstack.role_id, devstack.secret_id, mount_point=devstack.approle_mount)
        )
        yield client
