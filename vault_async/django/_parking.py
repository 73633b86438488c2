"""Connections parked between requests, closed at once when their credential is rotated away.

Django keeps a persistent connection (``CONN_MAX_AGE``) in the thread that serves requests.
Between two requests nobody uses it, so a rotation may close it from another thread; during a
request only its own thread may, and does so at the request's end. Each connection's login is
a :class:`Held`: its generation, and the ``-1`` owed to the lease engine's use count, paid
exactly once whether the connection is closed by its thread, by a rotation, or dropped by the
garbage collector with its thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable

__all__ = ["Held", "Parking"]

logger = logging.getLogger("vault_async.django")


class Held:
    """One open connection's login, already counted +1: the -1 is paid once when it goes."""

    __slots__ = ("__weakref__", "_connection", "_release", "closed", "generation", "parked")

    def __init__(
        self, connection: object, generation: int, track_use: Callable[[int, int], None]
    ) -> None:
        self.generation = generation
        self.parked = False
        self.closed = False
        """Closed by a rotation while parked: its thread must reconnect before using it."""
        self._connection = weakref.ref(connection)
        self._release = weakref.finalize(connection, _give_back, os.getpid(), track_use, generation)
        self._release.atexit = False

    def __repr__(self) -> str:
        return f"Held(generation={self.generation}, parked={self.parked}, closed={self.closed})"

    def release(self) -> None:
        """Report the connection gone (only the first call counts)."""
        self._release()

    def close_connection(self) -> None:
        connection = self._connection()
        if connection is not None:
            close = getattr(connection, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()


def _give_back(pid: int, track_use: Callable[[int, int], None], generation: int) -> None:
    # A forked child owes nothing to its parent's engine: that count is the parent's to pay.
    if os.getpid() == pid:
        track_use(generation, -1)


class Parking:
    """The parked connections of one credential; one lock orders parking, use and closing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parked: set[Held] = set()
        self.closed_parked = 0
        """Connections a rotation (or shutdown) closed while they were parked."""

    def __len__(self) -> int:
        return len(self._parked)

    def park(self, held: Held, generation: int) -> bool:
        """Park ``held`` between requests; False when it is of an older generation than
        ``generation`` (the one in force) and must be closed by its thread now."""
        with self._lock:
            if held.closed or held.generation != generation:
                return False
            held.parked = True
            self._parked.add(held)
            return True

    def unpark(self, held: Held) -> bool:
        """Take ``held`` back for use; False when a rotation closed it meanwhile."""
        with self._lock:
            held.parked = False
            self._parked.discard(held)
            return not held.closed

    def close_older(self, generation: int | None) -> int:
        """Close the parked connections of a generation other than ``generation`` (all of
        them with None); returns how many. Closing a socket is quick: done under the lock,
        so a thread taking its connection back waits for it rather than racing it."""
        with self._lock:
            victims = [h for h in self._parked if generation is None or h.generation != generation]
            for held in victims:
                self._parked.discard(held)
                held.parked = False
                held.closed = True
                held.close_connection()
                held.release()
            self.closed_parked += len(victims)
        if victims:
            logger.info(
                "django.parked_closed",
                extra={"connections": len(victims), "generation": generation},
            )
        return len(victims)
