"""Transports: the one interface every request goes through, and its two implementations.

The client builds the method, the quoted URL, the headers and the encoded body, and calls
:meth:`Transport.send`. It gets a :class:`RawResponse` back, or an ``httpx.TransportError``
(httpx's exception tree is the common language, since any httpx transport is accepted), which
``_translate.transport_failure`` turns into a VaultError. So the client code, the retries
and the error translation are the same whatever the transport:

- :class:`DefaultTransport`: aiohttp's pool; aiohttp's errors become httpx's in one place
  (:func:`httpx_error`).
- :class:`HttpxTransport`: any ``httpx.AsyncBaseTransport`` (respx's mock,
  ``httpx.MockTransport``, httpx's own pool, a wrapper) through ``handle_async_request``.

Why not httpx's request and response objects for every request: measured with
``benchmarks/client_throughput.py`` at concurrency 32 against a local OpenBao, httpx's pool
reached about 0.1x raw aiohttp, httpx.AsyncClient over ``httpx-aiohttp`` about 0.25x, and
building an ``httpx.Request`` and ``httpx.Response`` around each aiohttp call costs a few
hundred microseconds: the per-request cost is in those objects, not in the socket.
``DefaultTransport`` is an httpx transport too, so it can serve a plain ``httpx.AsyncClient``.

Both read the body as a stream and stop once it passes ``max_response_bytes`` (a declared
``Content-Length`` over it is refused before reading), closing the connection and raising
:class:`ResponseTooLarge`. Neither inflates a compressed body: the client asks for
``Accept-Encoding: identity`` and both hand over the bytes as they came (under a plain
``httpx.AsyncClient``, ``DefaultTransport`` refuses a compressed answer instead).
"""

from __future__ import annotations

import abc
import ssl
from collections.abc import Mapping

import aiohttp
import httpx
from yarl import URL

from ._config import DEFAULT_MAX_RESPONSE_BYTES, ClientConfig
from ._exceptions import ResponseTooLarge

