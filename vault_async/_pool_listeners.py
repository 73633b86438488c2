"""The listeners that tie an SQLAlchemy engine's pool to a :class:`CredentialSource`,
shared by the ``AsyncEngine`` binding (``vault_async.sqlalchemy``) and the sync ``Engine``
binding (``vault_async.sqlalchemy_sync``):

* a ``do_connect`` listener puts the current username and password into the
  connect parameters of every new connection and tags the connection record
  with the credential's generation;
* a connect rejected for a bad password or a missing role (revoked from
  outside) forces one rotation and is retried once;
* ``permission denied`` or ``relation does not exist`` on a pooled connection is
  the statement's own error unless the connection's login is gone: a second
  connection looks the login up (:class:`~vault_async._login_check.LoginCheck`,
  at most once per interval and login). Only a gone login makes the error a
  disconnect, which replaces the connections of that login; the next connect is
  then rejected, which forces the rotation above. A genuine error reaches the
  application unchanged and costs no reconnect;
* a source that also has ``track_use(generation, delta)`` (:class:`UseTrackingSource`)
  is told +1 when a connection of a generation is checked out and -1 when it comes
  back (returned, invalidated, refused or dropped by the garbage collector).

The jobs that stand alone live beside this module: the source protocols in
``_credential_source``, SQLSTATE classification in ``_sqlerrors``, the login look-up in
``_login_check``, the +1/-1 bookkeeping in ``_use_counter``. What stays here (past 300
lines) is one object: the listeners share the binding's state (generation, pool epoch,
connect parameters, counters) and read best side by side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Dialect, Engine, ExceptionContext
from sqlalchemy.pool import ConnectionPoolEntry

from ._credential_source import CredentialSource, UseTrackingSource, credential_of
from ._json import drop_none
from ._log_limit import LogLimiter
from ._login_check import DEFAULT_LOGIN_CHECK_INTERVAL, LoginCheck, probe_login
from ._pool_binding import PoolStats
from ._prewarm import SPARE_LOGIN, WARMING
from ._roles import set_role_sql
from ._spares import GENERATION_KEY
from ._sqlerrors import is_login_rejected, is_permission_denied
from ._use_counter import UseCounter

__all__ = ["POOL_EPOCH_KEY", "USERNAME_KEY", "BindingStats", "PoolListeners"]

logger = logging.getLogger("vault_async.sqlalchemy")

POOL_EPOCH_KEY = "vault_async.pool_epoch"
"""Key in ``connection_record.record_info`` (kept across reconnects of the record): the pool
swaps done when the record first connected, which tells the pool it belongs to."""

USERNAME_KEY = "vault_async.username"
"""Key in ``connection_record.info`` holding the login a connection was made with."""


@dataclass
class BindingStats(PoolStats):
    """Counters kept by an :class:`EngineBinding` (exported as metrics)."""

    permission_invalidations: int = 0
    """Connections given up because their login was found dropped from outside."""
    login_checks: int = 0
    """Look-ups of a login after a permission error (at most one per interval and login)."""
    prewarmed: int = 0
    """Spare connections rollovers opened beside the pool (also counted in ``connects``)."""


class PoolListeners:
    """The listeners that tie one engine's pool to one :class:`CredentialSource`.

    Shared by the ``AsyncEngine`` binding (``vault_async.sqlalchemy``) and the sync
    ``Engine`` binding (``vault_async.sqlalchemy_sync``); a subclass says how a rotation is
    forced from inside ``do_connect`` (:meth:`_refresh`) and what a rotation event does
    (:meth:`_on_event`).
    """

    def __init__(
        self,
        target: Engine,
        source: CredentialSource,
        *,
        assume_role: str | None = None,
        login_check_interval: float = DEFAULT_LOGIN_CHECK_INTERVAL,
        login_check: type[LoginCheck] = LoginCheck,
    ) -> None:
        self._target = target
        self.source = source
        self.stats = BindingStats()
        self._role_sql = set_role_sql(assume_role)
        self._unsubscribe: Callable[[], None] | None = None
        self._epoch = 0  # pool swaps done: the current pool's number
        self._attached = False
        self._login_check = login_check(self._login_exists, interval=login_check_interval)
        self._connect_args: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._uses: UseCounter | None = None
        self._served = source.generation  # the newest generation a checkout was given
        # While the credential cannot be refreshed every new connection meets the same
        # refusal: one WARNING per condition per interval, the repeats at DEBUG.
        self.log_limit = LogLimiter()

    def __repr__(self) -> str:
        name, url = type(self).__name__, self._target.url
        return f"{name}(url={url!r}, generation={self.source.generation})"

    # lifecycle -----------------------------------------------------------------

    def _listeners(self) -> tuple[tuple[str, Callable[..., Any]], ...]:
        """The (event name, listener) pairs that attach installs and detach removes."""
        return (
            ("do_connect", self._on_do_connect),
            ("connect", self._on_connect),
            ("checkout", self._on_checkout),
            ("checkin", self._on_checkin),
            ("detach", self._on_detach),
            ("handle_error", self._on_error),
        )

    def attach(self) -> None:
        """Install the listeners and subscribe to rotations."""
        if self._attached:
            return
        if isinstance(self.source, UseTrackingSource):
            self._uses = UseCounter(self.source.track_use)
            self._announce(self.source)
        for name, listener in self._listeners():
            event.listen(self._target, name, listener)
        self._unsubscribe = self.source.subscribe(self._on_event)
        self._attached = True

    def detach(self) -> None:
        """Remove the listeners and stop following rotations.

        Connections still checked out are reported returned: nothing would count them back.
        """
        if not self._attached:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for name, listener in self._listeners():
            event.remove(self._target, name, listener)
        if self._uses is not None:
            self._uses.release_all()
            self._uses = None
        self._attached = False

    # subclasses ----------------------------------------------------------------

    def _announce(self, source: UseTrackingSource) -> None:
        """Tell the source a pool reports, before any checkout: the lease engine then waits
        for the connections of a replaced lease rather than for a fixed drain period."""
        source.track_use(source.generation, 0)

    def _retired(self) -> None:
        """Call after a swap: from now on, whatever comes back to the swapped-out pool is closed.

        Checkouts still out of it, or still waiting in it (they reconnect its records, with
        the current credential), return to it, where nothing would close them again. A
        record's pool is told by the swaps done when the record first connected (its
        ``record_info`` outlives reconnects), so no listener is added to a pool in use.
        """
        self._epoch += 1

    def _refresh(self, reason: str, generation: int) -> None:
        """Force a rotation of ``generation`` (the one rejected) from inside ``do_connect``
        and wait for it."""
        raise NotImplementedError

    def _on_event(self, lease_event: Any) -> None:
        """A lease event of the source (a ``rotated`` one makes pooled connections stale)."""
        raise NotImplementedError

    # listeners -----------------------------------------------------------------

    def _credential(self) -> tuple[str | None, str | None, int]:
        credential = credential_of(self.source)
        if credential is None:
            raise exc.DisconnectionError("no database credential is available yet")
        return credential

    def _on_do_connect(
        self,
        dialect: Dialect,
        conn_rec: ConnectionPoolEntry | None,
        cargs: tuple[Any, ...],
        cparams: dict[str, Any],
    ) -> Any:
        self._note_pool(conn_rec)
        username, password, generation = self._credential()
        try:
            connection = self._connect(dialect, cargs, cparams, username, password)
        except Exception as error:
            if not is_login_rejected(error):
                raise
            self.stats.login_retries += 1
            self.log_limit.log(
                logger,
                "pool.login_rejected",
                generation=generation,
                error_class=type(error).__name__,
            )
            try:
                self._refresh("database rejected the login", generation)
            except Exception as rotate_error:
                self.log_limit.log(
                    logger, "pool.refresh_failed", error_class=type(rotate_error).__name__
                )
                raise error from None  # the database's answer is the one to report
            username, password, generation = self._credential()
            connection = self._connect(dialect, cargs, cparams, username, password)
        self._connect_args = (cargs, cparams)
        self._tag(conn_rec, username, generation)
        self.stats.connects += 1
        if (login := SPARE_LOGIN.get()) is not None:
            login.append((username, generation))
        return connection

    def _note_pool(self, conn_rec: ConnectionPoolEntry | None) -> None:
        """Note on a record, when it first connects, the pool it belongs to (the swaps done
        so far): its ``record_info`` outlives reconnects."""
        record_info = None if conn_rec is None else conn_rec.record_info
        if record_info is not None:  # None for a detached connection, or a spare's connect
            record_info.setdefault(POOL_EPOCH_KEY, self._epoch)

    @staticmethod
    def _tag(conn_rec: ConnectionPoolEntry | None, username: str | None, generation: int) -> None:
        """Note on the record the login and generation its connection was made with."""
        if conn_rec is not None:
            conn_rec.info[GENERATION_KEY] = generation
            conn_rec.info[USERNAME_KEY] = username

    @staticmethod
    def _connect(
        dialect: Dialect,
        cargs: tuple[Any, ...],
        cparams: dict[str, Any],
        username: str | None,
        password: str | None,
    ) -> Any:
        params = {**cparams, **drop_none(user=username, password=password)}
        return dialect.connect(*cargs, **params)

    def _on_connect(self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry) -> None:
        self._set_role(dbapi_connection)

    def _set_role(self, dbapi_connection: Any) -> None:
        """Run the binding's ``SET ROLE`` on a new connection (none without ``assume_role``)."""
        if self._role_sql is None:
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(self._role_sql)
        finally:
            cursor.close()
        # Drivers that open a transaction for the statement (psycopg) would lose the role to
        # the pool's rollback on return: the role is committed with the connection.
        dbapi_connection.commit()

    def _credential_is_stale(self, conn_rec: ConnectionPoolEntry) -> bool:
        """Made with a credential that has since been rotated."""
        made_with = conn_rec.info.get(GENERATION_KEY)
        return made_with is not None and bool(made_with != self.source.generation)

    def _pool_is_retired(self, conn_rec: ConnectionPoolEntry) -> bool:
        """A record of a pool swapped out since it first connected."""
        record_info = conn_rec.record_info
        first = None if record_info is None else record_info.get(POOL_EPOCH_KEY)
        return first is not None and first != self._epoch

    def _on_checkout(
        self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry, proxy: Any
    ) -> None:
        # Only the credential matters here: a checkout comes from the current pool (and a
        # connection made during a swap must not be refused twice, which would exhaust the
        # pool's reconnect attempts).
        if self._credential_is_stale(conn_rec):
            self.stats.stale_closed += 1
            # The pool invalidates this connection and makes a fresh one (not counted: the
            # checkout event runs again for it).
            raise exc.DisconnectionError("connection made with a rotated credential")
        self._count_out(conn_rec)
        self._note_serving(conn_rec)

    def _note_serving(self, conn_rec: ConnectionPoolEntry) -> None:
        """Log the first checkout of each newer generation (``pool.generation_serving``)."""
        generation = conn_rec.info.get(GENERATION_KEY)
        if WARMING.get():
            return
        if generation is not None and generation > self._served:
            self._served = generation
            logger.info("pool.generation_serving", extra={"generation": generation})

    def _on_checkin(self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry) -> None:
        # Every return passes here (closed, invalidated, refused on checkout), with the
        # DBAPI connection already gone for an invalidated one. The -1 comes last: a stale
        # connection is closed before its lease may be revoked for it.
        try:
            if conn_rec.dbapi_connection is not None and (
                self._credential_is_stale(conn_rec) or self._pool_is_retired(conn_rec)
            ):
                self.stats.stale_closed += 1
                conn_rec.invalidate()
        finally:
            self._count_in(conn_rec)

    def _on_detach(self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry) -> None:
        # A connection detached from its record never comes back through checkin: this is
        # also the path of an asyncio connection the garbage collector finalises.
        self._count_in(conn_rec)

    def _count_out(self, conn_rec: ConnectionPoolEntry) -> None:
        generation = conn_rec.info.get(GENERATION_KEY)
        if self._uses is not None and generation is not None:
            self._uses.out(conn_rec, generation)

    def _count_in(self, conn_rec: ConnectionPoolEntry) -> None:
        if self._uses is not None:
            self._uses.back(conn_rec)

    # permission errors ---------------------------------------------------------

    def _on_error(self, context: ExceptionContext) -> None:
        if context.is_disconnect or not is_permission_denied(context.original_exception):
            return
        if context.connection is None or context.connection.invalidated:
            return
        info = context.connection.info
        username = info.get(USERNAME_KEY)
        if username is None:
            return
        # A login dropped from outside keeps its sessions, which then fail like this while
        # SELECT 1 still works; a wrong or forbidden statement fails the same way. Only a
        # login that is gone makes the connection lost.
        if self._login_check.exists(username):
            return
        self.stats.permission_invalidations += 1
        logger.warning(
            "pool.login_gone",
            extra={"generation": info.get(GENERATION_KEY)},
        )
        context.is_disconnect = True
        # The current generation's login: every pooled connection shares it, so the pool
        # goes, and the next connect is rejected, which forces a rotation. An older
        # generation's connection goes alone; its siblings close as they come back.
        context.invalidate_pool_on_disconnect = (
            info.get(GENERATION_KEY) == self.source.generation
        )

    def _login_exists(self, username: str) -> bool:
        """Ask PostgreSQL, from a connection of its own with the current credential."""
        self.stats.login_checks += 1
        if self._connect_args is None:
            return True
        cargs, cparams = self._connect_args
        current, password, _ = self._credential()
        dialect = self._target.dialect
        return probe_login(
            dialect,
            lambda: self._connect(dialect, cargs, cparams, current, password),
            username,
        )
