"""A managed database credential read and reported from plain threads.

The lease engine runs on one event loop; a sync pool works on threads of its own. The view
here connects them:

* :meth:`SyncCredentials.current` reads one immutable :class:`SyncCredential` (username,
  password, generation), replaced whole on the loop when the credential rotates: a read from
  any thread is one attribute load, without a lock, and never mixes two credentials;
* :meth:`SyncCredentials.force_rotate` runs the engine's rotation on its loop and blocks the
  caller until the new credential is in force (racing callers share one rotation there);
* :meth:`SyncCredentials.track_use` appends the +1/-1 to one FIFO that the loop drains, where
  the engine's bookkeeping lives (one wake-up of the loop per batch, not per call);
* :meth:`SyncCredentials.subscribe` calls back, on the loop's thread, with each new credential.

Use counts from threads arrive late, so a rotation could otherwise find no connection of the
old generation counted while a thread has just checked one out. Once a pool reports, the view
therefore holds one count of its own on the generation in force, and moves it at a rotation:
the new generation is counted at once, the old one's count is dropped through the same FIFO,
*after* the snapshot changed. A thread that counted +1 and then still read the old generation
had its +1 queued before that callback, so the old lease waits for its -1; a thread that read
the new generation treats its connection as stale (the sync engine binding counts first, then
checks). The engine thus revokes a replaced lease only after every connection of it is back.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .lifecycle import LeaseEvent, ManagedSecret

__all__ = [
    "StaticSyncCredentials",
    "SyncCredential",
    "SyncCredentialSource",
    "SyncCredentials",
]

logger = logging.getLogger("vault_async.sync")

SyncCallback = Callable[["SyncCredential"], None]


@dataclass(frozen=True, slots=True)
class SyncCredential:
    """The login new connections use; ``generation`` grows by one at each rotation."""

    username: str | None
    password: str | None = field(repr=False)
    generation: int


class SyncCredentialSource(Protocol):
    """What a sync pool binding needs: :class:`SyncCredentials` and plain mode both give it."""

    def current(self) -> SyncCredential: ...

    def force_rotate(
        self, reason: str, timeout: float = 30.0, *, generation: int | None = None
    ) -> SyncCredential: ...

    def track_use(self, generation: int, delta: int) -> None: ...

    def subscribe(self, callback: SyncCallback) -> Callable[[], None]: ...


class SyncCredentials:
    """A thread-safe view of one :class:`ManagedSecret` whose engine runs on ``loop``.

    Create it on the loop's thread, once the handle holds its first credential.
    """

    def __init__(self, handle: ManagedSecret, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = handle
        self._loop = loop
        self._snapshot = _snapshot_of(handle)
        self._callbacks: tuple[SyncCallback, ...] = ()
        self._callbacks_lock = threading.Lock()
        self._pinned: int | None = None
        self._uses: collections.deque[tuple[int, int]] = collections.deque()
        self._drain_scheduled = False
        self._unsubscribe: Callable[[], None] | None = handle.subscribe(self._on_event)

    def __repr__(self) -> str:
        snapshot = self._snapshot
        return (
            f"SyncCredentials(secret={self._handle.name!r}, username={snapshot.username!r}, "
            f"generation={snapshot.generation})"
        )

    @property
    def name(self) -> str:
        """The managed secret's name (``database/creds/<role>``)."""
        return self._handle.name

    # -- any thread ------------------------------------------------------------------------

    def current(self) -> SyncCredential:
        """The credential in force (an immutable snapshot; no lock taken)."""
        return self._snapshot

    def force_rotate(
        self, reason: str, timeout: float = 30.0, *, generation: int | None = None
    ) -> SyncCredential:
        """Replace the credential now and return the new one; blocks up to ``timeout`` s.

        ``generation`` is the one that failed: once replaced, the current credential is
        returned without a rotation. Not from the engine's own thread (it would wait for
        itself).
        """
        if _running_on(self._loop):
            raise RuntimeError("force_rotate blocks: call it from a thread of your own")
        future = asyncio.run_coroutine_threadsafe(
            self._rotate(reason, generation), self._loop
        )
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"{self.name}: no new credential after {timeout:g} s") from None

    def track_use(self, generation: int, delta: int) -> None:
        """A pool checked out (+1) or returned (-1) a connection of ``generation``.

        Never blocks, never raises: the update is queued onto the engine's loop, in order.
        """
        self._uses.append((generation, delta))  # deque.append is atomic
        if not self._drain_scheduled:
            self._drain_scheduled = True
            # RuntimeError: the engine has stopped; it revoked everything, nothing to count.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._drain_uses)

    def subscribe(self, callback: SyncCallback) -> Callable[[], None]:
        """Call ``callback(new_credential)`` after each rotation, on the engine's thread
        (keep it short: the engine waits for it). Returns the unsubscribe function."""
        with self._callbacks_lock:
            self._callbacks = (*self._callbacks, callback)

        def unsubscribe() -> None:
            with self._callbacks_lock:
                self._callbacks = tuple(c for c in self._callbacks if c is not callback)

        return unsubscribe

    # -- the loop's thread -----------------------------------------------------------------

    def close(self) -> None:
        """Stop following the handle (the engine is shutting down)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def _rotate(self, reason: str, generation: int | None) -> SyncCredential:
        await self._handle.force_rotate(reason, generation=generation)
        self._refresh()
        return self._snapshot

    def _on_event(self, event: LeaseEvent) -> None:
        self._refresh()

    def _refresh(self) -> None:
        """Publish the handle's credential when its generation moved on."""
        handle = self._handle
        if handle.current is None or handle.generation == self._snapshot.generation:
            return
        self._snapshot = snapshot = _snapshot_of(handle)
        self._move_pin(snapshot.generation)
        for callback in self._callbacks:
            try:
                callback(snapshot)
            except Exception as error:
                logger.warning(
                    "sync.callback_failed",
                    extra={"generation": snapshot.generation, "error_class": type(error).__name__},
                )

    def _drain_uses(self) -> None:
        # The flag drops first: a report appended from now on schedules another drain.
        self._drain_scheduled = False
        uses = self._uses
        while uses:
            generation, delta = uses.popleft()
            if self._pinned is None:
                # The first report: from now on the engine waits for this pool's connections.
                self._pinned = self._snapshot.generation
                self._handle.track_use(self._pinned, 1)
            self._handle.track_use(generation, delta)

    def _move_pin(self, generation: int) -> None:
        old = self._pinned
        if old is None or old == generation:
            return
        self._pinned = generation
        self._handle.track_use(generation, 1)
        # Appended after the new snapshot is visible: every +1 a thread appended while it still
        # read the old generation is applied before this -1.
        self._uses.append((old, -1))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain_uses)


class StaticSyncCredentials:
    """A credential that never changes, for a sync binding in plain mode."""

    def __init__(self, username: str | None, password: str | None) -> None:
        self._credential = SyncCredential(username, password, 0)

    def __repr__(self) -> str:
        return f"StaticSyncCredentials(username={self._credential.username!r})"

    def current(self) -> SyncCredential:
        return self._credential

    def force_rotate(
        self, reason: str, timeout: float = 30.0, *, generation: int | None = None
    ) -> SyncCredential:
        """Nothing to rotate; the same credential is returned."""
        return self._credential

    def track_use(self, generation: int, delta: int) -> None:
        """Nothing is ever revoked, so nothing is counted."""

    def subscribe(self, callback: SyncCallback) -> Callable[[], None]:
        return lambda: None


def _snapshot_of(handle: ManagedSecret) -> SyncCredential:
    lease = handle.current
    if lease is None:
        raise RuntimeError(f"{handle.name}: no credential yet")
    return SyncCredential(
        lease.data.get("username"), lease.data.get("password"), handle.generation
    )


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
