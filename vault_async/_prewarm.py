"""Opening a rotated pool's successor before the switch: the new generation's connections,
logged in and set up while the old ones keep serving.

A rotation used to close every idle connection at once, so the next requests each opened
their own: a burst of logins (backend start-up, SCRAM, ``SET ROLE``, the driver's set-up) on
the request path. :func:`warm_pool` instead opens up to the pool's size of connections in
the pool that will replace the current one, a few at a time, and hands them back checked
out; the binding then switches the engine to that pool, returns them to it (idle, ready)
and closes the old pool's idle connections, while the old ones still out close as they come
back.

Bounds, checked before each connection: no more than the pool's own limit (size plus
overflow) plus :attr:`Prewarm.margin` connections of both pools together (an idle old
connection is closed to make room when there is none), no more than PostgreSQL's
``max_connections`` leaves free to an ordinary login (the first connection opens alone and
asks), and no later than :attr:`Prewarm.timeout`: whatever is ready
by then is what the switch gets, and the rest open on demand as before. The old login
must still work while it serves: the switch also comes within :attr:`Prewarm.share` of the
time the rotation said the old credential stays usable (``LeaseEvent.previous_valid_for``),
leaving the rest to the requests still running on it, which need as long as twice the
longest recent checkout (:func:`switch_budget`). A lease that short (seconds, as in
tests) leaves no time to warm up: the switch is then immediate, as without pre-warming.

A warm-up that cannot finish leaves nothing behind: the connects still running at the
deadline are cancelled (a database that stops answering holds neither the swap nor the
shutdown), and a warm-up that is cancelled, or whose switch no longer applies,
is aborted (:meth:`Warmup.abort`): its connections are closed with the pool that would
have replaced the current one.

The pool's idle queue is reached through ``QueuePool._pool`` (as ``QueuePool.dispose``
reaches it) and ``_dec_overflow`` (what ``QueuePool`` calls when a connection it counted
closes; ``dispose`` instead resets the whole count): SQLAlchemy offers no public way to
close one idle connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy.pool import PoolProxiedConnection, QueuePool
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util import queue as sqla_queue

__all__ = [
    "DEFAULT_PREWARM",
    "WARMING",
    "HoldTimes",
    "Prewarm",
    "Warmup",
    "open_connections",
    "return_all",
    "run_to_end",
    "switch_budget",
    "warm_pool",
]

logger = logging.getLogger("vault_async.sqlalchemy")

WARMING: ContextVar[bool] = ContextVar("vault_async.prewarm.warming", default=False)
"""True in the warm-up's own task: its checkouts serve no request."""

ROOM_SQL = (
    "SELECT current_setting('max_connections')::int"
    " - current_setting('superuser_reserved_connections')::int"
    " - coalesce(current_setting('reserved_connections', true), '0')::int"  # PostgreSQL 16+
    " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
)
"""Connections PostgreSQL still accepts from an ordinary login."""


@dataclass(frozen=True, slots=True)
class Prewarm:
    """How a rotation prepares the new generation's connections before the switch."""

    enabled: bool = True
    """False: the pool is swapped at once and requests open the new connections."""
    concurrency: int = 8
    """Connections opened at the same time (logins cost the database CPU too)."""
    margin: int = 2
    """Connections both pools together may hold past the pool's size plus overflow."""
    timeout: float = 5.0
    """Seconds after which the switch happens with whatever is ready."""
    share: float = 0.5
    """Part of the time the replaced credential stays usable (``LeaseEvent``'s
    ``previous_valid_for``) the warm-up may take: the requests still running on the old
    login need the rest."""

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.margin < 0 or self.timeout <= 0:
            raise ValueError("Prewarm needs concurrency >= 1, margin >= 0 and timeout > 0")
        if not 0 <= self.share <= 1:
            raise ValueError("Prewarm.share must be between 0 and 1")


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


def switch_budget(config: Prewarm, valid_for: float, longest_hold: float) -> float:
    """Seconds a warm-up may take when the old login stays usable ``valid_for`` seconds.

    At most :attr:`Prewarm.share` of that time, and never so long that a request checking
    out an old connection just before the switch, and holding it twice as long as the
    longest recent checkout, would outlive the old login (0: switch at once).
    """
    return max(0.0, min(config.share * valid_for, valid_for - 2 * longest_hold))


def open_connections(pool: QueuePool) -> int:
    """Connections ``pool`` holds now, idle or checked out (or being opened)."""
    return pool.checkedin() + pool.checkedout()


def _close_one_idle(pool: QueuePool) -> bool:
    """Close one idle connection of ``pool`` (run in a greenlet); False if none is idle."""
    try:
        record = pool._pool.get(False)
    except sqla_queue.Empty:
        return False
    try:
        record.close()
    finally:
        pool._dec_overflow()
    return True


def _room(connection: PoolProxiedConnection) -> int:
    """What PostgreSQL's ``max_connections`` leaves free (run in a greenlet)."""
    cursor = connection.cursor()
    try:
        cursor.execute(ROOM_SQL)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return int(row[0]) if row is not None else 0


