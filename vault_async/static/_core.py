"""The static-secret interface, and the cache and change events every provider shares.

Usage::

    async with vault_kv(client, ttl=300, refresh_interval=60) as secrets:
        api_key = (await secrets.get("payments/api")).mapping()["key"]
        secrets.subscribe("payments/api", on_change)  # called when a refresh sees a new version

A provider is a :class:`SecretFetcher` (one read against Vault, AWS or GCP) wrapped in
:class:`CachedSecrets`, which gives it the :class:`StaticSecretProvider` interface:

- ``get(name, version=None)`` answers from the cache while the entry is younger than ``ttl``;
  concurrent reads of one (name, version) that miss share a single fetch.
- ``subscribe(name, callback)``: the callback gets a :class:`SecretChange` whenever a fetch of
  the name's latest version (a refresh, or a ``get`` past the TTL) finds another version or
  value than the one seen before. The first read only sets the baseline. Callbacks run in a
  task of their own once the fetch is done, so one may call ``get`` or ``refresh``; the
  reader that caused the fetch returns after them.
- ``refresh(name=None)`` fetches the latest version now (every subscribed name when None).
  With ``refresh_interval`` set, a background task does so for subscribed names, once per
  interval: it sleeps between rounds and never polls faster.

The interface and its one implementation share this module on purpose, past 300 lines: the
cache is what gives the interface its contract, and they read best side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from ._errors import SecretConfigError, SecretUnavailable, StaticSecretError
from ._value import SecretChange, StaticSecret

__all__ = [
    "DEFAULT_TTL",
    "CachedSecrets",
    "ChangeCallback",
    "SecretFetcher",
    "StaticSecretProvider",
]

logger = logging.getLogger("vault_async.static")

DEFAULT_TTL = 300.0
"""Seconds a read is served from the cache before the provider is asked again."""

ChangeCallback = Callable[[SecretChange], "Awaitable[None] | None"]
_Key = tuple[str, str | None]


class SecretFetcher(Protocol):
    """One provider's read, without caching: the part that differs between services."""

    provider: str
    """A short name for errors and logs: ``vault-kv``, ``aws-secretsmanager``..."""

    async def fetch(self, name: str, version: str | None) -> StaticSecret:
        """The secret ``name`` at ``version`` (the latest when None), or a StaticSecretError."""
        ...

    async def aclose(self) -> None:
        """Release the SDK client the fetcher created (not one it was given)."""
        ...


