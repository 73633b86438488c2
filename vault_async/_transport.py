"""Transports: the default one over aiohttp's pool, any httpx transport, and the one place
where transport errors become VaultErrors.

Why not httpx's own machinery on the hot path: measured with
``benchmarks/client_throughput.py`` at concurrency 32 against a local OpenBao, httpx's
pool reached about 0.1x raw aiohttp, and httpx.AsyncClient over ``httpx-aiohttp`` about
0.25x: the per-request cost is in httpx's request/response objects, not in the socket.
So the client talks to :class:`DefaultTransport` through a direct call, and to any other
``httpx.AsyncBaseTransport`` (respx's mock, ``httpx.MockTransport``, a user's transport)
through ``handle_async_request``. ``DefaultTransport`` is itself an httpx transport, so it
can serve a plain ``httpx.AsyncClient`` too.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

import aiohttp
import httpx
from yarl import URL

from ._config import ClientConfig
from ._exceptions import VaultConnectionError, VaultError, VaultTimeout

__all__ = [
    "DefaultTransport",
    "RawResponse",
    "TransportFailure",
    "default_transport",
    "httpx_transport",
    "map_transport_error",
    "send_via_httpx",
]

KEEPALIVE_EXPIRY = 30.0


class RawResponse:
    """Status, headers and the whole body: all the client needs from a response."""

    __slots__ = ("content", "headers", "reason", "status")

    def __init__(
        self, status: int, headers: Mapping[str, str], content: bytes, reason: str
    ) -> None:
        self.status = status
        self.headers = headers
        self.content = content
        self.reason = reason


class DefaultTransport(httpx.AsyncBaseTransport):
    """One aiohttp connection pool; usable directly (fast path) or as an httpx transport."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        pool_size: int = 100,
        timeout: float = 60.0,
    ) -> None:
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._pool_size = pool_size
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Built on first use, inside the running event loop, as aiohttp wants.
        connector = aiohttp.TCPConnector(
            limit=self._pool_size, ssl=self._ssl, keepalive_timeout=KEEPALIVE_EXPIRY
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=True, trust_env=False
        )
        return self._session

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None
    ) -> RawResponse:
        """Send a request whose URL is already fully quoted; read the whole body."""
        session = self._session if self._session is not None else self._open()
        async with session.request(
            method, URL(url, encoded=True), headers=headers, data=content, allow_redirects=False
        ) as resp:
            body = await resp.read()
            return RawResponse(resp.status, resp.headers, body, resp.reason or "")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The httpx transport interface, for use under an ``httpx.AsyncClient``."""
        content = await request.aread()
        try:
            raw = await self.request(
                request.method, str(request.url), dict(request.headers), content or None
            )
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        return httpx.Response(
            raw.status, headers=list(raw.headers.items()), content=raw.content, request=request
        )

    async def aclose(self) -> None:
        """Close the pool."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def send_via_httpx(
    transport: httpx.AsyncBaseTransport,
    timeouts: httpx.Timeout,
    method: str,
    url: str,
    headers: Mapping[str, str],
    content: bytes | None,
) -> RawResponse:
    """Send through any httpx transport (as httpx.AsyncClient would, minus its extras)."""
    request = httpx.Request(
        method, url, headers=headers, content=content, extensions={"timeout": timeouts.as_dict()}
    )
    response = await transport.handle_async_request(request)
    try:
        body = await response.aread()
    finally:
        await response.aclose()
    return RawResponse(response.status_code, response.headers, body, response.reason_phrase)


def default_transport(
    config: ClientConfig, ssl_context: ssl.SSLContext | None = None
) -> DefaultTransport:
    """The default transport for a configuration (``ssl_context`` overrides its TLS)."""
    return DefaultTransport(
        ssl_context=ssl_context if ssl_context is not None else config.ssl_context(),
        pool_size=config.pool_size,
        timeout=config.timeout,
    )


def httpx_transport(config: ClientConfig) -> httpx.AsyncBaseTransport:
    """httpx's own pool (kept for comparison and for users who prefer it)."""
    ctx = config.ssl_context()
    return httpx.AsyncHTTPTransport(
        verify=ctx if ctx is not None else True,
        trust_env=False,
        limits=httpx.Limits(
            max_connections=config.pool_size,
            max_keepalive_connections=config.pool_size,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        ),
    )


class TransportFailure:
    """A translated transport error and whether the request surely never reached Vault."""

    __slots__ = ("error", "unsent")

    def __init__(self, error: VaultError, unsent: bool) -> None:
        self.error = error
        self.unsent = unsent


_UNSENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)
_TIMEOUTS = (httpx.TimeoutException, TimeoutError, asyncio.TimeoutError)


def map_transport_error(exc: BaseException, *, method: str, path: str) -> TransportFailure:
    """Translate an httpx/aiohttp/OS error; the message names the error type, no payload.

    Only a failed connect is "certainly unsent"; a reset or timeout after connecting
    may have reached Vault, so requests that create things are not retried then.
    """
    origin = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
    unsent = isinstance(origin, _UNSENT)
    kind = type(origin).__name__
    error: VaultError
    if isinstance(origin, _TIMEOUTS):
        error = VaultTimeout(f"request timed out ({kind})", method=method, path=path)
    else:
        error = VaultConnectionError(f"no response from Vault ({kind})", method=method, path=path)
    return TransportFailure(error, unsent)
