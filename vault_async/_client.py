"""AsyncVaultClient: one transport (one keep-alive pool) shared by every call.

Usage::

    async with AsyncVaultClient("https://vault:8200") as client:
        await client.login(AppRoleAuth(role_id, secret_id_file="/run/secret-id"))
        creds = await client.secrets.database.generate_credentials("app")
        config = await client.secrets.kv_v2.read_secret("app/config")

One job: the send path every call takes (token, node, retries, error translation, the
logs of each attempt). It runs past 300 lines because that path reads best whole; what
stands alone lives beside it (`_request`, `_nodes`, `_transport`, `_translate`, `_retry`,
`_redact`, `_tls`; `_observe`, the seam a tracer plugs into).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Required, TypedDict, Unpack
from urllib.parse import urlencode

import httpx

from ._config import ClientConfig, check_header_value
from ._exceptions import InvalidPath, MalformedResponse, ResponseTooLarge, VaultConnectionError
from ._json import JSONObject, drop_none
from ._models import AuthResult
from ._nodes import Nodes, NodeStatus
from ._observe import RequestObserver, RequestRecord
from ._parse import Body, data_section, decode_body, string_list
from ._redact import display_path
from ._request import CLIENT_NAMESPACE, Namespace, in_namespace, request_headers
from ._retry import parse_retry_after, retry_delay, retryable_status
from ._translate import status_error, transport_failure
from ._transport import RawResponse, Transport, as_transport, default_transport
from .auth import AuthApi
from .secrets import SecretsApi
from .sys import SysApi

if TYPE_CHECKING:
    from .auth import AuthMethod

__all__ = ["AsyncVaultClient", "RequestOptions", "TokenSource"]

logger = logging.getLogger("vault_async.client")


class RequestOptions(TypedDict, total=False):
    """The keywords of ``request`` and ``request_response``."""

    idempotent: Required[bool]
    """The retry rule: idempotent requests are retried on connection errors, 412, 429 and
    5xx (not 501); others only when the request certainly never left this process."""
    json: JSONObject | None
    """The request body, sent as JSON."""
    params: Mapping[str, str] | None
    """The query string."""
    token: str | None
    """The token to send instead of the client's; None sends none (logins, unwrapping)."""
    wrap_ttl: str | None
    """Ask Vault to response-wrap the answer for this long."""
    content_type: str
    """The body's media type (default ``application/json``)."""
    namespace: str | None
    """This request's namespace instead of the client's; None sends none (the root namespace,
    where root-only endpoints such as ``sys/health`` live)."""


class TokenSource(Protocol):
    """Something that may hand the client a newer token (e.g. a Vault Agent sink file)."""

    def poll_token(self) -> str | None:
        """A new token if it changed since the last call, else None."""


