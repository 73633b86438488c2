"""The default HTTP transport, and the one place transport errors become VaultErrors.

The default is httpx's API over aiohttp's connection pool (``httpx-aiohttp``): measured
with ``benchmarks/client_throughput.py`` it is several times faster than httpx's own
pool at concurrency 32. Any ``httpx.AsyncBaseTransport`` can be passed instead.
"""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from ._config import ClientConfig
from ._exceptions import VaultConnectionError, VaultError, VaultTimeout

__all__ = ["TransportFailure", "default_transport", "httpx_transport", "map_transport_error"]

KEEPALIVE_EXPIRY = 30.0


def default_transport(config: ClientConfig) -> httpx.AsyncBaseTransport:
    """httpx over aiohttp's pool, sized by ``config.pool_size``."""
    ctx = config.ssl_context()
    return AiohttpTransport(
        verify=ctx if ctx is not None else True,
        trust_env=False,
        limits=httpx.Limits(
            max_connections=config.pool_size,
            max_keepalive_connections=config.pool_size,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        ),
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


def _never_sent(exc: BaseException) -> bool:
    """True when the failure happened before any byte of the request left this process."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError | asyncio.TimeoutError):
        # httpx-aiohttp maps every aiohttp connection error to ConnectTimeout, so look at
        # the original: only a failed connect (or a connect timeout) is certainly unsent.
        return isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def map_transport_error(exc: Exception, *, method: str, path: str) -> TransportFailure:
    """Translate an httpx/aiohttp/OS error; the message keeps the error type, no payload."""
    unsent = _never_sent(exc)
    kind = type(exc.__cause__ or exc).__name__
    error: VaultError
    if isinstance(exc, httpx.TimeoutException | asyncio.TimeoutError) and not (
        isinstance(exc.__cause__, aiohttp.ClientError)
        and not isinstance(exc.__cause__, aiohttp.ServerTimeoutError)
    ):
        error = VaultTimeout(f"request timed out ({kind})", method=method, path=path)
    else:
        error = VaultConnectionError(f"no response from Vault ({kind})", method=method, path=path)
    return TransportFailure(error, unsent)
