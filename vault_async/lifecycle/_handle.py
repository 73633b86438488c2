"""``ManagedSecret``: the handle a caller holds for one credential the manager keeps fresh."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from ._models import Lease, LeaseEvent, SecretKind
from ._sources import SecretSource

if TYPE_CHECKING:
    from ._manager import LeaseManager

__all__ = ["EventCallback", "ManagedSecret"]

EventCallback = Callable[[LeaseEvent], "Awaitable[None] | None"]


class ManagedSecret:
    """One secret kept valid by a :class:`LeaseManager`.

    Read :attr:`current` for the credential in force and :attr:`generation` to
    notice rotations; :meth:`subscribe` to be told about them as they happen.
    """

    __slots__ = (
        "_capped",
        "_closed",
        "_expiring_generation",
        "_grace",
        "_last_error",
        "_manager",
        "_natural",
        "_next_action",
        "_next_due",
        "_retry_at",
        "_seq",
        "_subscribers",
        "consecutive_failures",
        "current",
        "generation",
        "last_error_class",
        "last_renewal",
        "last_rotation",
        "name",
        "parent",
        "renewals",
        "rotations",
        "source",
        "total_failures",
    )

    def __init__(self, manager: LeaseManager, source: SecretSource, name: str) -> None:
        self._manager = manager
        self.source = source
        self.name = name
        self.current: Lease | None = None
        self.generation = 0
        self.renewals = 0
        self.rotations = 0
        self.consecutive_failures = 0
        self.total_failures = 0
        self.last_error_class: str | None = None
        self.last_renewal: float | None = None
        self.last_rotation: float | None = None
        self.parent: ManagedSecret | None = None
        # Created on first subscribe: most handles have no subscriber of their own.
        self._subscribers: list[EventCallback] | None = None
        self._natural = 0.0
        self._grace = 0.0
        self._capped = False
        self._expiring_generation = -1
        self._seq = -1
        self._next_action: str | None = None
        self._next_due: float | None = None
        # After a failed attempt: the error, and the instant before which
        # force_rotate answers with it instead of calling Vault again.
        self._last_error: Exception | None = None
        self._retry_at: float | None = None
        self._closed = False

    @property
    def kind(self) -> SecretKind:
        """What sort of secret this is."""
        return self.source.kind

    @property
    def ready(self) -> bool:
        """True once a first credential has been obtained."""
        return self.current is not None

    def degraded(self, now: float) -> bool:
        """True when the last attempt failed, or the credential is missing or expired."""
        if self.consecutive_failures > 0 or self.current is None:
            return True
        return self.current.expires_at != math.inf and self.current.expires_at <= now

    async def wait_ready(self, timeout: float = 30.0) -> Lease:  # noqa: ASYNC109
        """Wait for the first credential; raises ``TimeoutError`` after ``timeout`` seconds."""
        with anyio.move_on_after(timeout):
            await self._manager._wait_ready(self)
        if self.current is None:
            raise TimeoutError(
                f"{self.name}: no credential after {timeout:g}s "
                f"(last error: {self.last_error_class or 'none'})"
            )
        return self.current

    async def force_rotate(self, reason: str) -> Lease:
        """Replace the credential now (e.g. the database refused it) and return the new one.

        Callers racing each other share one rotation: whoever finds the
        generation already moved on gets the fresh credential without asking
        Vault again. After a failed attempt, calls made before the backoff delay
        has passed raise that attempt's error without asking Vault again.
        """
        return await self._manager._force_rotate(self, reason)

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback`` with every event of this secret; returns an unsubscribe function."""
        if self._subscribers is None:
            self._subscribers = []
        subscribers = self._subscribers
        subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in subscribers:
                subscribers.remove(callback)

        return unsubscribe

    def __repr__(self) -> str:
        return (
            f"ManagedSecret(name={self.name!r}, kind={self.kind!r}, "
            f"generation={self.generation}, ready={self.ready})"
        )
