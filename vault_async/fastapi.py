"""FastAPI glue: a lifespan that runs client, lease engine and engine binding; sessions; health.

Usage::

    def open_db() -> AbstractAsyncContextManager[VaultRuntime]:
        return open_runtime(
            "postgresql+asyncpg://db:5432/app",
            client=AsyncVaultClient("https://vault:8200"),
            auth=AppRoleAuth(role_id, secret_id_file="/run/secrets/secret_id"),
            db_role="app",
        )

    app = FastAPI(lifespan=vault_lifespan(open_db))
    app.include_router(health_router())

    @app.get("/things")
    async def things(session: Annotated[AsyncSession, Depends(get_session)]) -> list[str]: ...

Shutdown order: stop the Vault probe, detach the engine from the credential, close the
pool, then leave the lease engine (which revokes the leases and the token it obtained),
then close the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ._prometheus import LatencyRecorder, MetricFamily, render
from .sqlalchemy import CredentialSource, EngineBinding, StaticCredentials, bind_credentials

__all__ = [
    "HealthStatus",
    "StartupError",
    "VaultRuntime",
    "database_error_handler",
    "get_runtime",
    "get_session",
    "health_payload",
    "health_router",
    "health_status",
    "metrics_router",
    "open_runtime",
    "vault_lifespan",
]

logger = logging.getLogger("vault_async.fastapi")

HealthStatus = Literal["ok", "degraded", "failing"]

DEFAULT_READY_TIMEOUT = 30.0
DEFAULT_PROBE_INTERVAL = 10.0
DEFAULT_PROBE_TIMEOUT = 2.0
VAULT_RECENT_WINDOW = 30.0
"""Vault counts as answering when it answered within this many seconds."""

_STATE_FIELDS = (
    "kind",
    "ttl_remaining",
    "expires_at",
    "renewable",
    "last_renewal",
    "generation",
    "renewals",
    "rotations",
    "consecutive_failures",
    "last_error_class",
    "degraded",
)


@dataclass
class VaultRuntime:
    """Everything the lifespan started; stored on ``app.state.vault_runtime``."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    binding: EngineBinding
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    client: Any = None
    manager: Any = None
    db_secret: str | None = None
    token_secret: str | None = None

    @property
    def mode(self) -> Literal["vault", "plain"]:
        return "plain" if self.manager is None else "vault"

    def snapshot(self) -> Mapping[str, Any]:
        """The lease engine's state per managed secret (empty in plain mode)."""
        return {} if self.manager is None else dict(self.manager.snapshot())

    def vault_answered_recently(self, now: float | None = None) -> bool:
        last = self.latency.last_success
        if last is None:
            return False
        return (time.monotonic() if now is None else now) - last <= VAULT_RECENT_WINDOW


# -- health ---------------------------------------------------------------------------------------


def health_status(db: Any, token: Any, *, vault_recent: bool, plain: bool = False) -> HealthStatus:
    """ok, degraded (credential still valid but Vault or renewals fail) or failing (none valid).

    ``db`` and ``token`` are the lease engine's ``SecretState`` objects (or None).
    """
    if plain:
        return "ok"
    if db is None or not getattr(db, "ready", True):
        return "failing"
    ttl = getattr(db, "ttl_remaining", None)
    if ttl is not None and ttl <= 0:
        return "failing"
    troubled = [db] if token is None else [db, token]
    if not vault_recent or any(s.degraded or s.consecutive_failures > 0 for s in troubled):
        return "degraded"
    return "ok"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 3)
    return value


def _state_view(state: Any) -> dict[str, Any] | None:
    if state is None:
        return None
    return {name: _jsonable(getattr(state, name, None)) for name in _STATE_FIELDS}


def health_payload(runtime: VaultRuntime) -> tuple[HealthStatus, dict[str, Any]]:
    """The /healthz body: no password, no token, no lease id."""
    snapshot = runtime.snapshot()
    db = snapshot.get(runtime.db_secret) if runtime.db_secret else None
    token = snapshot.get(runtime.token_secret) if runtime.token_secret else None
    recent = runtime.vault_answered_recently()
    status = health_status(db, token, vault_recent=recent, plain=runtime.mode == "plain")
    last = runtime.latency.last_success
    stats = runtime.binding.stats
    body: dict[str, Any] = {
        "status": status,
        "mode": runtime.mode,
        "database": _state_view(db),
        "token": None if token is None else {
            "ttl_remaining": _jsonable(token.ttl_remaining),
            "renewable": token.renewable,
            "consecutive_failures": token.consecutive_failures,
            "degraded": token.degraded,
        },
        "vault": {
            "answered_recently": recent,
            "seconds_since_answer": None if last is None else round(time.monotonic() - last, 3),
        },
        "pool": {
            "swaps": stats.pool_swaps,
            "login_retries": stats.login_retries,
            "stale_connections_closed": stats.stale_closed,
            "connects": stats.connects,
        },
    }
    return status, body


