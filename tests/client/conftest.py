"""Fixtures for client tests: a respx-mocked Vault on a virtual clock, and real-server clients."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from vault_async import AppRoleAuth, AsyncVaultClient, ClientConfig, RetryPolicy
from vault_async.devstack import DevStack

ADDR = "http://vault.test:8200"
TOKEN = "hvs.CAESIDONOTLEAKTHISTOKEN"


class VirtualTime:
    """A clock that only moves when the client sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def vtime() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(base_url=ADDR + "/v1", assert_all_called=False)


def make_client(
    router: respx.MockRouter,
    vtime: VirtualTime,
    *,
    retry: RetryPolicy | None = None,
    namespace: str | None = None,
) -> AsyncVaultClient:
    config = ClientConfig(
        addr=ADDR,
        token=TOKEN,
        namespace=namespace,
        retry=retry or RetryPolicy(max_retries=3, backoff_initial=0.1, backoff_max=1.0),
    )
    return AsyncVaultClient(
        config=config,
        transport=httpx.MockTransport(router.async_handler),
        rng=random.Random(7),
        sleep=vtime.sleep,
        clock=vtime.clock,
    )


@pytest.fixture
async def client(router: respx.MockRouter, vtime: VirtualTime) -> AsyncIterator[AsyncVaultClient]:
    async with make_client(router, vtime) as c:
        yield c


@pytest.fixture
async def root_client(devstack: DevStack) -> AsyncIterator[AsyncVaultClient]:
    """A real-server client holding the root token."""
    config = ClientConfig(addr=devstack.vault_addr, token=devstack.root_token)
    async with AsyncVaultClient(config=config) as c:
        yield c


@pytest.fixture
async def app_client(devstack: DevStack) -> AsyncIterator[AsyncVaultClient]:
    """A real-server client logged in through the service's AppRole (the service's policy)."""
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as c:
        await c.login(
            AppRoleAuth(devstack.role_id, devstack.secret_id, mount_point=devstack.approle_mount)
        )
        yield c


@pytest.fixture
async def examples_client(devstack: DevStack) -> AsyncIterator[AsyncVaultClient]:
    """A real-server client logged in through the examples' AppRole (KV, transit, unwrap)."""
    login = devstack.examples_login
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as c:
        await c.login(
            AppRoleAuth(login.role_id, login.secret_id, mount_point=devstack.approle_mount)
        )
        yield c
