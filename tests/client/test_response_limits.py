"""A hostile or broken server cannot make the client read, inflate or keep unbounded data.

Each case runs over the default aiohttp pool, an httpx transport passed as ``transport=``,
and the metrics wrapper around an httpx transport. The server is a loopback one
(tests/support/hostile_http.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.hostile_http import MANY_ERRORS, MB, HostileServer, gzip_bomb
from vault_async import (
    AsyncVaultClient,
    ClientConfig,
    InternalServerError,
    InvalidConfig,
    InvalidRequest,
    MalformedResponse,
    ResponseTooLarge,
    RetryPolicy,
    _translate,
)
from vault_async._prometheus import LatencyRecorder, LatencyTransport
from vault_async._transport import DefaultTransport

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


@pytest.fixture(params=["default", "httpx", "latency-httpx"])
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
    transport: httpx.AsyncBaseTransport | LatencyTransport | None = None
    if kind == "httpx":
        transport = httpx.AsyncHTTPTransport()
    elif kind == "latency-httpx":  # the metrics wrapper adapts the httpx transport itself
        transport = LatencyTransport(
            httpx.AsyncHTTPTransport(),
            LatencyRecorder(),
            config.timeout,
            max_response_bytes=config.max_response_bytes,
        )
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


async def test_only_the_kept_errors_are_scrubbed(
    server: HostileServer, transport_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scrubbed: list[int] = []
    real_scrub = _translate._scrub

    def counting_scrub(errors: tuple[str, ...], secrets: list[str]) -> tuple[str, ...]:
        scrubbed.append(len(errors))
        return real_scrub(errors, secrets)

    monkeypatch.setattr(_translate, "_scrub", counting_scrub)
    async with asyncio.timeout(60), make_client(server, transport_kind, cap=64 * MB) as client:
        with pytest.raises(InvalidRequest) as info:
            await client.request("GET", "many-errors", idempotent=True)
    assert info.value.errors[-1] == f"[{MANY_ERRORS - _translate.MAX_ERRORS} more errors]"
    assert sum(scrubbed) <= _translate.MAX_ERRORS + 1, scrubbed  # the errors kept, the reason


async def test_the_reason_phrase_is_cut_and_scrubbed(bomb: bytes, transport_kind: str) -> None:
    token = "t-0123456789"
    reason = f"Oops {token} " + "R" * 3000
    async with (
        asyncio.timeout(60),
        HostileServer(bomb, reason=reason) as server,
        make_client(server, transport_kind) as client,
    ):
        with pytest.raises(InternalServerError) as info:
            await client.request("GET", "long-reason", idempotent=True)
    for text in (str(info.value), repr(info.value)):
        assert token not in text, text
        assert "R" * 200 not in text, text
    assert "Oops <redacted> RRR" in str(info.value), str(info.value)
    assert len(info.value.message) <= _translate.MAX_REASON_CHARS + 40, info.value.message


async def test_default_transport_under_httpx_never_inflates() -> None:
    async with (
        asyncio.timeout(60),
        HostileServer(gzip_bomb(64)) as server,
        DefaultTransport(max_response_bytes=CAP) as transport,
        httpx.AsyncClient(transport=transport) as plain,
    ):
        with pytest.raises(httpx.DecodingError, match="Content-Encoding"):
            await plain.get(server.addr + "/v1/bomb")
    accept = {k.lower(): v for k, v in server.request_headers.items()}["accept-encoding"]
    assert accept == "identity"


def test_the_cap_is_a_setting() -> None:
    assert ClientConfig().max_response_bytes == 32 * MB
    config = ClientConfig.from_env({"VAULT_MAX_RESPONSE_BYTES": "1024"})
    assert config.max_response_bytes == 1024
    with pytest.raises(InvalidConfig, match="VAULT_MAX_RESPONSE_BYTES"):
        ClientConfig.from_env({"VAULT_MAX_RESPONSE_BYTES": "lots"})
    with pytest.raises(InvalidConfig, match="VAULT_MAX_RESPONSE_BYTES"):
        ClientConfig(max_response_bytes=0)
