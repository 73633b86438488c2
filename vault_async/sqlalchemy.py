"""Keep an SQLAlchemy ``AsyncEngine`` on short-lived database credentials.

Usage::

    engine = create_async_engine("postgresql+asyncpg://db:5432/app")
    binding = bind_credentials(engine, handle, assume_role="app_owner")
    ...                       # use `engine` as usual, for the service's whole life
    binding.detach()          # at shutdown, before `await engine.dispose()`

``handle`` is anything satisfying :class:`CredentialSource`: the lease engine's
``ManagedSecret`` does, and :class:`StaticCredentials` serves plain mode.

How the engine follows the credential:

* a ``do_connect`` listener puts the current username and password into the
  connect parameters of every new connection and tags the connection record
  with the credential's generation;
* on a ``rotated`` event the pool is swapped (``engine.dispose()``): idle
  connections close at once; checked-out ones finish their transaction and are
  closed when returned (``checkin`` listener), because their generation is stale;
  a stale connection is never handed out again (``checkout`` listener);
* a connect rejected for a bad password or a missing role (revoked from
  outside) forces one rotation and is retried once;
* ``permission denied`` (or ``relation does not exist``, when schema access came
  from a group membership) on a pooled connection is treated as a disconnect: the
  pool is invalidated, so if the login was dropped from outside the next connect
  is rejected, which forces the rotation above; if the login is fine, the pool
  simply reconnects with it.

PostgreSQL keeps sessions of a dropped or expired login open (``SELECT 1``
still works), so pre-ping cannot detect a revoked login: the swap must happen
before the old lease is revoked, which the lease engine guarantees by revoking
only after its drain period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import event, exc
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_only

__all__ = [
    "CredentialSource",
    "EngineBinding",
    "StaticCredentials",
    "bind_credentials",
    "is_login_rejected",
    "is_permission_denied",
    "is_server_unavailable",
    "quote_role",
]

logger = logging.getLogger("vault_async.sqlalchemy")

GENERATION_KEY = "vault_async.generation"
"""Key in ``connection_record.info`` holding the generation a connection was made with."""

EPOCH_KEY = "vault_async.pool_epoch"
"""Key in ``connection_record.info`` holding the pool epoch when the connect began."""

LOGIN_REJECTED_SQLSTATES = frozenset({"28P01", "28000"})
"""invalid_password and invalid_authorization_specification (e.g. role does not exist)."""

PERMISSION_DENIED_SQLSTATES = frozenset({"42501", "42P01"})
"""What a session of a login dropped from outside gets on tables: insufficient_privilege,
or undefined_table when the schema's USAGE came through the lost group membership."""

PG_IDENTIFIER_MAX = 63


class _HasData(Protocol):
    @property
    def data(self) -> Mapping[str, Any]: ...


@runtime_checkable
class CredentialSource(Protocol):
    """What the engine needs from a credential: current value, generation, rotation."""

    @property
    def current(self) -> _HasData | None: ...

    @property
    def generation(self) -> int: ...

    async def force_rotate(self, reason: str) -> Any: ...

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...


@dataclass(frozen=True, slots=True)
class _StaticValue:
    data: Mapping[str, Any] = field(repr=False)


class StaticCredentials:
    """A credential that never changes (plain mode: user and password from the URL)."""

    def __init__(self, username: str | None, password: str | None) -> None:
        self._value = _StaticValue({"username": username, "password": password})

    def __repr__(self) -> str:
        return f"StaticCredentials(username={self._value.data['username']!r})"

    @property
    def current(self) -> _StaticValue:
        return self._value

    @property
    def generation(self) -> int:
        return 0

    async def force_rotate(self, reason: str) -> _StaticValue:
        """Nothing to rotate; the same credential is returned."""
        return self._value

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        return lambda: None


def quote_role(name: str, dialect: Dialect) -> str:
    """Validate a PostgreSQL role name and quote it as an identifier.

    The name is data: it is always quoted (embedded quotes doubled), never
    pasted into SQL as written.
    """
    if not name or len(name.encode()) > PG_IDENTIFIER_MAX:
        raise ValueError("role name must be 1 to 63 bytes long")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise ValueError("role name must not contain control characters")
    return dialect.identifier_preparer.quote_identifier(name)