@runtime_checkable
class StaticSecretProvider(Protocol):
    """Read static secrets by name, cached, with change events."""

    provider: str

    async def get(self, name: str, version: str | int | None = None) -> StaticSecret:
        """The secret ``name`` at ``version`` (the latest when None)."""
        ...

    async def refresh(self, name: str | None = None) -> list[SecretChange]:
        """Fetch the latest version of ``name`` (every subscribed name) and report changes."""
        ...

    def subscribe(self, name: str, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback`` when ``name``'s latest version changes; returns unsubscribe."""
        ...

    async def aclose(self) -> None:
        """Stop the background refresh and release the provider's client."""
        ...


class CachedSecrets:
    """A :class:`StaticSecretProvider` over one fetcher: TTL cache, single flight, events."""

    def __init__(
        self,
        fetcher: SecretFetcher,
        *,
        ttl: float = DEFAULT_TTL,
        refresh_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = fetcher.provider
        if ttl < 0:
            raise SecretConfigError(self.provider, "", f"ttl must be >= 0 seconds, not {ttl}")
        if refresh_interval is not None and refresh_interval <= 0:
            raise SecretConfigError(
                self.provider, "", f"refresh_interval must be > 0 seconds, not {refresh_interval}"
            )
        self._fetcher = fetcher
        self._ttl = ttl
        self._interval = refresh_interval
        self._clock = clock
        self._entries: dict[_Key, tuple[StaticSecret, float]] = {}
        self._inflight: dict[_Key, asyncio.Task[_Fetched]] = {}
        self._notices: set[asyncio.Task[None]] = set()
        self._latest: dict[str, StaticSecret] = {}
        self._subscribers: dict[str, list[ChangeCallback]] = {}
        self._refresher: asyncio.Task[None] | None = None
        self._closed = False

    async def get(self, name: str, version: str | int | None = None) -> StaticSecret:
        """The secret ``name`` at ``version`` (the latest when None), from the cache if fresh."""
        key = (self._checked_name(name), _version_text(self.provider, name, version))
        entry = self._entries.get(key)
        if entry is not None and entry[1] > self._clock():
            return entry[0]
        return await self._load(key)

    async def refresh(self, name: str | None = None) -> list[SecretChange]:
        """Fetch the latest version now; the changes found (also sent to subscribers).

        With ``name`` None, every subscribed name; the first error is raised after all
        were tried.
        """
        names = [self._checked_name(name)] if name is not None else self._watched()
        changes: list[SecretChange] = []
        first_error: StaticSecretError | None = None
        for each in names:
            before = self._latest.get(each)
            try:  # the cached entry stays until the new one replaces it: a failure keeps it
                after = await self._load((each, None))
            except StaticSecretError as exc:
                first_error = first_error or exc
                continue
            if before is not None and not before.same_as(after):
                changes.append(SecretChange(before, after))
        if first_error is not None:
            raise first_error
        return changes

    def subscribe(self, name: str, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback`` (sync or async) with each change of ``name``'s latest version.

        Inside a running event loop this also starts the background refresh, when the
        provider has a ``refresh_interval``.
        """
        callbacks = self._subscribers.setdefault(self._checked_name(name), [])
        callbacks.append(callback)
        with contextlib.suppress(RuntimeError):  # no running loop: started by __aenter__
            self.start()

        def unsubscribe() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return unsubscribe

    def start(self) -> None:
        """Start the background refresh (needs a running loop; a no-op without an interval)."""
        if self._interval is None or self._closed or self._refresher is not None:
            return
        asyncio.get_running_loop()
        self._refresher = asyncio.create_task(
            self._refresh_forever(self._interval), name=f"static-secrets-refresh:{self.provider}"
        )

    async def aclose(self) -> None:
        """Stop the background refresh, cancel fetches in flight, close the fetcher's client.

        A reader waiting on a cancelled fetch gets ``SecretUnavailable``, not a cancellation.
        """
        if self._closed:
            return
        self._closed = True
        tasks: list[asyncio.Task[_Fetched] | asyncio.Task[None]] = [
            *self._inflight.values(),
            *self._notices,
        ]
        if self._refresher is not None:
            tasks.append(self._refresher)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._entries.clear()
        await self._fetcher.aclose()

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"CachedSecrets(provider={self.provider!r}, ttl={self._ttl}, "
            f"refresh_interval={self._interval}, cached={len(self._entries)})"
        )

    # -- internals ---------------------------------------------------------------------

    def _checked_name(self, name: str) -> str:
        if not isinstance(name, str) or not name.strip():
            raise SecretConfigError(self.provider, str(name), "a secret name must be non-empty")
        return name

    def _watched(self) -> list[str]:
        return [name for name, callbacks in self._subscribers.items() if callbacks]

    async def _load(self, key: _Key) -> StaticSecret:
        """Join the fetch in flight for ``key``, or start one; then its change callbacks."""
        if self._closed:
            raise SecretConfigError(self.provider, key[0], "the provider is closed")
        task = self._inflight.get(key)
        if task is not None and task is asyncio.current_task():
            raise SecretConfigError(
                self.provider, key[0], "the fetcher read this secret from inside its own fetch"
            )
        if task is None:
            task = asyncio.create_task(self._fetch(key))
            self._inflight[key] = task
            task.add_done_callback(self._settle(key))
        try:
            # A reader that is cancelled leaves the shared fetch running for the others.
            fetched = await asyncio.shield(task)
            # Callbacks run in their own task, never in the fetch. A reader waits for them,
            # unless it is itself a callback: one that refreshes must not wait on its kind.
            if fetched.notice is not None and asyncio.current_task() not in self._notices:
                await asyncio.shield(fetched.notice)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._closed and (current is None or current.cancelling() == 0):
                # aclose() cancelled the shared work, not this reader
                raise SecretUnavailable(self.provider, key[0], "the provider was closed") from None
            raise
        return fetched.secret

    def _settle(self, key: _Key) -> Callable[[asyncio.Task[_Fetched]], None]:
        """Forget the finished fetch; start its change callbacks once, whoever still waits."""

        def done(task: asyncio.Task[_Fetched]) -> None:
            if self._inflight.get(key) is task:
                del self._inflight[key]
            if task.cancelled() or task.exception() is not None:
                return  # the exception is retrieved here too, in case every reader went away
            fetched = task.result()
            if fetched.change is not None and not self._closed:
                notice = asyncio.create_task(self._notify(key[0], fetched.change))
                fetched.notice = notice
                self._notices.add(notice)
                notice.add_done_callback(self._notices.discard)

        return done

    async def _fetch(self, key: _Key) -> _Fetched:
        name, version = key
        secret = await self._fetcher.fetch(name, version)
        self._entries[key] = (secret, self._clock() + self._ttl)
        change = self._observe(name, secret) if version is None else None
        return _Fetched(secret, change)

    def _observe(self, name: str, secret: StaticSecret) -> SecretChange | None:
        """Remember ``secret`` as the latest of ``name``; the change, if it is one."""
        before = self._latest.get(name)
        self._latest[name] = secret
        if before is None or before.same_as(secret):
            return None
        logger.info(
            "static_secret.changed",
            extra={
                "provider": self.provider,
                "secret": name,
                "previous_version": before.version,
                "version": secret.version,
            },
        )
        return SecretChange(before, secret)

    async def _notify(self, name: str, change: SecretChange) -> None:
        """Call each subscriber of ``name``; a failing one is logged, not raised."""
        for callback in list(self._subscribers.get(name, ())):
            try:
                result = callback(change)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                logger.warning(
                    "static_secret.callback_failed",
                    extra={"provider": self.provider, "secret": name, "error_class": _cls(exc)},
                )

    async def _refresh_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            for name in self._watched():
                try:
                    await self.refresh(name)
                except StaticSecretError as exc:
                    logger.warning(
                        "static_secret.refresh_failed",
                        extra={
                            "provider": self.provider,
                            "secret": name,
                            "error_class": _cls(exc),
                            "error": exc.message,
                        },
                    )
                except Exception as exc:  # an unmapped failure must not end the refresh
                    logger.warning(
                        "static_secret.refresh_failed",
                        extra={"provider": self.provider, "secret": name, "error_class": _cls(exc)},
                    )


@dataclass(slots=True)
class _Fetched:
    """One finished fetch: the secret, the change it revealed, and the task telling of it."""

    secret: StaticSecret
    change: SecretChange | None
    notice: asyncio.Task[None] | None = None


def _cls(exc: BaseException) -> str:
    return type(exc).__name__


def _version_text(provider: str, name: str, version: str | int | None) -> str | None:
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, str | int):
        raise SecretConfigError(provider, name, "a version is a string or an integer")
    text = str(version).strip()
    if not text:
        raise SecretConfigError(provider, name, "a version must be non-empty")
    return text
