"""One lease engine per Vault database role and process, started once, stopped at exit.

Aliases naming the same (mount, role, static) share one engine, so one login and one lease.
An engine starts on the first connection of its alias, or from the app's ``ready()``
(``vault_async.django`` in ``INSTALLED_APPS``). :func:`shutdown` (atexit, and SIGTERM when the
app installed its handler) closes the parked connections, then stops each engine, which
revokes its leases and a token it logged in for. A process forked from one with engines
(a pre-loading server) starts its own: the parent's belong to the parent.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field

from .. import sync
from .._sync_credentials import SyncCredential, SyncCredentialSource
from ._options import VaultDbOptions
from ._parking import Parking

__all__ = ["Entry", "Registry", "registry"]

logger = logging.getLogger("vault_async.django")


Starter = Callable[[VaultDbOptions], AbstractContextManager[SyncCredentialSource]]


@dataclass
class Stats:
    """Counters of one engine's connections (all aliases on it, every thread)."""

    connects: int = 0
    login_retries: int = 0
    stale_closed: int = 0
    """Closed by their own thread at a request's end or start, for an older generation."""


@dataclass(eq=False)
class Entry:
    """A running engine: its credentials, its parked connections, its counters."""

    options: VaultDbOptions
    credentials: SyncCredentialSource
    parking: Parking = field(default_factory=Parking)
    stats: Stats = field(default_factory=Stats)
    stopped: bool = False
    pid: int = field(default_factory=os.getpid)
    _stats_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    """The process that started the engine: a forked child's connections of it are the
    parent's sockets, to drop without closing."""

    @property
    def inherited(self) -> bool:
        return self.pid != os.getpid()

    def obsolete(self, generation: int) -> bool:
        """Whether a connection of ``generation`` must go: rotated away, or engine stopped."""
        return self.stopped or generation != self.credentials.current().generation

    def count_stale_closed(self) -> None:
        """One more connection closed by its thread for an older generation (any thread)."""
        with self._stats_lock:
            self.stats.stale_closed += 1

    def on_rotated(self, credential: SyncCredential) -> None:
        """Runs on the engine's thread: hand the closing to a thread of its own."""
        threading.Thread(
            target=self.parking.close_older, args=(credential.generation,),
            name="vault-django-rotated", daemon=True,
        ).start()


def start_sync_runtime(options: VaultDbOptions) -> AbstractContextManager[SyncCredentialSource]:
    """The sync runtime's credentials for ``options`` (client and login from the environment)."""
    return _running(options)


@contextmanager
def _running(options: VaultDbOptions) -> Iterator[SyncCredentialSource]:
    with sync.start(
        db_role=options.role, db_mount=options.mount, static=options.static,
        startup_timeout=options.startup_timeout,
    ) as runtime:
        yield runtime.credentials


class Registry:
    """The process's engines, keyed by :attr:`VaultDbOptions.key`."""

    def __init__(self, starter: Starter = start_sync_runtime) -> None:
        self.starter = starter
        self._lock = threading.RLock()
        self._entries: dict[tuple[str, str, bool], tuple[Entry, ExitStack]] = {}
        self._atexit = False
        self.before_shutdown: Callable[[], None] | None = None
        """Set by the backend: close the calling thread's connections first."""
        os.register_at_fork(after_in_child=self._forget)

    def get(self, options: VaultDbOptions) -> Entry:
        """The running engine for ``options``, started (blocking until the first credential)
        if it is not running yet."""
        found = self._entries.get(options.key)
        if found is not None:
            return found[0]
        with self._lock:
            found = self._entries.get(options.key)
            if found is not None:
                return found[0]
            stack = ExitStack()
            with stack:
                credentials = stack.enter_context(self.starter(options))
                entry = Entry(options, credentials)
                stack.callback(entry.parking.close_older, None)
                stack.callback(credentials.subscribe(entry.on_rotated))
                self._entries[options.key] = (entry, stack.pop_all())
            if not self._atexit:
                atexit.register(self.shutdown)
                self._atexit = True
            logger.info(
                "django.engine_started",
                extra={"vault_role": options.role, "static": options.static},
            )
            return entry

    def running(self) -> list[Entry]:
        return [entry for entry, _stack in self._entries.values()]

    def shutdown(self) -> None:
        """Close the parked connections and stop every engine (revoking its leases). A later
        connection starts its engine again."""
        if self.before_shutdown is not None:
            try:
                self.before_shutdown()
            except Exception as error:
                logger.warning(
                    "django.close_failed", extra={"error_class": type(error).__name__}
                )
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry, stack in reversed(entries):
            entry.stopped = True
            try:
                stack.close()
            except Exception as error:
                logger.warning(
                    "django.engine_stop_failed",
                    extra={"vault_role": entry.options.role, "error_class": type(error).__name__},
                )

    def _forget(self) -> None:
        # In a forked child: the engines (and their threads) stayed in the parent.
        for entry, _stack in self._entries.values():
            entry.stopped = True
            # Their locks may have been held by a thread that was not forked.
            entry.parking = Parking()
            entry._stats_lock = threading.Lock()
        self._lock = threading.RLock()
        self._entries = {}


registry = Registry()
