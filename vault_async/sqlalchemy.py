"""Keep an SQLAlchemy ``AsyncEngine`` on short-lived database credentials.

Usage::

    engine = create_async_engine("postgresql+asyncpg://db:5432/app")
    binding = bind_credentials(engine, handle, assume_role="app_owner")
    ...                       # use `engine` as usual, for the service's whole life
    binding.detach()          # at shutdown, before `await engine.dispose()`

``handle`` is anything satisfying :class:`CredentialSource`: the lease engine's
``ManagedSecret`` does, and :class:`StaticCredentials` serves plain mode.

How the engine follows the credential:

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

The listeners every binding shares (connect parameters, generation tags, a refused
login, permission errors, use counts) are :class:`~vault_async._pool_listeners.PoolListeners`;
the spares and the rollover are in ``_spares`` and ``_prewarm``. What stays here (past 300
lines) is the ``AsyncEngine`` binding: its listeners and its rollover share one state
(generations still served, the deadline, the spares) and read best side by side.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.pool.base import _ConnectionRecord
from sqlalchemy.util import await_only

from ._credential_source import (
    CredentialSource,
    StaticCredentials,
    UseTrackingSource,
    credential_of,
)
from ._login_check import DEFAULT_LOGIN_CHECK_INTERVAL
from ._pool_listeners import PoolListeners
from ._pool_swaps import PoolSwaps
from ._prewarm import (
    DEFAULT_PREWARM,
    WARMING,
    HoldTimes,
    Prewarm,
    Rollover,
    rollover_budget,
    run_to_end,
)
from ._roles import quote_identifier
from ._spares import (
    GENERATION_KEY,
    Book,
    Spare,
    Spares,
    close_connection,
    close_quietly,
    close_spares,
    generation_of,
)
from ._sqlerrors import is_login_rejected, is_permission_denied, is_server_unavailable

__all__ = [
    "CredentialSource",
    "EngineBinding",
    "PoolListeners",
    "Prewarm",
    "StaticCredentials",
    "UseTrackingSource",
    "bind_credentials",
    "credential_of",
    "is_login_rejected",
    "is_permission_denied",
    "is_server_unavailable",
    "quote_role",
]

logger = logging.getLogger("vault_async.sqlalchemy")

CHECKED_OUT_AT = "vault_async.checked_out_at"
"""Key in ``connection_record.info``: when the connection was checked out (monotonic)."""

ROLE_SET_KEY = "vault_async.role_set"
"""Key in ``connection_record.info``: the connection is a spare whose ``SET ROLE`` is done."""

def quote_role(name: str, dialect: Dialect | None = None) -> str:
    """Validate a PostgreSQL role name and quote it as an identifier (see ``_roles``).

    ``dialect`` is accepted for callers that pass one; PostgreSQL's quoting is the same
    for every driver.
    """
    return quote_identifier(name)


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
                await self._roll_over()
            logger.info("pool.swapped", extra={"generation": self.source.generation})

    async def _roll_over(self) -> None:
        rollover = Rollover(
            lambda: self._target.pool, self.prewarm, self._book, self._spares,
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
        now = self.source.generation  # the generation in force when the rollover starts
        try:
            if self._rollover is rollover:
                await rollover.run(deadline)
        finally:
            self._rollover = None
            # The generations this rollover replaced serve no more; one a rotation since then
            # replaced serves on until its own rollover (queued) and its own deadline.
            self._serving.difference_update([g for g in self._serving if g < now])
            self._replace_by = {g: t for g, t in self._replace_by.items() if g > now}
            await run_to_end(self._after_rollover(rollover))

    async def _after_rollover(self, rollover: Rollover) -> None:
        """Close what the generations that serve no more left: idle connections, and an older
        spare a reconnecting record gave back (nothing else would close it when the next
        rotation finds nothing to roll over)."""
        await rollover.close_idle()
        await close_spares(self._spares.stale_free(self.source.generation))

    def _listeners(self) -> tuple[tuple[str, Callable[..., Any]], ...]:
        return (
            *super()._listeners(),
            ("engine_disposed", self._on_disposed),
            ("close", self._on_close),
        )

    def _on_close(self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry) -> None:
        # The pool closes this record's connection (an overflow record discarded on return,
        # an invalidation, a recycle): it is no idle connection for the rollover to replace.
        self._book.forget(conn_rec)

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
        else:
            self._close_later(self._spares.leftover(self.source.generation))

    def _close_later(self, spares: list[Spare]) -> None:
        """Close ``spares`` in a task the binding's close waits for."""
        if not spares:
            return
        try:
            self._swaps.run(close_spares(spares))
        except RuntimeError:  # no event loop runs here: the driver's finaliser closes them
            logger.debug("pool.spares_left", extra={"count": len(spares)})

    def _end_rollover(self) -> None:
        """A rollover under way ends now, and none starts: nothing may claim a spare after."""
        self._closing = True
        if self._rollover is not None:
            self._rollover.stop()

    def _on_do_connect(
        self,
        dialect: Dialect,
        conn_rec: ConnectionPoolEntry | None,
        cargs: tuple[Any, ...],
        cparams: dict[str, Any],
    ) -> Any:
        if conn_rec is not None and not WARMING.get():
            spare = self._spares.take(conn_rec, self.source.generation)
            if spare is not None and (rollover := self._rollover) is not None:
                rollover.poke()  # if the spare was a free one, another may be wanted
            if spare is not None and getattr(self._target.pool, "_pre_ping", False) and not (
                _alive(dialect, spare.connection)
            ):
                # A spare may have waited minutes for its record: pool_pre_ping checks it like
                # an idle pooled connection (the pool skips a new one, and the dialect's
                # set-up on connect would fail on a dead one).
                close_quietly(spare.connection)
                spare = None
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
        old = generation != self.source.generation
        look = False
        try:
            if rollover is not None and self._discarded_on_return():
                look = True  # an overflow record the pool closes: a slot fewer, maybe an old one
            elif (
                rollover is not None
                and conn_rec.dbapi_connection is not None
                and generation in self._serving
                and not self._pool_is_retired(conn_rec)
            ):
                if rollover.returned(conn_rec):
                    self._close_returned(conn_rec, rollover)  # a spare is kept for its record
                else:
                    # It serves on. Its look comes with the next spare, unless none is opening.
                    look = rollover.quiet()
        finally:
            super()._on_checkin(dbapi_connection, conn_rec)
            self._book.seen(conn_rec, idle=True)
            if rollover is not None and (look or (old and conn_rec.dbapi_connection is None)):
                # One old connection fewer, or a slot free. An old connection that simply serves
                # on while spares open needs no look: under load that was a pass over the pool
                # at every return.
                rollover.poke()

    def _close_returned(self, conn_rec: ConnectionPoolEntry, rollover: Rollover) -> None:
        """Take an old connection coming back off its record and close it in a task: the
        request returning it does not wait for the server to end the session. The record goes
        back to the pool empty and reconnects (with its spare) on its next checkout. Until the
        session is closed, it counts against the rollover's bounds, and its generation stays
        counted, so its lease is not revoked under it."""
        connection = conn_rec.dbapi_connection
        generation = generation_of(conn_rec)
        uses, key = self._uses, object()

        async def close() -> None:
            try:
                await close_connection(connection)
            finally:
                rollover.closed()
                if uses is not None:
                    uses.back(key)

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - a checkin outside the loop: close it here
            conn_rec.invalidate()
            return
        if not isinstance(conn_rec, _ConnectionRecord):  # pragma: no cover - not SQLAlchemy's
            conn_rec.invalidate()
            return
        rollover.closing()
        self._swaps.run(close())
        if uses is not None and generation is not None:
            uses.out(key, generation)
        conn_rec.dbapi_connection = None

    def _discarded_on_return(self) -> bool:
        """The record coming back is an overflow one QueuePool closes and forgets (its queue
        is full): a spare kept for it would wait for a checkout that never comes."""
        pool = self._target.pool
        return isinstance(pool, QueuePool) and pool.checkedin() >= pool.size()

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
        self._end_rollover()
        await self.aclose_pending()
        await close_spares(self._spares.leftover(None))
        self.detach()

    def detach(self) -> None:
        """Remove the listeners and stop following rotations (the hold is given back; spares
        still open are closed in a task)."""
        self._end_rollover()
        super().detach()
        self._swaps.drop_hold()
        self._close_later(self._spares.leftover(None))

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


def _alive(dialect: Dialect, connection: Any) -> bool:
    """Whether ``connection`` answers a ping (in the greenlet of a connect)."""
    try:
        return bool(dialect.do_ping(connection))
    except Exception:
        return False


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