def health_router(path: str = "/healthz") -> APIRouter:
    """``GET /healthz``: 200 for ok and degraded, 503 for failing."""
    router = APIRouter()

    @router.get(path, include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        status, body = health_payload(get_runtime(request))
        return JSONResponse(body, status_code=503 if status == "failing" else 200)

    return router


# -- metrics --------------------------------------------------------------------------------------


def metric_families(runtime: VaultRuntime) -> list[MetricFamily]:
    """Renewals, rotations, failures, ttl remaining per secret, and Vault latency."""
    renewals = MetricFamily("vault_async_renewals_total", "counter", "Successful renewals.")
    rotations = MetricFamily("vault_async_rotations_total", "counter", "Credential rotations.")
    failures = MetricFamily(
        "vault_async_failures_total", "counter", "Failed renewals or acquisitions."
    )
    consecutive = MetricFamily(
        "vault_async_consecutive_failures", "gauge", "Failures since the last success."
    )
    ttl = MetricFamily("vault_async_ttl_remaining_seconds", "gauge", "Seconds of validity left.")
    for name, state in sorted(runtime.snapshot().items()):
        labels = {"secret": str(name), "kind": str(state.kind)}
        renewals.add(state.renewals, **labels)
        rotations.add(state.rotations, **labels)
        failures.add(getattr(state, "total_failures", state.consecutive_failures), **labels)
        consecutive.add(state.consecutive_failures, **labels)
        if state.ttl_remaining is not None:
            ttl.add(state.ttl_remaining, **labels)
    stats = runtime.binding.stats
    swaps = MetricFamily("vault_async_pool_swaps_total", "counter", "Pool swaps on rotation.")
    retries = MetricFamily(
        "vault_async_login_retries_total", "counter", "Connects retried after a rejected login."
    )
    return [
        renewals,
        rotations,
        failures,
        consecutive,
        ttl,
        swaps.add(stats.pool_swaps),
        retries.add(stats.login_retries),
        runtime.latency.family("vault_async_vault_request_duration_seconds"),
    ]


def metrics_router(path: str = "/metrics") -> APIRouter:
    """``GET /metrics`` in the Prometheus text format."""
    router = APIRouter()

    @router.get(path, include_in_schema=False)
    async def metrics(request: Request) -> PlainTextResponse:
        text = render(metric_families(get_runtime(request)))
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    return router


# -- errors ---------------------------------------------------------------------------------------


async def database_error_handler(request: Request, error: Exception) -> JSONResponse:
    """Answer database errors without dropping the client's keep-alive connection.

    A connection the pool just invalidated (e.g. its login was dropped from outside) gives
    503 with ``Retry-After: 1``: the next attempt runs on a fresh login. Anything else is
    logged (class only) and answered 500. Register with
    ``app.add_exception_handler(DBAPIError, database_error_handler)``.
    """
    if getattr(error, "connection_invalidated", False):
        return JSONResponse(
            {"detail": "database connection was reset; retry"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    logger.error(
        "vault_async.fastapi.database_error",
        extra={"error_class": type(error).__name__, "path": request.url.path},
    )
    return JSONResponse({"detail": "internal database error"}, status_code=500)


# -- dependencies ---------------------------------------------------------------------------------


def get_runtime(request: Request) -> VaultRuntime:
    """The runtime the lifespan stored on the application."""
    runtime: VaultRuntime = request.app.state.vault_runtime
    return runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """``Depends(get_session)``: one ``AsyncSession``; commit on success, rollback on error."""
    async with get_runtime(request).sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# -- lifespan -------------------------------------------------------------------------------------


class StartupError(RuntimeError):
    """The runtime could not get its first token or credential; the message names why."""


FATAL_AT_STARTUP = frozenset({"Forbidden", "InvalidRequest", "InvalidPath", "InvalidConfig"})
"""Error classes that retrying will not fix: wrong credentials, unknown role or path."""


async def wait_first(handle: Any, timeout: float) -> Any:  # noqa: ASYNC109
    """Wait for a handle's first credential; give up at once on an error retrying won't fix."""
    deadline = anyio.current_time() + timeout
    while True:
        remaining = deadline - anyio.current_time()
        try:
            return await handle.wait_ready(timeout=max(0.0, min(0.2, remaining)))
        except TimeoutError:
            error_class = handle.last_error_class
            if error_class in FATAL_AT_STARTUP:
                raise StartupError(
                    f"{handle.name}: Vault refused the request ({error_class})"
                ) from None
            if remaining <= 0:
                raise StartupError(
                    f"{handle.name}: nothing from Vault after {timeout:g} s "
                    f"(last error: {error_class or 'none'})"
                ) from None




async def _probe_vault(runtime: VaultRuntime, interval: float, probe_timeout: float) -> None:
    """Ask Vault's health endpoint when nothing else talked to Vault for ``interval`` seconds."""
    while True:
        last = runtime.latency.last_success
        if last is None or time.monotonic() - last >= interval:
            with anyio.move_on_after(probe_timeout):
                try:
                    await runtime.client.sys.health()
                except Exception as error:  # counted by the latency recorder, logged here
                    logger.info(
                        "vault_async.fastapi.vault_probe_failed",
                        extra={"error_class": type(error).__name__},
                    )
        await anyio.sleep(interval / 2)


def _manage_token(manager: Any, client: Any, auth: Any) -> Any:
    """Keep the client's token renewed; revoke it at the end only if we logged in for it."""
    from .auth import TokenAuth
    from .lifecycle import token_login

    if auth is None:
        if not client.token:
            raise ValueError("give an auth method, or a client that already has a token")
        auth = TokenAuth(token=client.token)
    if not isinstance(auth, TokenAuth):
        return manager.manage_token(client, auth)
    # A token handed to the service is the operator's: renew it, never revoke it.
    source = dataclasses.replace(token_login(client, auth), revoke=None)
    return manager.manage(source, name="auth/token")


@asynccontextmanager
async def open_runtime(
    database_url: str,
    *,
    client: Any = None,
    auth: Any = None,
    db_role: str | None = None,
    db_static_role: str | None = None,
    db_mount: str = "database",
    assume_role: str | None = None,
    manager: Any = None,
    latency: LatencyRecorder | None = None,
    engine_options: Mapping[str, Any] | None = None,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
    probe_interval: float = DEFAULT_PROBE_INTERVAL,
) -> AsyncIterator[VaultRuntime]:
    """Start everything a service needs; plain mode when neither role is given.

    In Vault mode ``client`` is an (unopened) ``AsyncVaultClient``; ``auth`` an auth method
    object. A token obtained by login is revoked at the end; a given token (``TokenAuth``,
    or ``auth=None`` with a client that has a token) is renewed but never revoked.
    """
    if db_role and db_static_role:
        raise ValueError("give db_role or db_static_role, not both")
    url = make_url(database_url)
    plain = not (db_role or db_static_role)
    options = {"pool_pre_ping": False, **(engine_options or {})}
    recorder = latency or LatencyRecorder()
    async with AsyncExitStack() as stack:
        source: CredentialSource
        db_secret = token_secret = None
        if plain:
            source = StaticCredentials(url.username, url.password)
            engine = create_async_engine(url, **options)
        else:
            if client is None:
                raise ValueError("Vault mode needs a client")
            from .lifecycle import LeaseManager

            await stack.enter_async_context(client)
            if manager is None:
                manager = LeaseManager(client)
            await stack.enter_async_context(manager)
            token_handle = _manage_token(manager, client, auth)
            await wait_first(token_handle, ready_timeout)
            token_secret = token_handle.name
            if db_role:
                db_handle = manager.manage_database_credentials(
                    client, role=db_role, mount=db_mount
                )
            else:
                db_handle = manager.manage_static_credentials(
                    client, role=db_static_role, mount=db_mount
                )
            await wait_first(db_handle, ready_timeout)
            db_secret = db_handle.name
            source = db_handle
            engine = create_async_engine(url.set(username=None, password=None), **options)
        stack.push_async_callback(engine.dispose)
        binding = bind_credentials(engine, source, assume_role=assume_role)
        stack.push_async_callback(binding.aclose)
        runtime = VaultRuntime(
            engine=engine,
            sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
            binding=binding,
            latency=recorder,
            client=None if plain else client,
            manager=None if plain else manager,
            db_secret=db_secret,
            token_secret=token_secret,
        )
        if not plain:
            # A plain task, not a task group: the runtime may be entered and left in
            # different tasks (test fixtures, some servers' lifespans).
            probe = asyncio.get_running_loop().create_task(
                _probe_vault(runtime, probe_interval, DEFAULT_PROBE_TIMEOUT)
            )
            stack.push_async_callback(_cancel, probe)
        yield runtime


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def vault_lifespan(
    open_: Callable[[], AbstractAsyncContextManager[VaultRuntime]],
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A FastAPI ``lifespan`` that enters ``open_()`` and stores the runtime on ``app.state``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_() as runtime:
            app.state.vault_runtime = runtime
            try:
                yield
            finally:
                del app.state.vault_runtime

    return lifespan
