"""Replacing a rotated pool's connections one by one, each new one logged in before an old
one goes: the new login never costs a request a wait, whether the pool is idle or full.

A rotation used to close every idle connection at once, so the next requests each opened
their own: a burst of logins (backend start-up, SCRAM, ``SET ROLE``, the driver's set-up) on
the request path. A pre-warmed switch to a second pool fixed that only where there was room
to open the whole new generation beside the old one: a pool whose every connection is out
(requests queueing for it) had room for the margin only.

:class:`Rollover` instead opens *spare* connections with the new credential outside the
pool (through the engine's own connect function, so every ``do_connect`` listener applies),
a few at a time, and hands each to the pool in place of an old connection:

* an old connection coming back to the pool while a spare is free is closed there, and the
  spare is kept for its record, which reconnects on its next checkout by taking the spare
  (``do_connect`` returns it: no login on the request path);
* an idle old connection is replaced the same way by the rollover itself;
* an old connection coming back while no spare is free goes on serving: the old login stays
  usable until the rollover's deadline, so a waiting request is never made to wait for a
  login instead.

Bounds, checked before each spare: the connections of the pool (old and new) and the spares
together stay within the pool's own limit (size plus overflow) plus :attr:`Prewarm.margin`;
spares stay within what PostgreSQL's ``max_connections`` leaves to an ordinary login (the
first spare opens alone and asks); at most :attr:`Prewarm.concurrency` open at once; and
while idle old connections wait to be replaced, logins start :attr:`Prewarm.interval` apart
(closer only when the deadline needs it): logins cost CPU on both sides (SCRAM, the
backend's start, the driver's set-up), and a burst of them, say 50 in a fifth of a second
for an idle pool, shows in the latency of every request on the machine. Busy old
connections are replaced as fast as the bounds allow: they come back at the pace of the
pool's load, and one left at the deadline costs a request a login (pacing them too was
tried: the rollover of a busy pool of 50 then ran into its deadline, leaving logins to the
requests, with no gain in the tail).

The rollover ends when no old connection is left, or at its deadline: :attr:`Prewarm.timeout`,
and within :attr:`Prewarm.share` of the time the rotation said the old credential stays
usable (``LeaseEvent.previous_valid_for``), leaving the rest to the requests still running
on it, which need as long as twice the longest recent checkout (:func:`rollover_budget`).
From then on the old connections are stale: idle ones close at once, busy ones when they
come back, and the next checkouts log in on their own, as without pre-warming. A lease that
short (seconds, as in tests) leaves no time: the old connections are then stale at once.

Spares left unclaimed at the end are closed; a claimed one waits for its record. A rollover
that is cancelled or stopped closes the spares still opening.

One job stays here past 300 lines: the rollover, with the configuration and the deadline
arithmetic it is bounded by (the spares and the book of records are in ``_spares``).

Private SQLAlchemy API used: ``Pool._invoke_creator`` (the engine's connect function, which
runs the ``do_connect`` listeners, called without a record), ``QueuePool._max_overflow`` (the
pool's limit) and an idle record's ``dbapi_connection`` set to None before its connection is
closed (``invalidate`` clears it only after the close, which awaits the server meanwhile):
nothing public opens a connection outside a pool's accounting or takes one from an idle
record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy.pool import ConnectionPoolEntry, Pool, QueuePool
from sqlalchemy.pool.base import _ConnectionRecord
from sqlalchemy.util import greenlet_spawn

from ._spares import Book, Spare, Spares, close_connection, close_spares, generation_of

__all__ = [
    "DEFAULT_PREWARM",
    "SPARE_LOGIN",
    "WARMING",
    "HoldTimes",
    "Prewarm",
    "Rollover",
    "rollover_budget",
    "run_to_end",
]

logger = logging.getLogger("vault_async.sqlalchemy")

WARMING: ContextVar[bool] = ContextVar("vault_async.prewarm.warming", default=False)
"""True in a rollover's own tasks: their connects open spares and serve no request."""

SPARE_LOGIN: ContextVar[list[tuple[str | None, int]] | None] = ContextVar(
    "vault_async.prewarm.spare_login", default=None
)
"""In a spare's connect: where ``do_connect`` notes the login and generation it used."""

