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
* on a ``rotated`` event the pool rolls over (``prewarm``, :class:`Prewarm`; the
  bounds and the deadline are in ``_prewarm``): spare connections of the new
  generation open beside the pool, a few at a time, while the old ones keep serving;
  each old connection that comes back, or sits idle, is closed and its record
  reconnects on its next checkout with the spare kept for it (``do_connect`` returns
  it). At the rollover's deadline the old generation is stale: idle connections close
  at once, checked-out ones finish their transaction and are closed when returned
  (``checkin`` listener); a stale connection is never handed out again (``checkout``
  listener). Without pre-warming the swap is ``engine.dispose()``. The swapped-out
  pool keeps serving the checkouts that were waiting in it (which reconnect its
  records with the new credential): whatever is returned to it is closed, so no
  connection stays idle in a pool nothing will ever close;
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
  back (returned, invalidated, refused or dropped by the garbage collector), so the
  lease engine can revoke a rotated-away lease once its last connection is back. The
  async binding also holds one count of its own on the generation in force
  (:class:`~vault_async._use_counter.GenerationHold`): at a rotation it holds the new
  generation at once and gives the old one back only after the swap has closed the idle
  connections, so a rotation with nothing checked out cannot revoke the old login under
  its idle sessions (the sync binding's swap runs inside the rotation's callback, before
  ``SyncCredentials`` gives its own hold back).

PostgreSQL keeps sessions of a dropped or expired login open (``SELECT 1``
still works), so pre-ping cannot detect a revoked login: the swap must happen
before the old lease is revoked, which the lease engine guarantees by revoking
only once the old generation's connections are back and the binding has given back
its hold on that generation.

The jobs that stand alone live beside this module: the source protocols in
``_credential_source``, SQLSTATE classification in ``_sqlerrors``, the login look-up in
``_login_check``, the +1/-1 bookkeeping in ``_use_counter``. What stays here (past 300
lines) is one object: the listeners share the binding's state (generation, pool epoch,
connect parameters, counters) and read best side by side.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Dialect, Engine, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.util import await_only

from ._credential_source import (
    CredentialSource,
    StaticCredentials,
    UseTrackingSource,
    credential_of,
)
from ._json import drop_none
from ._log_limit import LogLimiter
from ._login_check import DEFAULT_LOGIN_CHECK_INTERVAL, LoginCheck, probe_login
from ._pool_binding import PoolStats
from ._pool_swaps import PoolSwaps
from ._prewarm import (
    DEFAULT_PREWARM,
    SPARE_LOGIN,
    WARMING,
    HoldTimes,
    Prewarm,
    Rollover,
    rollover_budget,
    run_to_end,
)
from ._roles import quote_identifier, set_role_sql
from ._spares import GENERATION_KEY, Book, Spares, close_quietly, close_spares
from ._sqlerrors import is_login_rejected, is_permission_denied, is_server_unavailable
from ._use_counter import UseCounter

__all__ = [
    "CredentialSource",
    "EngineBinding",
    "PoolListeners",
    "Prewarm",
    "StaticCredentials",
    "UseTrackingSource",
    "bind_credentials",
    "is_login_rejected",
    "is_permission_denied",
    "is_server_unavailable",
    "quote_role",
]

logger = logging.getLogger("vault_async.sqlalchemy")

POOL_EPOCH_KEY = "vault_async.pool_epoch"
"""Key in ``connection_record.record_info`` (kept across reconnects of the record): the pool
swaps done when the record first connected, which tells the pool it belongs to."""

CHECKED_OUT_AT = "vault_async.checked_out_at"
"""Key in ``connection_record.info``: when the connection was checked out (monotonic)."""

USERNAME_KEY = "vault_async.username"
"""Key in ``connection_record.info`` holding the login a connection was made with."""

ROLE_SET_KEY = "vault_async.role_set"
"""Key in ``connection_record.info``: the connection is a spare whose ``SET ROLE`` is done."""

def quote_role(name: str, dialect: Dialect | None = None) -> str:
    """Validate a PostgreSQL role name and quote it as an identifier (see ``_roles``).

    ``dialect`` is accepted for callers that pass one; PostgreSQL's quoting is the same
    for every driver.
    """
    return quote_identifier(name)


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

    Shared by the ``AsyncEngine`` binding below and the sync ``Engine`` binding
    (``vault_async.sqlalchemy_sync``); a subclass says how a rotation is forced from inside
    ``do_connect`` (:meth:`_refresh`) and what a rotation event does (:meth:`_on_event`).
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


