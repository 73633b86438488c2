"""A database credential that an OpenBao/Vault Agent renders to a file.

Usage::

    async with FileCredentials("/run/secrets/db.json") as creds:
        await creds.wait_ready(timeout=30)
        binding = bind_credentials(engine, creds)   # or bind_pool(url, creds, ...)

The Agent owns the lease: it fetches ``database/creds/<role>``, renews the lease and, when
the lease reaches its max TTL, fetches a new credential and renders the file again. This
source only reads: every ``poll_interval`` seconds it compares the file's inode, size and
modification time with the last read, and reads it again when one changed. A new
username or password is a new generation, announced to subscribers with a ``rotated``
:class:`~vault_async.lifecycle.LeaseEvent`, so the pool bindings swap their connections
exactly as they do for the lease engine's ``ManagedSecret``. The same content written
again is no new generation.

A file that is missing, unreadable or not a credential (half written by a writer that
does not rename, say) leaves the credential in force untouched: the failure is counted
(``/healthz`` says ``degraded``) and the next poll reads again. ``force_rotate`` (a pool
whose login was rejected) reads the file at once; it cannot ask the Agent for a new
credential, so until the Agent renders one it returns the one in force, and counts a
failure. When the file gives a ``ttl``, the credential expires that long after the file
was written: the state reports what remains, and ``/healthz`` says ``failing`` once it
is spent. Nothing is ever renewed or revoked here: that is the Agent's.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from ._creds_file import (
    CredentialFileError,
    CredsFormat,
    FileCredential,
    Stamp,
    expiry,
    file_stamp,
    parse_credentials,
    read_text,
)
from ._log_limit import LogLimiter
from ._redact import id_suffix
from .lifecycle import LeaseEvent, SecretState

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "CredentialFileError",
    "FileCredential",
    "FileCredentials",
]

logger = logging.getLogger("vault_async.file_credentials")

DEFAULT_POLL_INTERVAL = 1.0
"""Seconds between two looks at the file: a stat() call, and a read only when it changed."""

MAX_POLL_INTERVAL = 60.0
STARTUP_POLL = 0.1
"""While waiting for the first credential, the file is looked at this often."""


class FileCredentials:
    """A :class:`~vault_async.sqlalchemy.CredentialSource` read from an Agent-rendered file."""

    def __init__(
        self,
        path: str | Path,
        *,
        format: CredsFormat | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < poll_interval <= MAX_POLL_INTERVAL:
            raise ValueError(
                f"poll_interval must be > 0 and at most {MAX_POLL_INTERVAL:g} s, "
                f"got {poll_interval!r}"
            )
        self.path = Path(path)
        self.name = name or f"file:{self.path}"
        self.poll_interval = poll_interval
        self._format: CredsFormat | None = format
        self._current: FileCredential | None = None
        self._generation = 0
        self._stamp: Stamp | None = None
        self._clock = clock
        self._expires: float | None = None
        self._subscribers: list[Callable[[Any], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._log_limit = LogLimiter()
        self.rotations = 0
        self.consecutive_failures = 0
        self.total_failures = 0
        self.last_error: CredentialFileError | None = None
        self.last_change: dt.datetime | None = None

    def __repr__(self) -> str:
        return f"FileCredentials(path={str(self.path)!r}, generation={self._generation})"

    # -- CredentialSource ---------------------------------------------------------------

    @property
    def current(self) -> FileCredential | None:
        """The credential in force (None before the first good read)."""
        return self._current

    @property
    def generation(self) -> int:
        """1 for the first credential read, one more for each new username or password."""
        return self._generation

    async def force_rotate(self, reason: str, *, generation: int | None = None) -> FileCredential:
        """Read the file now; returns the credential in force afterwards.

        Nothing asks the Agent for a new credential: when the file still holds the rejected
        one, that one is returned, and the next connection is rejected until the Agent
        renders a new file.
        """
        if generation is not None and generation != self._generation and self._current:
            return self._current  # already moved past the generation that failed
        failures = self.total_failures
        changed = self.check(force=True)
        if not changed and self._current is not None and self.total_failures == failures:
            self._failed(  # read fine, but it is the rejected login: not well until it changes
                CredentialFileError(
                    f"{self.path} still holds the login the database rejected; "
                    "waiting for the Agent to render a new one"
                )
            )
        # Every connection the database rejects asks again while the Agent has not rendered
        # a new file: only a read that found a new login is worth an INFO line.
        logger.log(
            logging.INFO if changed else logging.DEBUG,
            "file_credentials.reread",
            extra={"secret": self.name, "reason": reason, "changed": changed},
        )
        if self._current is None:
            raise self.last_error or CredentialFileError(f"{self.path}: no credential yet")
        return self._current

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback`` with a ``rotated`` event at each new generation."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    # -- reading the file ---------------------------------------------------------------

    def check(self, *, force: bool = False) -> bool:
        """Read the file if it changed since the last good read (always with ``force``).

        Returns True when a new generation was published. A failed read keeps the
        credential in force and is retried at the next call.
        """
        try:
            before = file_stamp(self.path)
            if before == self._stamp and not force:
                return False
            text = read_text(self.path)
            if file_stamp(self.path) != before:
                return False  # being replaced while read: the next look reads it whole
            credential = parse_credentials(text, self._format, str(self.path))
        except CredentialFileError as error:
            self._failed(error)
            return False
        self._stamp = before
        self.consecutive_failures = 0
        self._expires = expiry(credential.ttl, before[3], self._clock())
        if credential.same_login(self._current):
            self._current = credential  # the lease id or ttl may have changed, not the login
            return False
        self._publish(credential)
        return True

    def _publish(self, credential: FileCredential) -> None:
        first = self._current is None
        self._current = credential
        self._generation += 1
        self.last_change = dt.datetime.now(tz=dt.UTC)
        fields = {
            "secret": self.name,
            "generation": self._generation,
            "lease": id_suffix(credential.lease_id),
        }
        if first:
            logger.info("file_credentials.read", extra=fields)
            return
        self.rotations += 1
        logger.info("file_credentials.rotated", extra=fields)
        event = LeaseEvent(
            "rotated",
            self.name,
            self._generation,
            lease_id_suffix=id_suffix(credential.lease_id),
            reason="file changed",
        )
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception as error:  # one subscriber's bug must not stop the others
                logger.error(
                    "file_credentials.subscriber_failed",
                    extra={"secret": self.name, "error_class": type(error).__name__},
                )

    def _failed(self, error: CredentialFileError) -> None:
        self.consecutive_failures += 1
        self.total_failures += 1
        self.last_error = error
        self._log_limit.log(
            logger,
            "file_credentials.unreadable",
            secret=self.name,
            error=str(error),
            error_class=type(error.__cause__ or error).__name__,
            consecutive_failures=self.consecutive_failures,
        )

    # -- running ------------------------------------------------------------------------

    async def wait_ready(self, timeout: float) -> FileCredential:  # noqa: ASYNC109
        """Wait until a credential was read; ``CredentialFileError`` after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._current is None:
            self.check()
            if self._current is not None:
                break
            if loop.time() >= deadline:
                why = f": {self.last_error}" if self.last_error else ""
                raise CredentialFileError(
                    f"no database credential in {self.path} after {timeout:g} s{why}"
                )
            await asyncio.sleep(min(STARTUP_POLL, self.poll_interval))
        return self._current

    def start(self) -> None:
        """Start watching the file (a task on the running loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def aclose(self) -> None:
        """Stop watching; the credential in force stays readable."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> FileCredentials:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                self.check()
            except Exception as error:  # a bug must not end the watch: count it, look again
                unexpected = CredentialFileError(
                    f"{self.path}: unexpected {type(error).__name__} while reading"
                )
                unexpected.__cause__ = error
                self._failed(unexpected)

    def state(self) -> SecretState:
        """The health view: generation, failures, and the ttl when the file gives one."""
        current = self._current
        expires, remaining = self._expires, None
        if expires is not None:
            remaining = max(0.0, expires - self._clock())
        return SecretState(
            name=self.name,
            kind="database_file",
            ready=current is not None,
            ttl_remaining=remaining,
            expires_at=None if expires is None else dt.datetime.fromtimestamp(expires, dt.UTC),
            renewable=False,
            last_renewal=None,
            generation=self._generation,
            renewals=0,
            rotations=self.rotations,
            consecutive_failures=self.consecutive_failures,
            total_failures=self.total_failures,
            last_error_class=None if self.last_error is None else "CredentialFileError",
            degraded=current is None or self.consecutive_failures > 0 or remaining == 0,
            next_action="read" if self._task is not None else None,
            next_action_in=self.poll_interval if self._task is not None else None,
            lease_id_suffix=id_suffix(current.lease_id) if current is not None else "",
        )