ROOM_SQL = (
    "SELECT current_setting('max_connections')::int"
    " - current_setting('superuser_reserved_connections')::int"
    " - coalesce(current_setting('reserved_connections', true), '0')::int"  # PostgreSQL 16+
    " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
)
"""Connections PostgreSQL still accepts from an ordinary login."""


@dataclass(frozen=True, slots=True)
class Prewarm:
    """How a rotation prepares the new generation's connections before the old ones go."""

    enabled: bool = True
    """False: the pool is swapped at once and requests open the new connections."""
    concurrency: int = 8
    """Spares opened at the same time (logins cost the database CPU too)."""
    margin: int | None = None
    """Connections the pool and the spares together may hold past the pool's size plus
    overflow; None: a tenth of that limit, at least 2. Spares open one per free place, so
    the margin sets how many old connections are being replaced at once."""
    interval: float = 0.04
    """Least seconds between two spares' logins while idle old connections wait to be
    replaced (0: as fast as the other bounds allow), or less when the deadline needs it: a
    login costs CPU on both sides, and a burst of them shows in the latency of every request
    on the machine."""
    timeout: float = 5.0
    """Seconds after which the connections not yet replaced are stale."""
    share: float = 0.8
    """Part of the time the replaced credential stays usable (``LeaseEvent``'s
    ``previous_valid_for``) the rollover may take: the requests still running on the old
    login need the rest."""

    def __post_init__(self) -> None:
        if self.concurrency < 1 or (self.margin or 0) < 0 or self.timeout <= 0:
            raise ValueError("Prewarm needs concurrency >= 1, margin >= 0 and timeout > 0")
        if self.interval < 0:
            raise ValueError("Prewarm.interval must be >= 0")
        if not 0 <= self.share <= 1:
            raise ValueError("Prewarm.share must be between 0 and 1")


    def margin_for(self, limit: int) -> int:
        """The margin past a pool whose size plus overflow is ``limit``."""
        return max(2, limit // 10) if self.margin is None else self.margin


DEFAULT_PREWARM = Prewarm()


class HoldTimes:
    """How long recent checkouts kept their connection: the longest of the last ``size``."""

    def __init__(self, size: int = 200) -> None:
        self._recent: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._recent.append(seconds)

    def __len__(self) -> int:
        return len(self._recent)

    def longest(self) -> float:
        return max(self._recent, default=0.0)


def rollover_budget(config: Prewarm, valid_for: float, longest_hold: float) -> float:
    """Seconds a rollover may take when the old login stays usable ``valid_for`` seconds.

    At most :attr:`Prewarm.share` of that time, and never so long that a request checking
    out an old connection just before the end, and holding it twice as long as the longest
    recent checkout, would outlive the old login (0: the old connections are stale at once).
    """
    return max(0.0, min(config.share * valid_for, valid_for - 2 * longest_hold))


async def run_to_end(step: Coroutine[object, object, None]) -> None:
    """Run ``step`` to its end even when the caller is cancelled meanwhile (the cancellation
    is raised afterwards): a clean-up cut in the middle would leave connections open that
    nothing closes."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError


def _room(connection: Any) -> int:
    """What PostgreSQL's ``max_connections`` leaves free (run in a greenlet)."""
    cursor = connection.cursor()
    try:
        cursor.execute(ROOM_SQL)
        row = cursor.fetchone()
    finally:
        cursor.close()
        # The driver began a transaction for the query: a spare waits for its record outside
        # any (idle_in_transaction_session_timeout, and psycopg's set-up on connect).
        connection.rollback()
    return int(row[0]) if row is not None else 0


class Rollover:
    """One rotation's replacement of a pool's old connections by spares.

    ``current`` gives the generation in force, ``serves`` whether an older generation may
    still serve (until the end of the rollover: then none may). Run :meth:`run`; the
    binding's checkin listener calls :meth:`returned` for each old connection coming back.
    """

    def __init__(
        self,
        pool: Callable[[], Pool],
        config: Prewarm,
        book: Book,
        spares: Spares,
        current: Callable[[], int],
        serves: Callable[[int], bool],
    ) -> None:
        self._pool = pool
        self.config = config
        self.book = book
        self.spares = spares
        self._current = current
        self._serves = serves
        first = pool()
        limit = first.size() + max(0, first._max_overflow) if isinstance(first, QueuePool) else 0
        if not isinstance(first, QueuePool) or first._max_overflow < 0:  # no limit of its own
            limit = max(limit, len(book.records()))
        self.limit = limit + config.margin_for(limit)
        self.room: int | None = None
        """What PostgreSQL leaves free, once the first spare could ask."""
        self.replaced = 0
        self.passes = 0
        """Looks the rollover took at the pool (each one a pass over its records)."""
        self.target = 0
        self._opening: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopped = False
        self._next_start = 0.0
        self._closing = 0
        self._timed = False

    def old(self) -> list[ConnectionPoolEntry]:
        """The records holding a connection of an older generation than the one in force."""
        now = self._current()
        return [r for r in self.book.records() if generation_of(r) not in (None, now)]

    def left(self) -> int:
        """Old connections still to replace: in the pool, or spares kept for a record that
        has not reconnected since a later rotation."""
        return len(self.old()) + self.spares.claimed_before(self._current())

    def returned(self, record: ConnectionPoolEntry) -> bool:
        """An old connection is coming back: True if a spare takes its place (the caller
        closes it, between :meth:`closing` and :meth:`closed`); else it goes on serving."""
        if self._stopped or not self.spares.claim(record, self._current()):
            return False
        self.replaced += 1
        return True

    def closing(self) -> None:
        """An old connection's session is being closed outside the rollover: it counts
        against the bounds until :meth:`closed`."""
        self._closing += 1

    def closed(self) -> None:
        """That session is gone: room for the next spare."""
        self._closing -= 1
        self._freed(1)
        self.poke()

    def quiet(self) -> bool:
        """No spare is opening, none is due to start: nothing will wake the rollover but a
        poke or its deadline."""
        return not self._opening and not self._timed

    def _freed(self, count: int) -> None:
        """``count`` sessions closed (old connections, unneeded spares): PostgreSQL has that
        much more room."""
        if self.room is not None:
            self.room += count

    def poke(self) -> None:
        """Look again now (a rotation changed the generation in force or the deadline)."""
        self._wake.set()

    def stop(self) -> None:
        """End the rollover now (at shutdown): what is left is stale."""
        self._stopped = True
        self._wake.set()

    async def run(self, deadline: Callable[[], float]) -> None:
        """Replace old connections until none is left, or ``deadline()`` (monotonic, asked
        again after each step: a later rotation may bring it closer)."""
        started = time.monotonic()
        self.target = self.left()
        try:
            while not self._stopped and time.monotonic() < deadline():
                # Cleared before the step, not after: a spare that opens while the step awaits
                # must wake the next one.
                self._wake.clear()
                self.passes += 1
                now = self._current()
                await self._close(self.spares.stale_free(now))
                if not self.left():
                    break
                await self.close_idle()
                replaced = self.spares.reclaim(now)
                self.replaced += len(replaced)
                await self._close(replaced)
                left = self.left()
                if not left:
                    break
                end = deadline()
                next_start = self._open_spares(left, end)
                self._timed = next_start is not None
                wake_at = end if next_start is None else min(end, next_start)
                with contextlib.suppress(TimeoutError):  # the loop's test sees the deadline
                    await asyncio.wait_for(self._wake.wait(), max(0.0, wake_at - time.monotonic()))
        except BaseException:
            self._stopped = True  # cancelled: nothing waits for the connects still running
            raise
        finally:
            await run_to_end(self._finish(deadline, started))

    async def _finish(self, deadline: Callable[[], float], started: float) -> None:
        """Connects cut in the middle of their handshake leave the driver an error nobody
        retrieves: those still running are let finish (then closed as unneeded) unless the
        rollover was stopped or its deadline passed. Then the unneeded spares close."""
        if not self._stopped and self._opening:
            await asyncio.wait(
                list(self._opening), timeout=max(0.0, deadline() - time.monotonic())
            )
        await self._cancel_opening()
        await close_spares(self.spares.leftover(self._current()))
        logger.info(
            "pool.prewarmed",
            extra={
                "replaced": self.replaced,
                "old": self.target,
                "seconds": round(time.monotonic() - started, 4),
                "passes": self.passes,
            },
        )

    async def _close(self, spares: list[Spare]) -> None:
        self._freed(len(spares))
        await close_spares(spares)

    async def close_idle(self, old: list[ConnectionPoolEntry] | None = None) -> None:
        """Close the idle old connections: those whose generation may no longer serve at
        once, the others as free spares take their place.

        The record lets go of its connection before it is closed: a checkout taking the
        record meanwhile reconnects it (with its spare) instead of using a closing one.
        """
        now = self._current()
        for record in self.old() if old is None else old:
            connection = record.dbapi_connection
            # A record taken by a checkout still pinging it is not idle: ``in_use`` is set as
            # soon as the pool hands it out, the checkout event only after the pre-ping.
            if not self.book.idle(record) or connection is None or record.in_use:
                continue
            generation = generation_of(record)
            if generation is not None and self._serves(generation):
                if not self.spares.claim(record, now):
                    continue
                self.replaced += 1
            if isinstance(record, _ConnectionRecord):  # what every pool's records are
                record.dbapi_connection = None
            self._freed(1)
            await close_connection(connection)

    def _open_spares(self, old: int, end: float) -> float | None:
        """Start opening spares: one per old connection not yet covered, within bounds and
        :attr:`Prewarm.interval` apart (closer when ``end``, the deadline, needs it). Returns
        when the next may start, if one is held back only by the interval."""
        wanted = old - self.spares.free_of(self._current()) - len(self._opening)
        # Every record slot of the pool (connected, connecting for a request, or waiting for
        # its claimed spare) holds at most one connection; free spares and connects under way
        # come on top.
        pool = self._pool()  # the engine's pool in force (the application may dispose)
        if isinstance(pool, QueuePool):
            slots = pool.size() + pool.overflow()
            held = max(slots, len(self.book.records())) + len(self.spares.free)
        else:
            held = len(self.book.records()) + len(self.spares)
        held += len(self._opening) + self._closing
        batch = min(wanted, self.config.concurrency - len(self._opening), self.limit - held)
        if self.room is None:
            batch = min(batch, 1 - len(self._opening))  # the first opens alone and asks
        else:
            batch = min(batch, self.room - 1)
        now = time.monotonic()
        interval = min(self.config.interval, 0.8 * max(0.0, end - now) / max(1, old))
        if not any(self.book.idle(r) and not r.in_use for r in self.old()):
            interval = 0.0  # only busy ones left: the pool's load paces their replacement
        if batch > 0 and interval > 0:
            if now < self._next_start:
                return self._next_start
            self._next_start = now + interval
            self._start(1)
            return self._next_start if batch > 1 else None
        self._start(batch)
        return None

    def _start(self, batch: int) -> None:
        for _ in range(max(0, batch)):
            task = asyncio.get_running_loop().create_task(self._open_one())
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

    async def _open_one(self) -> None:
        WARMING.set(True)  # this task's own context: its connect opens a spare
        login: list[tuple[str | None, int]] = []
        SPARE_LOGIN.set(login)
        try:
            connection = await greenlet_spawn(self._pool()._invoke_creator, None)
        except Exception as error:
            # The old connections are stale from now on: the request path logs in and meets
            # the failure again if it lasts (a refused login then forces a rotation).
            logger.warning("pool.prewarm_failed", extra={"error_class": type(error).__name__})
            self.stop()
            return
        username, generation = login[-1] if login else (None, self._current())
        spare = Spare(connection, username, generation)
        try:
            if self.room is None:
                self.room = await greenlet_spawn(_room, connection)
            else:
                self.room -= 1
        except Exception as error:
            logger.warning("pool.prewarm_failed", extra={"error_class": type(error).__name__})
            await close_spares([spare])
            self.stop()
            return
        except BaseException:
            await close_spares([spare])
            raise
        self.spares.free.append(spare)
        self._wake.set()

    async def _cancel_opening(self) -> None:
        """Cancel the spares still opening (a cancelled connect leaves no session)."""
        tasks = list(self._opening)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