def _sqlstates(error: BaseException) -> Iterator[str]:
    """The SQLSTATEs carried by ``error`` and the exceptions it wraps, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            yield state
        current = current.__cause__ or getattr(current, "orig", None)


def _has_sqlstate(error: BaseException, states: frozenset[str]) -> bool:
    """True when ``error`` or an exception it wraps carries one of ``states``."""
    return any(state in states for state in _sqlstates(error))


TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")
"""connection_exception, insufficient_resources, operator_intervention (e.g. shutting down)."""


def is_server_unavailable(error: BaseException) -> bool:
    """True for SQLSTATEs that mean the server or the connection, not the statement, failed."""
    return any(state.startswith(TRANSIENT_SQLSTATE_CLASSES) for state in _sqlstates(error))


def is_login_rejected(error: BaseException) -> bool:
    """True when PostgreSQL refused the login itself (bad password, unknown role)."""
    return _has_sqlstate(error, LOGIN_REJECTED_SQLSTATES)


def is_permission_denied(error: BaseException) -> bool:
    """True for insufficient_privilege (42501) or undefined_table (42P01)."""
    return _has_sqlstate(error, PERMISSION_DENIED_SQLSTATES)


@dataclass
class BindingStats:
    """Counters kept by an :class:`EngineBinding` (exported as metrics)."""

    connects: int = 0
    login_retries: int = 0
    pool_swaps: int = 0
    stale_closed: int = 0
    permission_invalidations: int = 0


class EngineBinding:
    """The listeners that tie one ``AsyncEngine`` to one :class:`CredentialSource`."""

    def __init__(
        self,
        engine: AsyncEngine,
        source: CredentialSource,
        *,
        assume_role: str | None = None,
    ) -> None:
        self.engine = engine
        self.source = source
        self.stats = BindingStats()
        self._role_sql = (
            f"SET ROLE {quote_role(assume_role, engine.dialect)}" if assume_role else None
        )
        self._unsubscribe: Callable[[], None] | None = None
        self._swap_tasks: set[asyncio.Task[None]] = set()
        self._epoch = 0
        self._attached = False

    def __repr__(self) -> str:
        return f"EngineBinding(url={self.engine.url!r}, generation={self.source.generation})"

    # lifecycle -----------------------------------------------------------------

    def attach(self) -> None:
        """Install the listeners and subscribe to rotations."""
        if self._attached:
            return
        sync_engine = self.engine.sync_engine
        event.listen(sync_engine, "do_connect", self._on_do_connect)
        event.listen(sync_engine, "connect", self._on_connect)
        event.listen(sync_engine, "checkout", self._on_checkout)
        event.listen(sync_engine, "checkin", self._on_checkin)
        event.listen(sync_engine, "handle_error", self._on_error)
        self._unsubscribe = self.source.subscribe(self._on_event)
        self._attached = True

    def detach(self) -> None:
        """Remove the listeners and stop following rotations."""
        if not self._attached:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        sync_engine = self.engine.sync_engine
        event.remove(sync_engine, "do_connect", self._on_do_connect)
        event.remove(sync_engine, "connect", self._on_connect)
        event.remove(sync_engine, "checkout", self._on_checkout)
        event.remove(sync_engine, "checkin", self._on_checkin)
        event.remove(sync_engine, "handle_error", self._on_error)
        self._attached = False

    async def swap_pool(self) -> None:
        """Close idle connections now; checked-out ones close when returned."""
        self.stats.pool_swaps += 1
        await self.engine.dispose(close=True)
        # Connections begun before this point may belong to the old pool, where nothing
        # would close them once returned: the new epoch marks them stale.
        self._epoch += 1
        logger.info(
            "vault_async.sqlalchemy.pool_swapped",
            extra={"generation": self.source.generation},
        )

    async def aclose_pending(self) -> None:
        """Wait for the pool swaps that rotations started."""
        while self._swap_tasks:
            await asyncio.gather(*self._swap_tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Wait for pending pool swaps, then detach."""
        await self.aclose_pending()
        self.detach()

    # rotation ------------------------------------------------------------------

    def _on_event(self, lease_event: Any) -> None:
        # Only a rotation makes pooled connections stale; "revoked" reports the old lease
        # gone after the drain period, when its connections are already closed.
        if getattr(lease_event, "kind", None) != "rotated":
            return
        task = asyncio.get_running_loop().create_task(self.swap_pool())
        self._swap_tasks.add(task)
        task.add_done_callback(self._swap_done)

    def _swap_done(self, task: asyncio.Task[None]) -> None:
        self._swap_tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.warning(
                "vault_async.sqlalchemy.pool_swap_failed",
                extra={"error_class": type(error).__name__},
            )

    # listeners -----------------------------------------------------------------

    def _credential(self) -> tuple[str | None, str | None, int]:
        generation = self.source.generation
        value = self.source.current
        if value is None:
            raise exc.DisconnectionError("no database credential is available yet")
        return value.data.get("username"), value.data.get("password"), generation

    def _on_do_connect(
        self,
        dialect: Dialect,
        conn_rec: ConnectionPoolEntry,
        cargs: tuple[Any, ...],
        cparams: dict[str, Any],
    ) -> Any:
        epoch = self._epoch
        username, password, generation = self._credential()
        try:
            connection = self._connect(dialect, cargs, cparams, username, password)
        except Exception as error:
            if not is_login_rejected(error):
                raise
            self.stats.login_retries += 1
            logger.warning(
                "vault_async.sqlalchemy.login_rejected",
                extra={"generation": generation, "error_class": type(error).__name__},
            )
            try:
                await_only(self.source.force_rotate("database rejected the login"))
            except Exception as rotate_error:
                logger.warning(
                    "vault_async.sqlalchemy.refresh_failed",
                    extra={"error_class": type(rotate_error).__name__},
                )
                raise error from None  # the database's answer is the one to report
            username, password, generation = self._credential()
            connection = self._connect(dialect, cargs, cparams, username, password)
        conn_rec.info[GENERATION_KEY] = generation
        conn_rec.info[EPOCH_KEY] = epoch
        self.stats.connects += 1
        return connection

    @staticmethod
    def _connect(
        dialect: Dialect,
        cargs: tuple[Any, ...],
        cparams: dict[str, Any],
        username: str | None,
        password: str | None,
    ) -> Any:
        params = dict(cparams)
        if username is not None:
            params["user"] = username
        if password is not None:
            params["password"] = password
        return dialect.connect(*cargs, **params)

    def _on_connect(self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry) -> None:
        if self._role_sql is None:
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(self._role_sql)
        finally:
            cursor.close()

    def _credential_is_stale(self, conn_rec: ConnectionPoolEntry) -> bool:
        """Made with a credential that has since been rotated."""
        made_with = conn_rec.info.get(GENERATION_KEY)
        return made_with is not None and bool(made_with != self.source.generation)

    def _pool_is_stale(self, conn_rec: ConnectionPoolEntry) -> bool:
        """Begun before the last pool swap, so possibly owned by the swapped-out pool."""
        epoch = conn_rec.info.get(EPOCH_KEY)
        return epoch is not None and bool(epoch != self._epoch)

    def _on_checkout(
        self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry, proxy: Any
    ) -> None:
        # Only the credential matters here: a checkout comes from the current pool (and a
        # connection made during a swap must not be refused twice, which would exhaust the
        # pool's reconnect attempts).
        if self._credential_is_stale(conn_rec):
            self.stats.stale_closed += 1
            # The pool invalidates this connection and makes a fresh one.
            raise exc.DisconnectionError("connection made with a rotated credential")

    def _on_checkin(self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry) -> None:
        if dbapi_connection is None:
            return
        if self._credential_is_stale(conn_rec) or self._pool_is_stale(conn_rec):
            self.stats.stale_closed += 1
            conn_rec.invalidate()

    def _on_error(self, context: ExceptionContext) -> None:
        if context.is_disconnect or not is_permission_denied(context.original_exception):
            return
        # A login dropped from outside keeps its sessions, which then fail like this while
        # SELECT 1 still works. Invalidate the pool: reconnecting either works (a genuine
        # permission error) or is rejected, and the rejected connect forces a rotation.
        self.stats.permission_invalidations += 1
        context.is_disconnect = True


def bind_credentials(
    engine: AsyncEngine,
    source: CredentialSource,
    *,
    assume_role: str | None = None,
) -> EngineBinding:
    """Attach ``source`` to ``engine`` and return the binding (call ``detach`` at the end)."""
    binding = EngineBinding(engine, source, assume_role=assume_role)
    binding.attach()
    return binding
