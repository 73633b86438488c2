"""The pool swaps a binding's rotations start, each in a task, and the pool's hold.

A ``rotated`` event arrives in a callback that cannot wait, so the swap (closing the idle
connections of the old login) runs in a task of its own. :class:`PoolSwaps` keeps those
tasks (waited for at close, a failure logged as ``pool.swap_failed``) and, for a pool whose
idle connections are not counted, the :class:`~vault_async._use_counter.GenerationHold` that
keeps the old lease from being revoked until the swap has closed them.

Shared by the async SQLAlchemy, asyncpg and psycopg bindings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine

from ._credential_source import UseTrackingSource
from ._use_counter import GenerationHold

__all__ = ["PoolSwaps"]


class PoolSwaps:
    """Runs ``swap()`` in a task per rotation; holds the generation in force if asked to."""

    def __init__(self, swap: Callable[[], Awaitable[None]], logger: logging.Logger) -> None:
        self._swap = swap
        self._logger = logger
        self._tasks: set[asyncio.Task[None]] = set()
        self._hold: GenerationHold | None = None

    def hold_from(self, source: UseTrackingSource) -> None:
        """Hold the generation in force on ``source`` (this also announces the pool)."""
        self._hold = GenerationHold(source.track_use)
        self._hold.move_to(source.generation)

    def drop_hold(self) -> None:
        """The pool stops reporting: give back the generation held now."""
        if self._hold is not None:
            self._hold.drop()
            self._hold = None

    def start(self, generation: int) -> None:
        """Hold ``generation`` at once, then swap in a task; the old generation is given
        back only once the swap is done."""
        hold = self._hold
        previous = None if hold is None else hold.move_to(generation)
        task = asyncio.get_running_loop().create_task(self._swap_then_give_back(hold, previous))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def run(self, step: Coroutine[object, object, None]) -> None:
        """Run a clean-up ``step`` in a task waited for like the swaps."""
        task = asyncio.get_running_loop().create_task(step)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def wait(self) -> None:
        """Wait for the swaps started so far (and any they start)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _swap_then_give_back(
        self, hold: GenerationHold | None, previous: int | None
    ) -> None:
        """Swap the pool; only then may the lease of ``previous`` be revoked."""
        try:
            await self._swap()
        finally:
            if hold is not None:
                hold.give_back(previous)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._logger.warning("pool.swap_failed", extra={"error_class": type(error).__name__})
