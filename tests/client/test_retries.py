"""Retry rules: idempotent requests retry on connect errors, 412, 429, 5xx (not 501);
requests that create things retry only when the request certainly never left."""

from __future__ import annotations

import random
import ssl

import aiohttp
import httpx
import pytest
import respx

from vault_async import (
    AppRoleAuth,
    AsyncVaultClient,
    InternalServerError,
    InvalidRequest,
    RetryPolicy,
    UnexpectedStatus,
    VaultConnectionError,
    VaultError,
    VaultTimeout,
)
from vault_async._retry import backoff_delay, parse_retry_after, retryable_status
from vault_async._translate import transport_failure
from vault_async._transport import httpx_error

from .conftest import VirtualTime, make_client

KV_OK = {"data": {"data": {"k": "v"}, "metadata": {"version": 1}}}
CREDS_OK = {"lease_id": "database/creds/app/x", "lease_duration": 60, "data": {"username": "u"}}
LOGIN_OK = {"auth": {"client_token": "new-token", "lease_duration": 60, "renewable": True}}


@pytest.mark.parametrize("status", [412, 429, 500, 502, 503, 504])
async def test_idempotent_read_retries_then_succeeds(
    client: AsyncVaultClient, router: respx.MockRouter, vtime: VirtualTime, status: int
) -> None:
    route = router.get("/secret/data/app").mock(
        side_effect=[
            httpx.Response(status, json={}),
            httpx.Response(status),
            httpx.Response(200, json=KV_OK),
        ]
    )
    secret = await client.secrets.kv_v2.read_secret("app")
    assert secret.data == {"k": "v"}
    assert route.call_count == 3
    assert len(vtime.sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 501])
async def test_idempotent_read_does_not_retry_client_errors(
    client: AsyncVaultClient, router: respx.MockRouter, vtime: VirtualTime, status: int
) -> None:
    route = router.get("/secret/data/app").respond(status, json={"errors": []})
    with pytest.raises(VaultError) as info:
        await client.secrets.kv_v2.read_secret("app")
    assert info.value.status == status
    assert route.call_count == 1
    assert vtime.sleeps == []


async def test_retry_count_is_bounded(
    client: AsyncVaultClient, router: respx.MockRouter, vtime: VirtualTime
) -> None:
    route = router.get("/secret/data/app").respond(500, json={"errors": ["down"]})
    with pytest.raises(InternalServerError):
        await client.secrets.kv_v2.read_secret("app")
    assert route.call_count == 4  # 1 + max_retries (3)
    assert len(vtime.sleeps) == 3


async def test_retries_stop_at_deadline(router: respx.MockRouter, vtime: VirtualTime) -> None:
    policy = RetryPolicy(max_retries=100, backoff_initial=1.0, backoff_max=1.0, deadline=5.0)
    route = router.get("/secret/data/app").respond(503, json={})
    async with make_client(router, vtime, retry=policy) as c:
        with pytest.raises(Exception, match="503"):
            await c.secrets.kv_v2.read_secret("app")
    assert vtime.now < 5.0
    assert 1 < route.call_count < 100


async def test_retry_after_is_honoured(
    client: AsyncVaultClient, router: respx.MockRouter, vtime: VirtualTime
) -> None:
    router.get("/secret/data/app").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}, json={}),
            httpx.Response(200, json=KV_OK),
        ]
    )
    await client.secrets.kv_v2.read_secret("app")
    assert vtime.sleeps == [3.0]


async def test_retry_after_beyond_deadline_gives_up(
    router: respx.MockRouter, vtime: VirtualTime
) -> None:
    policy = RetryPolicy(max_retries=3, deadline=10.0)
    route = router.get("/secret/data/app").respond(429, headers={"Retry-After": "60"}, json={})
    async with make_client(router, vtime, retry=policy) as c:
        with pytest.raises(Exception, match="429"):
            await c.secrets.kv_v2.read_secret("app")
    assert route.call_count == 1
    assert vtime.sleeps == []


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("t"), httpx.RemoteProtocolError("x")]
)
async def test_idempotent_retries_on_transport_errors(
    client: AsyncVaultClient, router: respx.MockRouter, exc: Exception
) -> None:
    route = router.get("/secret/data/app").mock(side_effect=[exc, httpx.Response(200, json=KV_OK)])
    assert (await client.secrets.kv_v2.read_secret("app")).data == {"k": "v"}
    assert route.call_count == 2


@pytest.mark.parametrize("status", [412, 429, 500, 502, 503])
async def test_creating_requests_not_retried_on_status(
    client: AsyncVaultClient, router: respx.MockRouter, status: int
) -> None:
    creds = router.get("/database/creds/app").respond(status, json={})
    login = router.post("/auth/approle/login").respond(status, json={})
    with pytest.raises(Exception, match=str(status)):
        await client.secrets.database.generate_credentials("app")
    with pytest.raises(Exception, match=str(status)):
        await client.login(AppRoleAuth("role", "secret"))
    assert creds.call_count == 1
    assert login.call_count == 1


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ReadTimeout("t"), VaultTimeout),
        (httpx.RemoteProtocolError("reset"), VaultConnectionError),
        (httpx.ReadError("reset"), VaultConnectionError),
        (httpx.WriteTimeout("t"), VaultTimeout),
    ],
)
async def test_creating_requests_not_retried_once_maybe_sent(
    client: AsyncVaultClient, router: respx.MockRouter, exc: Exception, cls: type[Exception]
) -> None:
    creds = router.get("/database/creds/app").mock(side_effect=exc)
    with pytest.raises(cls):
        await client.secrets.database.generate_credentials("app")
    assert creds.call_count == 1


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ConnectTimeout("t"), httpx.PoolTimeout("t")]
)
async def test_creating_requests_retried_when_never_sent(
    client: AsyncVaultClient, router: respx.MockRouter, exc: Exception
) -> None:
    creds = router.get("/database/creds/app").mock(
        side_effect=[exc, httpx.Response(200, json=CREDS_OK)]
    )
    login = router.post("/auth/approle/login").mock(
        side_effect=[exc, httpx.Response(200, json=LOGIN_OK)]
    )
    secret = await client.secrets.database.generate_credentials("app")
    assert secret.lease_id == "database/creds/app/x"
    result = await client.login(AppRoleAuth("role", "secret"))
    assert result.client_token == "new-token"
    assert client.token == "new-token"
    assert creds.call_count == 2
    assert login.call_count == 2


