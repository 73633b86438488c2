"""AsyncVaultClient: one transport (one keep-alive pool) shared by every call.

Usage::

    async with AsyncVaultClient("https://vault:8200") as client:
        await client.login(AppRoleAuth(role_id, secret_id_file="/run/secret-id"))
        creds = await client.secrets.database.generate_credentials("app")
        config = await client.secrets.kv_v2.read_secret("app/config")
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

import aiohttp
import httpx

from ._config import ClientConfig, RetryPolicy
from ._exceptions import (
    InvalidPath,
    MalformedResponse,
    RateLimited,
    VaultError,
    error_for_status,
)
from ._models import AuthResult
from ._parse import Body, data_section, decode_body, error_messages, string_list
from ._retry import backoff_delay, parse_retry_after, retryable_status
from ._transport import (
    DefaultTransport,
    RawResponse,
    default_transport,
    map_transport_error,
    send_via_httpx,
)
from .auth import AuthApi
from .secrets import SecretsApi
from .sys import SysApi

if TYPE_CHECKING:
    from .auth import AuthMethod

__all__ = ["AsyncVaultClient"]

logger = logging.getLogger("vault_async.client")

_UNSET: Any = object()
_TRANSPORT_ERRORS = (httpx.TransportError, aiohttp.ClientError, OSError, asyncio.TimeoutError)
_MIN_SCRUB_LEN = 4


_SendFn = Callable[[str, str, Mapping[str, str], bytes | None], Awaitable[RawResponse]]


class TokenSource(Protocol):
    """Something that may hand the client a newer token (e.g. a Vault Agent sink file)."""

    def poll_token(self) -> str | None:
        """A new token if it changed since the last call, else None."""


class AsyncVaultClient:
    """An asyncio client for Vault / OpenBao over one shared connection pool."""

    def __init__(
        self,
        addr: str | None = None,
        token: str | None = None,
        *,
        namespace: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        verify: bool | str | ssl.SSLContext = _UNSET,
        config: ClientConfig | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        base = config if config is not None else ClientConfig.from_env()
        changes: dict[str, Any] = {}
        if addr is not None:
            changes["addr"] = addr
        if token is not None:
            changes["token"] = token
        if namespace is not None:
            changes["namespace"] = namespace
        if timeout is not None:
            changes["timeout"] = timeout
        if max_retries is not None:
            changes["retry"] = RetryPolicy(
                max_retries=max_retries,
                backoff_initial=base.retry.backoff_initial,
                backoff_max=base.retry.backoff_max,
                deadline=base.retry.deadline,
            )
        self._ssl_override: ssl.SSLContext | None = None
        if verify is not _UNSET:
            if isinstance(verify, ssl.SSLContext):
                self._ssl_override = verify
            elif verify is False:
                changes["skip_verify"] = True
            elif verify is True:
                changes["skip_verify"] = False
            elif isinstance(verify, str):
                changes["ca_path" if Path(verify).is_dir() else "ca_cert"] = verify
        self.config: ClientConfig = base.replace(**changes) if changes else base
        self._token: str | None = self.config.token
        self._token_source: TokenSource | None = None
        self._token_polled_at = 0.0
        self._transport = transport
        self._active_transport: httpx.AsyncBaseTransport | None = None
        self._send_fn: _SendFn | None = None
        self._base_url = self.config.addr + "/v1/"
        self._base_headers: dict[str, str] = {"X-Vault-Request": "true"}
        if self.config.namespace:
            self._base_headers["X-Vault-Namespace"] = self.config.namespace
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep if sleep is not None else asyncio.sleep
        self._clock = clock if clock is not None else time.monotonic
        self._timeout = httpx.Timeout(self.config.timeout)
        self.auth = AuthApi(self)
        self.secrets = SecretsApi(self)
        self.sys = SysApi(self)

    def __repr__(self) -> str:
        state = "open" if self._send_fn is not None else "closed"
        return f"<AsyncVaultClient addr={self.config.addr!r} {state}>"

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> AsyncVaultClient:
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _open(self) -> _SendFn:
        if self._send_fn is None:
            transport = self._transport
            if transport is None:
                transport = default_transport(self.config, self._ssl_override)
            if isinstance(transport, DefaultTransport):
                self._send_fn = transport.request
            else:
                self._send_fn = functools.partial(send_via_httpx, transport, self._timeout)
            self._active_transport = transport
        return self._send_fn

    async def aclose(self) -> None:
        """Close the connection pool (a transport passed in is closed too)."""
        transport, self._active_transport = self._active_transport, None
        self._send_fn = None
        if transport is not None:
            await transport.aclose()

    # -- token -----------------------------------------------------------------------

    @property
    def token(self) -> str | None:
        """The token sent with each request (None when logged out)."""
        return self._token

    def set_token(self, token: str | None) -> None:
        """Use another token from the next request on."""
        self._token = token

    def set_token_source(self, source: TokenSource | None) -> None:
        """Re-read the token from ``source`` (at most once a second) before requests."""
        self._token_source = source

    async def login(self, auth_method: AuthMethod) -> AuthResult:
        """Log in with an auth method object and use the token it returns."""
        previous, self._token_source = self._token_source, None  # a token file sets it again
        try:
            result = await auth_method.login(self)
        except BaseException:
            if self._token_source is None:
                self._token_source = previous
            raise
        self._token = result.client_token
        return result

    # -- requests --------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
        token: str | Any | None = _UNSET,
        wrap_ttl: str | None = None,
        content_type: str = "application/json",
    ) -> Body:
        """Send one request to ``/v1/<path>`` and decode Vault's JSON answer.

        ``idempotent`` decides the retry rule: idempotent requests are retried on
        connection errors, 412, 429 and 5xx (not 501); others only when the request
        certainly never left this process. ``path`` must already be quoted.
        """
        body, _ = await self.request_response(
            method,
            path,
            json=json,
            params=params,
            idempotent=idempotent,
            token=token,
            wrap_ttl=wrap_ttl,
            content_type=content_type,
        )
        return body

    async def list_keys(self, path: str) -> tuple[str, ...]:
        """LIST ``/v1/<path>``: the keys under it, empty when nothing is there (404)."""
        try:
            body = await self.request("GET", path, params={"list": "true"}, idempotent=True)
        except InvalidPath:
            return ()
        return string_list(data_section(body), "keys")

    async def request_response(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
        token: str | Any | None = _UNSET,
        wrap_ttl: str | None = None,
        content_type: str = "application/json",
        ok_statuses: Iterable[int] = (),
    ) -> tuple[Body, int]:
        """Like :meth:`request`, also returning the status (``ok_statuses`` are not errors)."""
        response = await self._send(
            method,
            path,
            json,
            params,
            idempotent,
            token,
            wrap_ttl,
            content_type,
            frozenset(ok_statuses),
        )
        try:
            return decode_body(response.content), response.status
        except MalformedResponse as exc:
            status = response.status
            raise MalformedResponse(exc.message, status=status, method=method, path=path) from None

    async def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
        idempotent: bool,
        token: Any,
        wrap_ttl: str | None,
        content_type: str,
        ok_statuses: frozenset[int],
    ) -> RawResponse:
        send = self._send_fn if self._send_fn is not None else self._open()
        if self._token_source is not None:
            self._poll_token_source()
        headers = self._base_headers.copy()
        use_token = self._token if token is _UNSET else token
        if use_token:
            headers["X-Vault-Token"] = use_token
        if wrap_ttl is not None:
            headers["X-Vault-Wrap-TTL"] = wrap_ttl
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = content_type
        url = self._base_url + path
        if params:
            url += "?" + urlencode(params)
        deadline = self._clock() + self.config.retry.deadline
        attempt = 0
        while True:
            try:
                response = await send(method, url, headers, content)
            except _TRANSPORT_ERRORS as exc:
                failure = map_transport_error(exc, method=method, path=path)
                reason = type(failure.error).__name__
                if (idempotent or failure.unsent) and await self._wait_to_retry(
                    attempt, deadline, method, path, reason
                ):
                    attempt += 1
                    continue
                raise failure.error from exc
            status = response.status
            if status < 300 or status in ok_statuses:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "vault request %s %s -> %d",
                        method,
                        path,
                        status,
                        extra={"vault_method": method, "vault_path": path, "vault_status": status},
                    )
                return response
            if idempotent and retryable_status(status):
                retry_after = (
                    parse_retry_after(response.headers.get("Retry-After"))
                    if status == 429
                    else None
                )
                if await self._wait_to_retry(
                    attempt, deadline, method, path, f"status {status}", retry_after
                ):
                    attempt += 1
                    continue
            raise self._status_error(response, method, path, body, use_token)

    async def _wait_to_retry(
        self,
        attempt: int,
        deadline: float,
        method: str,
        path: str,
        reason: str,
        retry_after: float | None = None,
    ) -> bool:
        """Sleep before retry ``attempt + 1`` and return True, or False when none is left.

        The delay is full-jitter backoff, or Vault's ``Retry-After`` when it sent one; a
        retry that would start past ``deadline`` is not made.
        """
        policy = self.config.retry
        if attempt >= policy.max_retries:
            return False
        delay = backoff_delay(attempt, policy, self._rng)
        if retry_after is not None:
            delay = retry_after
        if self._clock() + delay >= deadline:
            return False
        self._log_retry(method, path, attempt, delay, reason)
        await self._sleep(delay)
        return True

    def _status_error(
        self,
        response: RawResponse,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        token: str | None,
    ) -> VaultError:
        status = response.status
        try:
            errors = error_messages(decode_body(response.content))
        except VaultError:
            errors = ("<non-JSON error body>",)
        errors = _scrub(errors, _secret_strings(body, token))
        cls = error_for_status(status)
        if cls is RateLimited:
            return RateLimited(
                "rate limited",
                status=status,
                method=method,
                path=path,
                errors=errors,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return cls(
            response.reason or "error",
            status=status,
            method=method,
            path=path,
            errors=errors,
        )

    def _poll_token_source(self) -> None:
        now = self._clock()
        if now - self._token_polled_at < 1.0 or self._token_source is None:
            return
        self._token_polled_at = now
        new = self._token_source.poll_token()
        if new is not None:
            self._token = new

    @staticmethod
    def _log_retry(method: str, path: str, attempt: int, delay: float, reason: str) -> None:
        logger.debug(
            "vault request %s %s retry %d in %.3fs (%s)",
            method,
            path,
            attempt + 1,
            delay,
            reason,
            extra={"vault_method": method, "vault_path": path, "vault_attempt": attempt + 1},
        )


def _secret_strings(body: Mapping[str, Any] | None, token: str | None) -> list[str]:
    """Every string we sent (token and body values): none may show up in an error."""
    found: list[str] = [token] if token else []

    def walk(value: object) -> None:
        if isinstance(value, str):
            if len(value) >= _MIN_SCRUB_LEN:
                found.append(value)
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk(body)
    return found


def _scrub(errors: tuple[str, ...], secrets: list[str]) -> tuple[str, ...]:
    if not secrets:
        return errors
    out = []
    for message in errors:
        for secret in secrets:
            if secret in message:
                message = message.replace(secret, "<redacted>")
        out.append(message)
    return tuple(out)
