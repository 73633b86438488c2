"""Spare connections: opened outside a pool with the new credential, each kept for the pool
record whose old connection it replaces (see ``_prewarm``), and the book of the records
that hold a connection.

A record whose old connection was closed reconnects on its next checkout; ``do_connect``
then returns the spare kept for it (:meth:`Spares.take`) instead of logging in.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import greenlet_spawn

__all__ = [
    "GENERATION_KEY",
    "Book",
    "Spare",
    "Spares",
    "close_connection",
    "close_quietly",
    "close_spares",
    "generation_of",
]

logger = logging.getLogger("vault_async.sqlalchemy")

GENERATION_KEY = "vault_async.generation"
"""Key in ``connection_record.info`` holding the generation a connection was made with."""


def generation_of(record: ConnectionPoolEntry) -> int | None:
    """The credential generation ``record``'s connection was made with (None: unknown)."""
    generation = record.info.get(GENERATION_KEY)
    return generation if isinstance(generation, int) else None


@dataclass(slots=True, eq=False)
class Spare:
    """A connection opened outside the pool with one generation's credential."""

    connection: Any
    """The driver's connection (SQLAlchemy's adapted DBAPI connection)."""
    username: str | None
    generation: int


@dataclass
class Spares:
    """Spare connections: free ones, and those kept for a record that will reconnect."""

    free: deque[Spare] = field(default_factory=deque)
    claimed: dict[ConnectionPoolEntry, Spare] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.free) + len(self.claimed)

    def free_of(self, generation: int) -> int:
        return sum(1 for spare in self.free if spare.generation == generation)

    def claimed_before(self, generation: int) -> int:
        """Claimed spares of an older generation than ``generation``: old connections too."""
        return sum(1 for spare in self.claimed.values() if spare.generation != generation)

    def _pop_free(self, generation: int) -> Spare | None:
        for spare in self.free:
            if spare.generation == generation:
                self.free.remove(spare)
                return spare
        return None

    def claim(self, record: ConnectionPoolEntry, generation: int) -> bool:
        """Keep a free spare of ``generation`` for ``record``; False if there is none."""
        spare = self._pop_free(generation)
        if spare is None:
            return False
        self.claimed[record] = spare
        return True

    def release(self, record: ConnectionPoolEntry) -> None:
        """The spare kept for ``record`` is free again (the record is going away)."""
        spare = self.claimed.pop(record, None)
        if spare is not None:
            self.free.append(spare)

    def reclaim(self, generation: int) -> list[Spare]:
        """Give the records whose kept spare is older a free one of ``generation`` instead,
        as long as there are free ones; return the older spares (to close)."""
        replaced = []
        for record, spare in list(self.claimed.items()):
            if spare.generation == generation:
                continue
            newer = self._pop_free(generation)
            if newer is None:
                break
            self.claimed[record] = newer
            replaced.append(spare)
        return replaced

    def take(self, record: ConnectionPoolEntry, generation: int) -> Spare | None:
        """The spare kept for ``record``, else a free one, of ``generation`` (None: log in)."""
        spare = self.claimed.pop(record, None)
        if spare is not None and spare.generation == generation:
            return spare
        if spare is not None:
            self.free.append(spare)  # older: closed by the rollover under way, or at its end
        return self._pop_free(generation)

    def unclaim(self) -> None:
        """The claimed spares are free again (their records are gone)."""
        self.free.extend(self.claimed.values())
        self.claimed.clear()

    def stale_free(self, generation: int) -> list[Spare]:
        """Remove and return the free spares not of ``generation``."""
        stale = [spare for spare in self.free if spare.generation != generation]
        for spare in stale:
            self.free.remove(spare)
        return stale

    def leftover(self, generation: int | None) -> list[Spare]:
        """Remove and return every free spare, and the claimed ones not of ``generation``
        (all of them for None)."""
        gone = list(self.free)
        self.free.clear()
        for record, spare in list(self.claimed.items()):
            if spare.generation != generation:
                del self.claimed[record]
                gone.append(spare)
        return gone


class Book:
    """The records of a binding's pools that hold a connection, and which of them are idle.

    Kept by the binding's checkout and checkin listeners (the pool's own queue is private).
    Weak: a record of a disposed pool goes with its pool.
    """

    def __init__(self) -> None:
        self._idle: WeakKeyDictionary[ConnectionPoolEntry, bool] = WeakKeyDictionary()

    def seen(self, record: ConnectionPoolEntry, idle: bool) -> None:
        self._idle[record] = idle

    def forget(self, record: ConnectionPoolEntry) -> None:
        self._idle.pop(record, None)

    def records(self) -> list[ConnectionPoolEntry]:
        """Those holding a connection now."""
        return [r for r in list(self._idle) if r.dbapi_connection is not None]

    def idle(self, record: ConnectionPoolEntry) -> bool:
        return self._idle.get(record, False)

    def clear(self) -> None:
        """Forget every record (their pool was disposed)."""
        self._idle.clear()


def close_quietly(connection: Any) -> None:
    """Close a driver connection (in a greenlet); a connection already gone is no error."""
    try:
        connection.close()
    except Exception as error:
        logger.debug("pool.spare_close_failed", extra={"error_class": type(error).__name__})


CLOSE_TIMEOUT = 2.0
"""Seconds a connection's close waits for the server to end the session before the
connection is dropped (a stopped or cut-off server would hold a clean-up for ever)."""


async def close_connection(connection: Any) -> None:
    """Close a driver connection from the event loop, within :data:`CLOSE_TIMEOUT`."""
    try:
        await asyncio.wait_for(greenlet_spawn(close_quietly, connection), CLOSE_TIMEOUT)
    except TimeoutError:  # the driver dropped the connection when its close was cancelled
        logger.debug("pool.close_timed_out", extra={"seconds": CLOSE_TIMEOUT})


async def close_spares(spares: list[Spare]) -> None:
    for spare in spares:
        await close_connection(spare.connection)