class AsyncVaultClient:
    """An asyncio client for Vault / OpenBao over one shared connection pool.

    ``transport`` is any ``httpx.AsyncBaseTransport`` (respx in tests) or a
    ``_transport.Transport``; by default one aiohttp pool. Every request takes the same
    path through :meth:`_send` whichever it is. An httpx transport is given the config's
    timeout, ``max_response_bytes`` and ``tls_server_name``; a ``Transport`` instance is
    used as it is and must enforce its own limits (response size, timeout, TLS name).
    """

    def __init__(
        self,
        addr: str | None = None,
        token: str | None = None,
        *,
        failover_addrs: Sequence[str] | None = None,
        namespace: str | None = None,
        transport: Transport | httpx.AsyncBaseTransport | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        verify: bool | str | ssl.SSLContext | None = None,
        config: ClientConfig | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        base = config if config is not None else ClientConfig.from_env()
        changes: dict[str, object] = drop_none(
            addr=addr, token=token, namespace=namespace, timeout=timeout
        )
        if failover_addrs is not None:
            changes["failover_addrs"] = tuple(failover_addrs)
        if max_retries is not None:
            changes["retry"] = dataclasses.replace(base.retry, max_retries=max_retries)
        self._ssl_override = verify if isinstance(verify, ssl.SSLContext) else None
        if isinstance(verify, bool):
            changes["skip_verify"] = not verify
        elif isinstance(verify, str):
            changes["ca_path" if Path(verify).is_dir() else "ca_cert"] = verify
        self.config: ClientConfig = base.replace(**changes) if changes else base
        self._token: str | None = self.config.token
        self._token_source: TokenSource | None = None
        self._observer: RequestObserver | None = None
        self._token_polled_at = 0.0
        self._given_transport = transport
        self._transport: Transport | None = None
        self._closing = False
        self._clock = clock if clock is not None else time.monotonic
        self._nodes = Nodes(self.config.addrs, self._clock)
        # identity: a compressed body could inflate far past max_response_bytes.
        self._base_headers: dict[str, str] = {
            "X-Vault-Request": "true",
            "Accept-Encoding": "identity",
        }
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep if sleep is not None else asyncio.sleep
        self.auth = AuthApi(self)
        self.secrets = SecretsApi(self)
        self.sys = SysApi(self)

    def __repr__(self) -> str:
        state = "open" if self._transport is not None else "closed"
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

    def _open(self) -> Transport:
        if self._transport is None:
            given = self._given_transport
            if given is None:
                given = default_transport(self.config, self._ssl_override)
            config = self.config
            self._transport = as_transport(
                given, config.timeout, config.max_response_bytes, config.tls_server_name
            )
        return self._transport

    async def aclose(self) -> None:
        """Stop watching the nodes; close the pool (a transport passed in is closed too).

        A request that starts while this runs, or one that would send again (a retry, the
        next node) once it began, fails with :class:`VaultConnectionError` instead of
        reopening what is being closed. Used again after this returned, the client opens a
        new pool, which the next ``aclose`` closes.
        """
        self._closing = True
        transport, self._transport = self._transport, None
        try:
            await self._nodes.stop()
        finally:
            try:
                if transport is not None:
                    await transport.aclose()
            finally:
                self._closing = False

    # -- nodes -----------------------------------------------------------------------------

    @property
    def nodes(self) -> tuple[NodeStatus, ...]:
        """Each configured node's address, last-known state and when it was last checked."""
        return self._nodes.statuses()

    @property
    def last_node(self) -> str | None:
        """The address of the node that answered last (None before any answer)."""
        return self._nodes.last_node

    # -- observer --------------------------------------------------------------------

    @property
    def request_observer(self) -> RequestObserver | None:
        """What is told about each request (a tracer, see ``vault_async.otel``), or None."""
        return self._observer

    def set_request_observer(self, observer: RequestObserver | None) -> None:
        """Tell ``observer`` about each logical request from now on (None: nobody)."""
        self._observer = observer

    # -- token -----------------------------------------------------------------------

    @property
    def token(self) -> str | None:
        """The token sent with each request (None when logged out)."""
        return self._token

    def set_token(self, token: str | None) -> None:
        """Use another token from the next request on."""
        if token is not None:
            check_header_value(token, "token")
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
        self.set_token(result.client_token)
        return result

    # -- requests --------------------------------------------------------------------

    async def request(self, method: str, path: str, **options: Unpack[RequestOptions]) -> Body:
        """Send one request to ``/v1/<path>`` and decode Vault's JSON answer.

        ``path`` must already be quoted; the options are :class:`RequestOptions`
        (``idempotent`` is required: it decides the retry rule).
        """
        body, _ = await self.request_response(method, path, **options)
        return body

    async def request_response(
        self,
        method: str,
        path: str,
        *,
        ok_statuses: Collection[int] = (),
        **options: Unpack[RequestOptions],
    ) -> tuple[Body, int]:
        """Like :meth:`request`, also returning the status (``ok_statuses`` are not errors)."""
        observer = self._observer
        if observer is None:
            return _decoded(await self._send(method, path, options, ok_statuses), method, path)
        with observer.request(method, path) as record:
            response = await self._send(method, path, options, ok_statuses, record)
            return _decoded(response, method, path)

    async def list_keys(
        self, path: str, *, namespace: Namespace = CLIENT_NAMESPACE
    ) -> tuple[str, ...]:
        """LIST ``/v1/<path>``: the keys under it, empty when nothing is there (404)."""
        try:
            body = await self.request(
                "GET", path, params={"list": "true"}, idempotent=True, **in_namespace(namespace)
            )
        except InvalidPath:
            return ()
        return string_list(data_section(body), "keys")

    async def _send(
        self,
        method: str,
        path: str,
        options: RequestOptions,
        ok_statuses: Collection[int],
        record: RequestRecord | None = None,
    ) -> RawResponse:
        """The one send path: build the request, send it, retry by the rules, translate errors.

        Errors and logs name ``shown``, the path with any lease id in it cut to a suffix;
        ``record`` (an observer's) is told the retries, the last status and its node.
        """
        transport = self._transport
        if transport is None:
            if self._closing:
                raise _closed(method, display_path(path))
            transport = self._open()
        if self._token_source is not None:
            self._poll_token_source()
        if "token" in options:
            token = options["token"]
            if token:
                check_header_value(token, "token")
        else:
            token = self._token
        body = options.get("json")
        headers, content = request_headers(
            self._base_headers,
            options.get("namespace", self.config.namespace),
            token,
            options.get("wrap_ttl"),
            body,
            options.get("content_type", "application/json"),
        )
        shown = display_path(path)
        params = options.get("params")
        if params:
            path += "?" + urlencode(params)
        idempotent = options["idempotent"]
        nodes = self._nodes
        if nodes.many:
            nodes.watch(transport)
        node = nodes.current
        redirected_from: int | None = None  # a 307 is followed once per attempt
        deadline = self._clock() + self.config.retry.deadline
        attempt = 0
        tried: set[int] | None = None  # the nodes that refused a connection this attempt
        silent: list[int] | None = None  # the nodes that gave no response (several nodes)
        while True:
            if transport is not self._transport:  # aclose began: nothing more is sent
                raise _closed(method, shown)
            try:
                response = await transport.send(method, nodes.bases[node] + path, headers, content)
            except ResponseTooLarge as exc:
                raise ResponseTooLarge(exc.limit, method=method, path=shown) from None
            except httpx.TransportError as exc:
                failure = transport_failure(exc, method=method, path=shown)
                reason = type(failure.error).__name__
                if nodes.many:
                    silent = [node] if silent is None else [*silent, node]
                    failed, node = node, nodes.failed(node, type(exc).__name__, "down")
                    if failure.unsent:  # never left: the next untried node, retry unspent
                        tried = {failed} if tried is None else tried | {failed}
                        untried = node if node not in tried else nodes.untried(failed, tried)
                        if untried is not None and self._clock() < deadline:
                            node = untried
                            continue
                if (idempotent or failure.unsent) and await self._wait_to_retry(
                    attempt, deadline, method, shown, reason
                ):
                    attempt, redirected_from, tried = attempt + 1, None, None
                    if record is not None:
                        record.retries = attempt
                    continue
                if silent is not None:  # several nodes: name those that gave no response
                    named = [nodes.addrs[i] for i in dict.fromkeys(silent)]
                    failure = transport_failure(exc, method=method, path=shown, nodes=named)
                raise failure.error from exc
            status = response.status
            if record is not None:
                record.status, record.node = status, nodes.addrs[node]
            if status < 300 or status in ok_statuses:
                nodes.answered(node)
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "client.request",
                        extra={"vault_method": method, "vault_path": shown, "vault_status": status},
                    )
                return response
            if status == 307 and nodes.many and redirected_from is None:
                target = nodes.redirect(node, response.headers.get("Location"))
                if target is not None:
                    node, redirected_from = target, node
                    continue
            unfit = nodes.unfit_reason(response) if nodes.many else None
            if unfit is not None:
                node = nodes.failed(node, *unfit)
                if redirected_from is not None:  # a standby pointing at a former leader
                    node = nodes.failed(redirected_from, "status 307 to " + unfit[0], None)
            else:
                nodes.answered(node)
            if idempotent and retryable_status(status):
                retry_after = (
                    parse_retry_after(response.headers.get("Retry-After"))
                    if status == 429
                    else None
                )
                if await self._wait_to_retry(
                    attempt, deadline, method, shown, f"status {status}", retry_after
                ):
                    attempt, redirected_from, tried = attempt + 1, None, None
                    if record is not None:
                        record.retries = attempt
                    continue
            raise status_error(response, method=method, path=shown, sent=body, token=token)

    async def _wait_to_retry(
        self,
        attempt: int,
        deadline: float,
        method: str,
        path: str,
        reason: str,
        retry_after: float | None = None,
    ) -> bool:
        """Sleep before retry ``attempt + 1`` and return True, or False when none is left."""
        delay = retry_delay(
            attempt,
            self.config.retry,
            self._rng,
            now=self._clock(),
            deadline=deadline,
            retry_after=retry_after,
        )
        if delay is None:
            return False
        logger.debug(
            "client.retry",
            extra={
                "vault_method": method,
                "vault_path": path,
                "vault_attempt": attempt + 1,
                "delay": round(delay, 3),
                "reason": reason,
            },
        )
        await self._sleep(delay)
        return True

    def _poll_token_source(self) -> None:
        now = self._clock()
        if now - self._token_polled_at < 1.0 or self._token_source is None:
            return
        self._token_polled_at = now
        new = self._token_source.poll_token()
        if new is not None:
            check_header_value(new, "token (from the token source)")
            self._token = new


def _decoded(response: RawResponse, method: str, path: str) -> tuple[Body, int]:
    """The JSON body and the status; a body that is not JSON names the (displayed) path."""
    try:
        return decode_body(response.content), response.status
    except MalformedResponse as exc:
        status = response.status
        shown = display_path(path)
        raise MalformedResponse(exc.message, status=status, method=method, path=shown) from None


def _closed(method: str, path: str) -> VaultConnectionError:
    return VaultConnectionError(
        "the client was closed (aclose): request not sent", method=method, path=path
    )
