"""FastAPI glue: a lifespan around :func:`open_runtime`, sessions, /healthz and /metrics.

``open_runtime``, ``VaultRuntime`` and ``StartupError`` live in :mod:`vault_async.runtime`
and are re-exported here.

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
    add_database_error_handlers(app)

    @app.get("/things")
    async def things(session: SessionDep) -> list[str]: ...

On the asyncpg or psycopg_pool binding instead, the lifespan opens the pool and each request
gets a pooled connection (back in the pool before the response is sent)::

    app = FastAPI(lifespan=pool_lifespan(lambda: bind_pool(url, handle, max_size=10)))
    add_database_error_handlers(app)

    @app.get("/things")
    async def things(con: ConnectionDep) -> list[str]: ...          # asyncpg

    @app.get("/others")
    async def others(conn: PsycopgConnectionDep) -> list[str]: ...  # psycopg_pool

``SessionDep`` is ``Annotated[AsyncSession, Depends(get_session, scope="function")]``: the
session commits before the response is sent. Plain ``Depends(get_session)`` works too, but
FastAPI then runs the commit after the response has gone out, so a failed commit would be a
write the client was told succeeded.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, Protocol, TypeVar

import asyncpg
import psycopg
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from ._health import HealthStatus, health_payload, health_status
from ._prometheus import metric_families
from .runtime import StartupError, VaultRuntime, open_runtime
from .sqlalchemy import is_login_rejected, is_server_unavailable

__all__ = [
    "ConnectionDep",
    "HealthStatus",
    "PooledConnections",
    "PsycopgConnectionDep",
    "SessionDep",
    "StartupError",
    "VaultRuntime",
    "add_database_error_handlers",
    "database_error_handler",
    "get_connection",
    "get_runtime",
    "get_session",
    "health_payload",
    "health_router",
    "health_status",
    "is_transient_database_error",
    "metric_families",
    "metrics_router",
    "open_runtime",
    "pool_lifespan",
    "vault_lifespan",
]

logger = logging.getLogger("vault_async.fastapi")


def health_router(path: str = "/healthz") -> APIRouter:
    """``GET /healthz``: 200 for ok and degraded, 503 for failing."""
    router = APIRouter()

    @router.get(path, include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        status, body = health_payload(get_runtime(request))
        return JSONResponse(body, status_code=503 if status == "failing" else 200)

    return router


def metrics_router(path: str = "/metrics") -> APIRouter:
    """``GET /metrics``: the runtime's registry in the Prometheus text format."""
    router = APIRouter()

    @router.get(path, include_in_schema=False)
    async def metrics(request: Request) -> Response:
        body = generate_latest(get_runtime(request).registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router


def is_transient_database_error(error: BaseException) -> bool:
    """True when retrying the request shortly can succeed: the connection or login is the
    problem, not the statement."""
    return (
        isinstance(
            error,
            ConnectionError | OperationalError | InterfaceError | psycopg.OperationalError,
        )
        or bool(getattr(error, "connection_invalidated", False))
        or is_login_rejected(error)
        or is_server_unavailable(error)
    )


async def database_error_handler(request: Request, error: Exception) -> JSONResponse:
    """Answer database errors without dropping the client's keep-alive connection.

    A transient error (connection reset or refused, a pooled connection just invalidated
    because its login was dropped from outside, a login rejected while the credential is
    being replaced) gives 503 with ``Retry-After: 1``. Anything else is logged (class only)
    and answered 500. Register with :func:`add_database_error_handlers`.
    """
    if is_transient_database_error(error):
        logger.info(
            "api.database_unavailable",
            extra={"error_class": type(error).__name__, "path": request.url.path},
        )
        return JSONResponse(
            {"detail": "database temporarily unavailable; retry"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    logger.error(
        "api.database_error",
        extra={"error_class": type(error).__name__, "path": request.url.path},
    )
    return JSONResponse({"detail": "internal database error"}, status_code=500)


def add_database_error_handlers(app: FastAPI) -> None:
    """Route database errors (SQLAlchemy's DBAPI errors, asyncpg's and psycopg's) and connection
    errors to :func:`database_error_handler`.

    Handled errors never reach the server, which would otherwise close the client's
    keep-alive connection after the 500.
    """
    app.add_exception_handler(DBAPIError, database_error_handler)
    app.add_exception_handler(asyncpg.PostgresError, database_error_handler)
    app.add_exception_handler(asyncpg.InterfaceError, database_error_handler)
    app.add_exception_handler(psycopg.Error, database_error_handler)
    app.add_exception_handler(ConnectionError, database_error_handler)


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


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
"""An ``AsyncSession`` per request that commits before the response is sent."""


class PooledConnections(Protocol):
    """A pool binding that lends connections: ``vault_async.asyncpg.PoolBinding`` and
    ``vault_async.psycopg.PsycopgPoolBinding``."""

    def connection(self) -> AbstractAsyncContextManager[Any]: ...


async def get_connection(request: Request) -> AsyncIterator[Any]:
    """``Depends(get_connection)``: a connection of the pool binding on ``app.state.vault_pool``.

    Transactions are the handler's (asyncpg: ``async with con.transaction():``; psycopg: the
    pool commits on success and rolls back on error when the connection goes back); the
    connection goes back to the pool when the dependency ends.
    """
    binding: PooledConnections = request.app.state.vault_pool
    async with binding.connection() as connection:
        yield connection


ConnectionDep = Annotated[asyncpg.Connection, Depends(get_connection, scope="function")]
"""A pooled asyncpg connection per request, back in the pool before the response is sent."""

PsycopgConnectionDep = Annotated[
    psycopg.AsyncConnection[Any], Depends(get_connection, scope="function")
]
"""A pooled psycopg connection per request, back in the pool before the response is sent."""


T = TypeVar("T")


def _state_lifespan(
    open_: Callable[[], AbstractAsyncContextManager[T]], name: str
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A FastAPI ``lifespan`` that enters ``open_()`` and stores what it gives on
    ``app.state.<name>`` for the app's life."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_() as opened:
            setattr(app.state, name, opened)
            try:
                yield
            finally:
                delattr(app.state, name)

    return lifespan


def pool_lifespan(
    open_: Callable[[], AbstractAsyncContextManager[PooledConnections]],
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A FastAPI ``lifespan`` that enters ``open_()`` (``vault_async.asyncpg.bind_pool`` or
    ``vault_async.psycopg.bind_pool``) and stores the binding on ``app.state.vault_pool``."""
    return _state_lifespan(open_, "vault_pool")


def vault_lifespan(
    open_: Callable[[], AbstractAsyncContextManager[VaultRuntime]],
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A FastAPI ``lifespan`` that enters ``open_()`` and stores the runtime on ``app.state``."""
    return _state_lifespan(open_, "vault_runtime")