async def return_all(connections: list[PoolProxiedConnection]) -> None:
    """Return checked-out ``connections`` to their pool."""
    for connection in connections:
        await greenlet_spawn(connection.close)


async def warm_pool(
    old: QueuePool, new: QueuePool, config: Prewarm, *, until: float | None = None
) -> Warmup:
    """Start opening connections in ``new`` while ``old`` serves; return at the deadline.

    As many as ``old`` holds now, at least one and at most ``new``'s size, within the bounds
    in the module's doc. The deadline is :attr:`Prewarm.timeout`, or ``until`` (monotonic)
    when sooner: the returned :class:`Warmup`'s ``ready`` connections are the ones open by
    then, checked out; the connects still running then are cancelled. Cancelled itself, it
    closes what it opened (:meth:`Warmup.abort`). A failure ends the warm-up with what is
    ready (it is logged; the request path meets it again if it lasts).
    """
    target = max(1, min(new.size(), open_connections(old)))
    deadline = time.monotonic() + config.timeout
    if until is not None:
        deadline = min(deadline, until)
    warm = Warmup(old, new, config, target)
    try:
        await warm.start(deadline)
    except BaseException:
        await run_to_end(warm.abort())
        raise
    return warm


async def run_to_end(step: Coroutine[object, object, None]) -> None:
    """Run ``step`` to its end even when the caller is cancelled meanwhile (the cancellation
    is raised afterwards): a clean-up or a hand-over cut in the middle would leave
    connections checked out of a pool nothing closes."""
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


class Warmup:
    """The connections of one warm-up, and the bounds they are opened within."""

    def __init__(self, old: QueuePool, new: QueuePool, config: Prewarm, target: int) -> None:
        self.old = old
        self.new = new
        self.config = config
        self.target = target
        self.limit = old.size() + max(0, old._max_overflow) + config.margin
        self.ready: list[PoolProxiedConnection] = []
        """Open, set up and checked out, in the order they became ready."""
        self.room: int | None = None
        """What PostgreSQL leaves free, once the first connection could ask."""
        self.closed_idle = 0
        self._stop = False
        self._task: asyncio.Task[None] | None = None
        self._started = time.monotonic()

    async def start(self, deadline: float) -> None:
        """Fill in a task of its own until it is done or ``deadline``; the connects still
        running then are cancelled."""
        self._task = asyncio.get_running_loop().create_task(self._fill())
        await asyncio.wait({self._task}, timeout=max(0.0, deadline - time.monotonic()))
        self._stop = True  # no batch starts after the deadline
        await self._cancel_fill()
        logger.info(
            "pool.prewarmed",
            extra={
                "ready": len(self.ready),
                "target": self.target,
                "old_idle_closed": self.closed_idle,
                "seconds": round(time.monotonic() - self._started, 4),
            },
        )

    async def abort(self) -> None:
        """Give the warm-up up: stop its connects, close its connections and its pool."""
        self._stop = True
        await self._cancel_fill()
        ready, self.ready = self.ready, []
        await return_all(ready)
        await greenlet_spawn(self.new.dispose)

    async def _cancel_fill(self) -> None:
        """Cancel the connects still running and wait for them (a cancelled connect gives
        its slot back to the pool; one that completed is already in ``ready``)."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.wait({self._task})

    async def _fill(self) -> None:
        WARMING.set(True)  # this task's own context: its checkouts serve no request
        try:
            while len(self.ready) < self.target and not self._stop:
                batch = await self._batch(self.target - len(self.ready))
                if batch <= 0:
                    return
                before = len(self.ready)
                results = await asyncio.gather(
                    *(self._open_one() for _ in range(batch)), return_exceptions=True
                )
                opened = len(self.ready) - before
                if self.room is None and self.ready:
                    self.room = await greenlet_spawn(_room, self.ready[0])
                elif self.room is not None:
                    self.room -= opened
                failures = [r for r in results if isinstance(r, BaseException)]
                if failures:
                    raise failures[0]
        except Exception as error:
            logger.warning(
                "pool.prewarm_failed",
                extra={"error_class": type(error).__name__, "ready": len(self.ready)},
            )

    async def _open_one(self) -> None:
        """Open one connection; it joins ``ready`` as soon as it is open (a cancellation of
        the others then cannot lose it)."""
        self.ready.append(await greenlet_spawn(self.new.connect))

    async def _batch(self, wanted: int) -> int:
        """How many to open now: within the concurrency, PostgreSQL's room (the first one
        opens alone: it asks how many more PostgreSQL accepts) and the pool's limit. Past
        the limit, one idle old connection is closed for each one opened, but never the last
        idle one: a request finding none would log in on its own path."""
        batch = min(self.config.concurrency, wanted)
        batch = 1 if self.room is None else min(batch, self.room - 1)
        excess = open_connections(self.old) + len(self.ready) + batch - self.limit
        for _ in range(max(0, excess)):
            if self.old.checkedin() <= 1 or not await greenlet_spawn(_close_one_idle, self.old):
                break
            self.closed_idle += 1
        return min(batch, self.limit - open_connections(self.old) - len(self.ready))