async def test_renewals_are_retried(client: AsyncVaultClient, router: respx.MockRouter) -> None:
    route = router.put("/sys/leases/renew/l1").mock(
        side_effect=[
            httpx.Response(502, json={}),
            httpx.Response(200, json={"lease_id": "l1", "lease_duration": 30, "renewable": True}),
        ]
    )
    secret = await client.sys.leases.renew("l1", increment=30)
    assert (secret.lease_id, secret.lease_duration, secret.renewable) == ("l1", 30, True)
    assert route.call_count == 2


async def test_no_retries_when_zero(router: respx.MockRouter, vtime: VirtualTime) -> None:
    route = router.get("/secret/data/app").respond(500, json={})
    async with make_client(router, vtime, retry=RetryPolicy(max_retries=0)) as c:
        with pytest.raises(InternalServerError):
            await c.secrets.kv_v2.read_secret("app")
    assert route.call_count == 1


def test_backoff_full_jitter_bounds() -> None:
    policy = RetryPolicy(max_retries=10, backoff_initial=0.1, backoff_max=2.0)
    rng = random.Random(3)
    for attempt in range(12):
        cap = min(2.0, 0.1 * 2**attempt)
        delays = [backoff_delay(attempt, policy, rng) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # the full range is used, not a fixed step


def test_retryable_status_table() -> None:
    assert [s for s in range(400, 600) if retryable_status(s)] == [412, 429] + [
        s for s in range(500, 600) if s != 501
    ]


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_aiohttp_errors_become_httpx_errors() -> None:
    key = aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None)
    refused = aiohttp.ClientConnectorError(key, OSError(111, "refused"))
    assert type(httpx_error(refused)) is httpx.ConnectError
    assert "ClientConnectorError" in str(httpx_error(refused))
    assert type(httpx_error(aiohttp.ConnectionTimeoutError())) is httpx.ConnectTimeout
    assert type(httpx_error(aiohttp.SocketTimeoutError())) is httpx.ReadTimeout
    assert type(httpx_error(TimeoutError())) is httpx.ReadTimeout
    disconnected = httpx_error(aiohttp.ServerDisconnectedError())
    assert type(disconnected) is httpx.RemoteProtocolError
    assert type(httpx_error(ConnectionResetError())) is httpx.ReadError


@pytest.mark.parametrize(
    ("exc", "cls", "unsent"),
    [
        (httpx.ConnectError("refused"), VaultConnectionError, True),
        (httpx.ConnectTimeout("slow"), VaultTimeout, True),
        (httpx.PoolTimeout("busy"), VaultTimeout, True),
        (httpx.ReadTimeout("slow"), VaultTimeout, False),
        (httpx.RemoteProtocolError("gone"), VaultConnectionError, False),
        (httpx.ReadError("reset"), VaultConnectionError, False),
    ],
)
def test_transport_errors_translated(
    exc: httpx.TransportError, cls: type[VaultError], unsent: bool
) -> None:
    failure = transport_failure(exc, method="GET", path="p")
    assert type(failure.error) is cls
    assert failure.unsent is unsent
    assert type(exc).__name__ in failure.error.message
    assert "TLS" not in failure.error.message


def test_tls_failures_are_named_whatever_the_transport() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed")
    key = aiohttp.client_reqrep.ConnectionKey("h", 1, True, True, None, None, None)
    aiohttp_error = aiohttp.ClientConnectorCertificateError(key, verify)
    aiohttp_error.__cause__ = verify
    from_aiohttp = httpx_error(aiohttp_error)
    from_aiohttp.__cause__ = aiohttp_error  # as DefaultTransport.send raises it
    from_httpx = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]")
    from_httpx.__cause__ = verify  # as httpx's pool raises it (through httpcore)
    messages = {
        transport_failure(e, method="GET", path="p").error.message
        for e in (from_aiohttp, from_httpx)
    }
    assert messages == {
        "no response from Vault (ConnectError, TLS certificate verification failed)"
    }


async def test_unexpected_status_not_retried(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    route = router.get("/secret/data/app").respond(307, headers={"Location": "http://x"})
    with pytest.raises(UnexpectedStatus):
        await client.secrets.kv_v2.read_secret("app")
    assert route.call_count == 1


async def test_cas_conflict_is_invalid_request_not_retried(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    route = router.post("/secret/data/app").respond(
        400, json={"errors": ["check-and-set parameter did not match the current version"]}
    )
    with pytest.raises(InvalidRequest, match="check-and-set"):
        await client.secrets.kv_v2.create_or_update_secret("app", {"a": "1"}, cas=1)
    assert route.call_count == 1