__all__ = [
    "DefaultTransport",
    "HttpxTransport",
    "RawResponse",
    "Transport",
    "as_transport",
    "default_transport",
    "httpx_error",
    "httpx_transport",
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


class Transport(abc.ABC):
    """What the client sends through: one request in, the whole response out."""

    @abc.abstractmethod
    async def send(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None
    ) -> RawResponse:
        """Send a request whose URL is already fully quoted and read the whole body.

        Raises ``httpx.TransportError`` when no response came, and :class:`ResponseTooLarge`
        (without method and path; the client adds them) once the body passes the limit.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the pool."""


class DefaultTransport(Transport, httpx.AsyncBaseTransport):
    """One aiohttp connection pool; usable by the client or as an httpx transport."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        pool_size: int = 100,
        timeout: float = 60.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        server_name: str | None = None,
    ) -> None:
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._server_name = server_name  # TLS: the SNI and the name verified
        self._pool_size = pool_size
        self._max_bytes = max_response_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Built on first use, inside the running event loop, as aiohttp wants.
        connector = aiohttp.TCPConnector(
            limit=self._pool_size, ssl=self._ssl, keepalive_timeout=KEEPALIVE_EXPIRY
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=False, trust_env=False
        )
        return self._session

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None
    ) -> RawResponse:
        session = self._session if self._session is not None else self._open()
        try:
            async with session.request(
                method,
                URL(url, encoded=True),
                headers=headers,
                data=content,
                allow_redirects=False,
                server_hostname=self._server_name,
            ) as resp:
                length = resp.content_length
                if length is not None and length <= self._max_bytes:
                    body = await resp.read()  # the parser stops at Content-Length
                else:
                    body = await self._read_capped(resp, length)
                return RawResponse(resp.status, resp.headers, body, resp.reason or "")
        except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
            raise httpx_error(exc) from exc

    async def _read_capped(self, resp: aiohttp.ClientResponse, length: int | None) -> bytes:
        """Read an unsized (or oversized) body up to the limit; past it, drop the connection."""
        limit = self._max_bytes
        if length is None:
            chunks: list[bytes] = []
            total = 0
            async for chunk in resp.content.iter_any():
                total += len(chunk)
                if total > limit:
                    break
                chunks.append(chunk)
            else:
                return b"".join(chunks)
        resp.close()  # the rest is never read: this connection is not reused
        raise ResponseTooLarge(limit)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The httpx transport interface, for use under an ``httpx.AsyncClient``.

        A compressed answer is refused (``httpx.DecodingError``): httpx would inflate it
        past ``max_response_bytes``.
        """
        content = await request.aread()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "accept-encoding"}
        headers["Accept-Encoding"] = "identity"  # the body is handed over as it came
        raw = await self.send(request.method, str(request.url), headers, content or None)
        encoding = raw.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding != "identity":  # httpx would inflate it, past max_response_bytes
            raise httpx.DecodingError(
                f"refused a compressed response (Content-Encoding: {encoding[:20]}); "
                "only identity was asked for",
                request=request,
            )
        return httpx.Response(
            raw.status, headers=list(raw.headers.items()), content=raw.content, request=request
        )

    async def aclose(self) -> None:
        """Close the pool."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def httpx_error(exc: aiohttp.ClientError | OSError) -> httpx.TransportError:
    """The httpx error for an aiohttp (or socket) error; the message names the original class.

    Only a failed connect (refused, TLS, timed out, no free pooled connection in time) maps to
    httpx's connect errors, which say the request never left; a timeout or a broken
    connection after that may have reached Vault.
    """
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(message)
    return httpx.ReadError(message)


class HttpxTransport(Transport):
    """Any ``httpx.AsyncBaseTransport`` behind the client's interface."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        timeout: float,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        server_name: str | None = None,
    ) -> None:
        self.inner = inner
        self._extensions: dict[str, object] = {"timeout": httpx.Timeout(timeout).as_dict()}
        if server_name is not None:  # httpcore's name for the SNI and the name verified
            self._extensions["sni_hostname"] = server_name
        self._max_bytes = max_response_bytes

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None
    ) -> RawResponse:
        request = httpx.Request(
            method, url, headers=headers, content=content, extensions=self._extensions
        )
        response = await self.inner.handle_async_request(request)
        try:
            body = await self._read_capped(response)
        finally:
            await response.aclose()  # before the end of the body: closes the connection
        return RawResponse(response.status_code, response.headers, body, response.reason_phrase)

    async def _read_capped(self, response: httpx.Response) -> bytes:
        """The raw (never decompressed) body, read until it passes the limit."""
        limit = self._max_bytes
        if response.is_stream_consumed:  # built in memory (a mock): only the size is left
            body = response.content
            if len(body) > limit:
                raise ResponseTooLarge(limit)
            return body
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ResponseTooLarge(limit)
        chunks: list[bytes] = []
        total = 0
        async for chunk in response.aiter_raw():
            total += len(chunk)
            if total > limit:
                raise ResponseTooLarge(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self.inner.aclose()


def as_transport(
    transport: Transport | httpx.AsyncBaseTransport,
    timeout: float,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    server_name: str | None = None,
) -> Transport:
    """The client's interface to ``transport`` (an httpx transport gets the adapter)."""
    if isinstance(transport, Transport):
        return transport
    return HttpxTransport(transport, timeout, max_response_bytes, server_name)


def default_transport(
    config: ClientConfig, ssl_context: ssl.SSLContext | None = None
) -> DefaultTransport:
    """The default transport for a configuration (``ssl_context`` overrides its TLS)."""
    return DefaultTransport(
        ssl_context=ssl_context if ssl_context is not None else config.ssl_context(),
        pool_size=config.pool_size,
        timeout=config.timeout,
        max_response_bytes=config.max_response_bytes,
        server_name=config.tls_server_name,
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