class EngineBinding(PoolListeners):
    """The listeners that tie one ``AsyncEngine`` to one :class:`CredentialSource`.

    A rotation rolls the pool over (``prewarm``, see ``_prewarm``): spare connections of the
    new generation are opened beside the pool while the old generation keeps serving, and
    each takes the place of an old connection as that one comes back or sits idle. Until the
    rollover ends, connections of the generations served before the rotation are not stale.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        source: CredentialSource,
        *,
        assume_role: str | None = None,
        login_check_interval: float = DEFAULT_LOGIN_CHECK_INTERVAL,
        prewarm: Prewarm = DEFAULT_PREWARM,
    ) -> None:
        super().__init__(
            engine.sync_engine, source, assume_role=assume_role,
            login_check_interval=login_check_interval,
        )
        self.engine = engine
        self.prewarm = prewarm
        self._in_force = source.generation
        """The generation of the last rotation seen (the one before the next rotation)."""
        self._serving: set[int] = set()
        """Older generations whose connections serve on until the rollover replacing them
        ends."""
        self._swaps = PoolSwaps(self.swap_pool, logger)
        self._swap_lock = asyncio.Lock()
        self._replace_by: dict[int, float] = {}
        """Per rotation (its generation): the monotonic time by which the old connections
        must be replaced (the old login ends soon after)."""
        self._holds = HoldTimes()
        self._book = Book()
        self._spares = Spares()
        self._rollover: Rollover | None = None
        self._closing = False
        self._refused: int | None = None
        """While a rejected login forces a rotation: the generation the database refused."""

    async def swap_pool(self) -> None:
        """Replace the old connections: rolled over when asked and possible, else the pool
        at once. Idle old connections close as they are replaced (at once without a rollover);
        checked-out ones close when returned."""
        async with self._swap_lock:  # one at a time: each replaces all but the generation in force
            pool = self._target.pool
            if not self.prewarm.enabled or not isinstance(pool, QueuePool):
                self.stats.pool_swaps += 1
                await self.engine.dispose(close=True)
                self._retired()
                self._serving.clear()
            else:
                await self._roll_over(pool)
            logger.info("pool.swapped", extra={"generation": self.source.generation})

    async def _roll_over(self, pool: QueuePool) -> None:
        rollover = Rollover(
            pool, self.prewarm, self._book, self._spares,
            current=lambda: self.source.generation, serves=lambda g: g in self._serving,
        )
        started = time.monotonic()

        def deadline() -> float:
            return -1.0 if self._closing else min(
                [started + self.prewarm.timeout, *self._replace_by.values()]
            )

        if rollover.left():
            self.stats.pool_swaps += 1
            self._rollover = rollover
        now = self.source.generation
        try:
            if self._rollover is rollover:
                await rollover.run(deadline)
            now = self.source.generation
        finally:
            self._rollover = None
            # The generations this rollover replaced serve no more (a rotation since then
            # keeps the one it replaced for its own rollover).
            self._serving.difference_update([g for g in self._serving if g < now])
            self._replace_by = {g: t for g, t in self._replace_by.items() if g > now}
            await run_to_end(rollover.close_idle())

    def _listeners(self) -> tuple[tuple[str, Callable[..., Any]], ...]:
        return (*super()._listeners(), ("engine_disposed", self._on_disposed))

    def _on_disposed(self, engine: Engine) -> None:
        # The pool is replaced: its records are forgotten (a connection still out closes when
        # it comes back to the disposed pool, counted by the source meanwhile), and the
        # spares kept for them are closed (by the rollover's end when one runs), not left
        # open for records that never reconnect.
        self._retired()
        self._book.clear()
        self._spares.unclaim()
        if (rollover := self._rollover) is not None:
            rollover.poke()
        elif spares := self._spares.leftover(self.source.generation):
            self._swaps.run(close_spares(spares))

    def _on_do_connect(
        self,
        dialect: Dialect,
        conn_rec: ConnectionPoolEntry | None,
        cargs: tuple[Any, ...],
        cparams: dict[str, Any],
    ) -> Any:
        if conn_rec is not None and not WARMING.get():
            spare = self._spares.take(conn_rec, self.source.generation)
            if spare is not None:  # logged in by a rollover: no login on the request path
                self._note_pool(conn_rec)
                self._tag(conn_rec, spare.username, spare.generation)
                conn_rec.info[ROLE_SET_KEY] = True
                return spare.connection
        connection = super()._on_do_connect(dialect, conn_rec, cargs, cparams)
        if conn_rec is None and WARMING.get():
            # A spare: its SET ROLE is done now, not on the request path that takes it.
            try:
                self._set_role(connection)
            except BaseException:
                close_quietly(connection)
                raise
            self.stats.prewarmed += 1
        return connection

    def _on_connect(self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry) -> None:
        if conn_rec.info.get(ROLE_SET_KEY, False):
            return  # a spare, set up when it opened
        super()._on_connect(dbapi_connection, conn_rec)

    def _on_checkout(
        self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry, proxy: Any
    ) -> None:
        super()._on_checkout(dbapi_connection, conn_rec, proxy)
        self._book.seen(conn_rec, idle=False)
        conn_rec.info[CHECKED_OUT_AT] = time.monotonic()

    def _on_checkin(self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry) -> None:
        started = conn_rec.info.pop(CHECKED_OUT_AT, None)
        if started is not None:
            self._holds.add(time.monotonic() - started)
        rollover = self._rollover
        generation = conn_rec.info.get(GENERATION_KEY)
        if (
            rollover is not None
            and conn_rec.dbapi_connection is not None
            and generation in self._serving
            and rollover.returned(conn_rec)
        ):
            conn_rec.invalidate()  # a spare is kept for its record's next checkout
        super()._on_checkin(dbapi_connection, conn_rec)
        self._book.seen(conn_rec, idle=True)
        if rollover is not None:
            rollover.poke()  # room for the next spare, or one old connection fewer

    def _credential_is_stale(self, conn_rec: ConnectionPoolEntry) -> bool:
        made_with = conn_rec.info.get(GENERATION_KEY)
        return made_with is not None and made_with != self.source.generation and (
            made_with not in self._serving
        )

    async def aclose_pending(self) -> None:
        """Wait for the pool swaps that rotations started (a rollover runs to its end)."""
        await self._swaps.wait()

    async def aclose(self) -> None:
        """End a rollover now, wait for pending pool swaps, close the spares, then detach."""
        self._closing = True
        if self._rollover is not None:
            self._rollover.stop()
        await self.aclose_pending()
        await close_spares(self._spares.leftover(None))
        self.detach()

    def detach(self) -> None:
        """Remove the listeners and stop following rotations (the hold is given back; spares
        still open are closed in a task)."""
        super().detach()
        self._swaps.drop_hold()
        spares = self._spares.leftover(None)
        if spares:
            try:
                self._swaps.run(close_spares(spares))
            except RuntimeError:  # no event loop runs here: the driver's finaliser closes them
                logger.debug("pool.spares_left", extra={"count": len(spares)})

    def _announce(self, source: UseTrackingSource) -> None:
        # The count that keeps the generation in force from being revoked under the idle
        # connections until a swap has closed them (it also announces the pool).
        self._swaps.hold_from(source)

    def _on_event(self, lease_event: Any) -> None:
        # Only a rotation makes pooled connections stale; "revoked" reports the old lease
        # gone after the drain period, when its connections are already closed.
        if getattr(lease_event, "kind", None) != "rotated":
            return
        previous, self._in_force = self._in_force, self.source.generation
        if self._refused is not None:
            # The database refused that login: nothing is served on it any more.
            self._serving.discard(self._refused)
        elif self.prewarm.enabled:
            self._serving.add(previous)  # it serves on until its connections are replaced
            valid_for = getattr(lease_event, "previous_valid_for", None)
            if valid_for is not None:
                # A share of the old login's time left for the rollover, the rest for the
                # requests still running on it.
                budget = rollover_budget(self.prewarm, valid_for, self._holds.longest())
                self._replace_by[self.source.generation] = time.monotonic() + budget
        if (rollover := self._rollover) is not None:
            rollover.poke()
        self._swaps.start(self.source.generation)

    def _refresh(self, reason: str, generation: int) -> None:
        # do_connect runs in the greenlet of the statement that needed a connection.
        self._refused = generation
        try:
            await_only(self.source.force_rotate(reason, generation=generation))
        finally:
            self._refused = None


def bind_credentials(
    engine: AsyncEngine,
    source: CredentialSource,
    *,
    assume_role: str | None = None,
    prewarm: Prewarm = DEFAULT_PREWARM,
) -> EngineBinding:
    """Attach ``source`` to ``engine`` and return the binding (call ``detach`` at the end)."""
    binding = EngineBinding(engine, source, assume_role=assume_role, prewarm=prewarm)
    binding.attach()
    return binding
