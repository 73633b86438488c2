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
``max_connections`` leaves free, and no later than :attr:`Prewarm.timeout`: whatever is ready
by then is what the switch gets, and the rest open on demand as before. The old login
must still work while it serves: the switch also comes within :attr:`Prewarm.share` of the
time the rotation said the old credential stays usable (``LeaseEvent.previous_valid_for``),
leaving the rest to the requests still running on it, which need as long as twice the
longest recent checkout (:func:`switch_budget`). A lease that short (seconds, as in
tests) leaves no time to warm up: the switch is then immediate, as without pre-warming.

The pool's idle queue is reached through ``QueuePool._pool`` and ``_dec_overflow`` (what
``QueuePool.dispose`` itself uses): SQLAlchemy offers no public way to close one idle
connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
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
    "open_connections",
    "return_all",
    "switch_budget",
    "warm_pool",
]

logger = logging.getLogger("vault_async.sqlalchemy")

WARMING: ContextVar[bool] = ContextVar("vault_async.prewarm.warming", default=False)
"""True in the warm-up's own task: its checkouts serve no request."""

ROOM_SQL = (
    "SELECT current_setting('max_connections')::int"
    " - current_setting('superuser_reserved_connections')::int"
    " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
)
"""Connections PostgreSQL still accepts from an ordinary login."""


@dataclass(frozen=True, slots=True)
class Prewarm:
    """How a rotation prepares the new generation's connections before the switch."""

    enabled: bool = True
    """False: the pool is swapped at once and requests open the new connections."""
    concurrency: int = 4
    """Connections opened at the same time (logins cost the database CPU too)."""
    margin: int = 2
    """Connections both pools together may hold past the pool's size plus overflow."""
    timeout: float = 5.0
    """Seconds after which the switch happens with whatever is ready."""
    share: float = 0.25
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
) -> list[PoolProxiedConnection]:
    """Open connections in ``new`` while ``old`` serves; return them checked out.

    As many as ``old`` holds now, at least one and at most ``new``'s size, within the bounds
    in the module's doc, and no batch started after ``until`` (monotonic) when given. A
    failure ends the warm-up with what is ready (it is logged; the request path meets it
    again if it lasts).
    """
    target = max(1, min(new.size(), open_connections(old)))
    started = time.monotonic()
    deadline = started + config.timeout
    warm = _Warmup(old, config)
    token = WARMING.set(True)
    try:
        await warm.fill(new, target, deadline if until is None else min(deadline, until))
    except Exception as error:
        logger.warning(
            "pool.prewarm_failed",
            extra={"error_class": type(error).__name__, "ready": len(warm.ready)},
        )
    finally:
        WARMING.reset(token)
    logger.info(
        "pool.prewarmed",
        extra={
            "ready": len(warm.ready),
            "target": target,
            "old_idle_closed": warm.closed_idle,
            "seconds": round(time.monotonic() - started, 4),
        },
    )
    return warm.ready


class _Warmup:
    """The connections of one warm-up, and the bounds they are opened within."""

    def __init__(self, old: QueuePool, config: Prewarm) -> None:
        self.old = old
        self.config = config
        self.limit = old.size() + max(0, old._max_overflow) + config.margin
        self.ready: list[PoolProxiedConnection] = []
        self.room: int | None = None
        """What PostgreSQL leaves free, once the first connection could ask."""
        self.closed_idle = 0

    async def fill(self, new: QueuePool, target: int, deadline: float) -> None:
        """Open connections a batch at a time until ``target``, a bound, or ``deadline``."""
        while len(self.ready) < target and time.monotonic() < deadline:
            batch = await self._batch(target - len(self.ready))
            if batch <= 0:
                return
            results = await asyncio.gather(
                *(greenlet_spawn(new.connect) for _ in range(batch)), return_exceptions=True
            )
            opened = [r for r in results if isinstance(r, PoolProxiedConnection)]
            self.ready.extend(opened)
            if self.room is None and self.ready:
                self.room = await greenlet_spawn(_room, self.ready[0])
            elif self.room is not None:
                self.room -= len(opened)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise failures[0]

    async def _batch(self, wanted: int) -> int:
        """How many to open now: within the concurrency, PostgreSQL's room and the pool's
        limit (closing idle old connections to make room)."""
        batch = min(self.config.concurrency, wanted)
        if self.room is not None:
            batch = min(batch, self.room - 1)
        while batch > 0 and open_connections(self.old) + len(self.ready) + batch > self.limit:
            if await greenlet_spawn(_close_one_idle, self.old):
                self.closed_idle += 1
            else:
                batch -= 1
        return batch
