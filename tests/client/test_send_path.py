"""One send path: a respx-mocked transport and the real default (aiohttp) transport give the
same exception class, status, errors, message and retries, so mock tests test production.

Each scenario runs through three transports: the default one against the real dev stack,
httpx's own pool against the same server (an httpx transport that does real I/O), and a respx
router scripted with the answer OpenBao gives.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import respx

from vault_async import (
    AsyncVaultClient,
    ClientConfig,
    Forbidden,
    InvalidPath,
    RetryPolicy,
    VaultConnectionError,
    VaultError,
    VaultTimeout,
)
from vault_async._transport import DefaultTransport, HttpxTransport, httpx_transport
from vault_async.devstack import DevStack
from vault_async.devstack._processes import free_port

from .conftest import ADDR, VirtualTime

Call = Callable[[AsyncVaultClient], Awaitable[object]]
RETRY = RetryPolicy(max_retries=2, backoff_initial=0.1, backoff_max=1.0)


@dataclass(frozen=True)
class Outcome:
    """Everything a caller can observe of a failed call."""

    error_class: type[VaultError]
    status: int | None
    method: str | None
    path: str | None
    errors: tuple[str, ...]
    text: str
    attempts: int


async def outcome(client: AsyncVaultClient, call: Call, vtime: VirtualTime) -> Outcome:
    with pytest.raises(VaultError) as info:
        await call(client)
    err = info.value
    return Outcome(
        type(err), err.status, err.method, err.path, err.errors, str(err), len(vtime.sleeps) + 1
    )


def read_kv(client: AsyncVaultClient) -> Awaitable[object]:
    return client.secrets.kv_v2.read_secret("send-path/missing")


def create_creds(client: AsyncVaultClient) -> Awaitable[object]:
    # creating: retried only when the request certainly never left
    return client.secrets.database.generate_credentials("app")


def real_client(
    addr: str, token: str, vtime: VirtualTime, *, httpx_pool: bool, client_timeout: float
) -> AsyncVaultClient:
    config = ClientConfig(addr=addr, token=token, retry=RETRY, timeout=client_timeout)
    return AsyncVaultClient(
        config=config,
        transport=httpx_transport(config) if httpx_pool else None,
        rng=random.Random(7),
        sleep=vtime.sleep,
        clock=vtime.clock,
    )


def mocked_client(router: respx.MockRouter, token: str, vtime: VirtualTime) -> AsyncVaultClient:
    return AsyncVaultClient(
        config=ClientConfig(addr=ADDR, token=token, retry=RETRY),
        transport=httpx.MockTransport(router.async_handler),
        rng=random.Random(7),
        sleep=vtime.sleep,
        clock=vtime.clock,
    )


async def through_every_transport(
    addr: str,
    token: str,
    call: Call,
    script: Callable[[respx.MockRouter], respx.Route],
    client_timeout: float = 10.0,
) -> list[Outcome]:
    """The outcome of ``call`` over the default transport, httpx's pool and the mock."""
    outcomes = []
    for httpx_pool in (False, True):
        vtime = VirtualTime()
        client = real_client(
            addr, token, vtime, httpx_pool=httpx_pool, client_timeout=client_timeout
        )
        async with client as c:
            assert isinstance(c._transport, HttpxTransport if httpx_pool else DefaultTransport)
            outcomes.append(await outcome(c, call, vtime))
    vtime = VirtualTime()
    router = respx.MockRouter(base_url=ADDR + "/v1", assert_all_called=True)
    route = script(router)
    async with mocked_client(router, token, vtime) as c:
        assert isinstance(c._transport, HttpxTransport)
        outcomes.append(await outcome(c, call, vtime))
    assert route.call_count == outcomes[-1].attempts
    return outcomes


async def test_forbidden_is_the_same_through_every_transport(devstack: DevStack) -> None:
    outcomes = await through_every_transport(
        devstack.vault_addr,
        "hvs.not-a-real-token",
        read_kv,
        lambda r: r.get("/secret/data/send-path/missing").respond(
            403, json={"errors": ["permission denied"]}
        ),
    )
    assert outcomes[0] == Outcome(
        Forbidden,
        403,
        "GET",
        "secret/data/send-path/missing",
        ("permission denied",),
        outcomes[0].text,
        1,
    )
    assert "Forbidden" in outcomes[0].text
    assert outcomes[1] == outcomes[0]
    assert outcomes[2] == outcomes[0]


async def test_not_found_is_the_same_through_every_transport(devstack: DevStack) -> None:
    outcomes = await through_every_transport(
        devstack.vault_addr,
        devstack.root_token,
        read_kv,
        lambda r: r.get("/secret/data/send-path/missing").respond(404, json={"errors": []}),
    )
    assert outcomes[0].error_class is InvalidPath
    assert (outcomes[0].status, outcomes[0].errors, outcomes[0].attempts) == (404, (), 1)
    assert outcomes[1] == outcomes[0]
    assert outcomes[2] == outcomes[0]


async def test_refused_connection_is_the_same_through_every_transport() -> None:
    # nobody listens: the request never left, so even a creating request is retried
    outcomes = await through_every_transport(
        f"http://127.0.0.1:{free_port()}",
        "t",
        create_creds,
        lambda r: r.get("/database/creds/app").mock(side_effect=httpx.ConnectError("refused")),
    )
    assert outcomes[0].error_class is VaultConnectionError
    assert "no response from Vault (ConnectError)" in outcomes[0].text
    assert outcomes[0].attempts == RETRY.max_retries + 1
    assert outcomes[1] == outcomes[0]
    assert outcomes[2] == outcomes[0]


@asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[str, list[int]]]:
    """A server that accepts connections and never answers; counts the connections."""
    accepted: list[int] = []
    writers: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", accepted
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_read_timeout_is_the_same_through_every_transport() -> None:
    # connected, then no answer: the request may have reached Vault, so it is not retried
    async with silent_server() as (addr, accepted):
        outcomes = await through_every_transport(
            addr,
            "t",
            create_creds,
            lambda r: r.get("/database/creds/app").mock(side_effect=httpx.ReadTimeout("slow")),
            client_timeout=0.3,
        )
    assert outcomes[0].error_class is VaultTimeout
    assert "request timed out (ReadTimeout)" in outcomes[0].text
    assert outcomes[0].attempts == 1
    assert len(accepted) == 2  # one connection per real transport: no retry
    assert outcomes[1] == outcomes[0]
    assert outcomes[2] == outcomes[0]
