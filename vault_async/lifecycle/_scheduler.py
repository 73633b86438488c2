"""The scheduler loop: run what is due, at most ``max_concurrency`` jobs at once.

It knows nothing about leases: it pops due jobs from the deadline queue, runs each
as a short-lived task in the engine's task group, and sleeps on the clock until the
next deadline or until ``wake`` says an earlier one was queued. No task lives per
lease, and nothing polls.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup

from ._clock import Clock
from ._queue import DeadlineQueue, Job

__all__ = ["Scheduler"]

logger = logging.getLogger("vault_async.lifecycle")


class Scheduler:
    """Dispatches due jobs to ``run``; ``idle`` waits for the jobs in flight to land."""

    __slots__ = (
        "_clock",
        "_idle",
        "_in_flight",
        "_limit",
        "_queue",
        "_run",
        "_sleep_until",
        "_wake_scope",
    )

    def __init__(
        self,
        queue: DeadlineQueue,
        clock: Clock,
        run: Callable[[Job], Awaitable[None]],
        max_concurrency: int,
    ) -> None:
        self._queue = queue
        self._clock = clock
        self._run = run
        self._limit = max_concurrency
        self._in_flight = 0
        self._idle: anyio.Event | None = None
        self._wake_scope: anyio.CancelScope | None = None
        self._sleep_until = math.inf

    def wake(self, due: float) -> None:
        """A job due at ``due`` was queued: wake up if it comes before the present sleep."""
        if due < self._sleep_until and self._wake_scope is not None:
            self._wake_scope.cancel()

    async def run_forever(self, tg: TaskGroup) -> None:
        """Dispatch what is due, then sleep until the next deadline; returns only if cancelled."""
        while True:
            now = self._clock.now()
            while self._in_flight < self._limit:
                job = self._queue.pop_due(now)
                if job is None:
                    break
                self._in_flight += 1
                tg.start_soon(self._execute, job)
            with anyio.CancelScope() as wake:
                self._wake_scope = wake
                due = self._queue.next_due()
                if due is None or (self._in_flight >= self._limit and due <= now):
                    self._sleep_until = math.inf
                    await anyio.sleep_forever()
                else:
                    self._sleep_until = due
                    await self._clock.sleep(due - now)
            self._wake_scope = None
            self._sleep_until = math.inf

    async def idle(self) -> None:
        """Wait until no job is in flight."""
        while self._in_flight:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    async def _execute(self, job: Job) -> None:
        try:
            await self._run(job)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0 and self._idle is not None:
                self._idle.set()
                self._idle = None
            due = self._queue.next_due()
            if due is not None and due <= self._clock.now() and self._wake_scope is not None:
                self._wake_scope.cancel()
