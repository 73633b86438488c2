"""A hostile or broken server cannot make the client read, inflate or keep unbounded data.

Each case runs over both transports: the default aiohttp pool and an httpx transport
passed as ``transport=``. The server is a loopback one (tests/support/hostile_http.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.hostile_http import MB, HostileServer, gzip_bomb
from vault_async import (
    AsyncVaultClient,
    ClientConfig,
    InvalidConfig,
    InvalidRequest,
    MalformedResponse,
    ResponseTooLarge,
    RetryPolicy,
)

CAP = 1 * MB
# What loopback socket buffers may hold beyond what the client read (send + receive).
KERNEL_SLACK = 16 * MB


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb(210)


@pytest.fixture
async def server(bomb: bytes) -> AsyncIterator[HostileServer]:
    async with HostileServer(bomb) as running:
        yield running


@pytest.fixture(params=["default", "httpx"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def make_client(server: HostileServer, kind: str, cap: int | None = CAP) -> AsyncVaultClient:
    config = ClientConfig(
        addr=server.addr,
        token="t-0123456789",
        timeout=30,
        retry=RetryPolicy(max_retries=0),
        **({} if cap is None else {"max_response_bytes": cap}),
    )
    transport = httpx.AsyncHTTPTransport() if kind == "httpx" else None
    return AsyncVaultClient(config=config, transport=transport)


@pytest.mark.parametrize("route", ["big", "big-unsized", "endless"])
async def test_a_huge_body_stops_at_the_cap(
    server: HostileServer, transport_kind: str, route: str
) -> None:
    async with asyncio.timeout(60), make_client(server, transport_kind) as client:
        with pytest.raises(ResponseTooLarge) as info:
            await client.request("GET", route, idempotent=True)
    message = str(info.value)
    assert "\n" not in message
    assert str(CAP) in message
    assert "VAULT_MAX_RESPONSE_BYTES" in message
    assert info.value.path == route
    assert server.sent < CAP + KERNEL_SLACK, server.sent


async def test_no_compression_is_asked_for_or_inflated(
    server: HostileServer, transport_kind: str, bomb: bytes
) -> None:
    assert len(bomb) < MB
    async with asyncio.timeout(60), make_client(server, transport_kind, cap=None) as client:
        with pytest.raises(MalformedResponse):  # the packed bytes, never their 210 MiB
            await client.request("GET", "bomb", idempotent=True)
    accept = {k.lower(): v for k, v in server.request_headers.items()}["accept-encoding"]
    assert accept == "identity"


async def test_vault_errors_are_cut_in_the_exception(
    server: HostileServer, transport_kind: str
) -> None:
    async with asyncio.timeout(60), make_client(server, transport_kind, cap=64 * MB) as client:
        with pytest.raises(InvalidRequest) as info:
            await client.request("GET", "errors", idempotent=True)
    message = str(info.value)
    assert len(message) < 4000, len(message)
    assert len(repr(info.value)) < 4000
    assert "more characters" in message
    assert "more errors" in message
    assert sum(len(e) for e in info.value.errors) < 4000


def test_the_cap_is_a_setting() -> None:
    assert ClientConfig().max_response_bytes == 32 * MB
    config = ClientConfig.from_env({"VAULT_MAX_RESPONSE_BYTES": "1024"})
    assert config.max_response_bytes == 1024
    with pytest.raises(InvalidConfig, match="VAULT_MAX_RESPONSE_BYTES"):
        ClientConfig.from_env({"VAULT_MAX_RESPONSE_BYTES": "lots"})
    with pytest.raises(InvalidConfig, match="VAULT_MAX_RESPONSE_BYTES"):
        ClientConfig(max_response_bytes=0)
