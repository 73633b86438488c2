"""The event bus: who hears about a secret's renewals, rotations, failures and revocations.

The engine decides and times; the bus only tells. Subscribers are per secret or for
every secret; a subscriber that raises is logged and skipped, never allowed to stop
the engine.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

from ._logfields import error_fields
from ._models import LeaseEvent

__all__ = ["EventBus", "EventCallback"]

logger = logging.getLogger("vault_async.lifecycle")

EventCallback = Callable[[LeaseEvent], "Awaitable[None] | None"]


class EventBus:
    """Subscribers by secret name, plus subscribers to every secret."""

    __slots__ = ("_all", "_by_name")

    def __init__(self) -> None:
        self._all: list[EventCallback] = []
        # Created per name on first subscribe: most secrets have no subscriber of their own.
        self._by_name: dict[str, list[EventCallback]] = {}

    def subscribe(self, callback: EventCallback, name: str | None = None) -> Callable[[], None]:
        """Call ``callback`` with the events of ``name`` (every secret when None)."""
        callbacks = self._all if name is None else self._by_name.setdefault(name, [])
        callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return unsubscribe

    def wants(self, name: str) -> bool:
        """True when someone listens to ``name`` (so building the event is worth it)."""
        return bool(self._all or self._by_name.get(name))

    async def emit(self, event: LeaseEvent) -> None:
        """Hand ``event`` to each subscriber in turn; awaitable results are awaited."""
        for callback in [*self._by_name.get(event.name, ()), *self._all]:
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                logger.warning(
                    "lease.callback_failed",
                    extra={
                        "secret": event.name,
                        "generation": event.generation,
                        "event": event.kind,
                        **error_fields(exc),
                    },
                )
