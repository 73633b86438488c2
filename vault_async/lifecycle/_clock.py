"""Clocks for the scheduler: the real one, and a virtual one for tests and benchmarks."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "SystemClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """What the scheduler needs from time: a monotonic reading, a wall reading, a sleep."""

    def now(self) -> float:
        """Monotonic seconds; only differences matter."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch, for reporting instants to humans."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` for scheduling, ``time.time`` for reports."""

    def now(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    def wall(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        await anyio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that only moves when told to; sleepers wake in deadline order.

    ``await clock.advance(60)`` steps through every sleeper due in the next 60
    virtual seconds, letting the woken tasks run until they block again before
    moving on. Nothing sleeps for real.
    """

    def __init__(self, start: float = 0.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        """Current virtual time."""
        return self._now

    def wall(self) -> float:
        """Virtual time mapped onto an epoch instant."""
        return self._now + self._wall_offset

    @property
    def pending(self) -> int:
        """Number of sleepers registered (including ones already cancelled)."""
        return len(self._sleepers)

    def next_deadline(self) -> float | None:
        """Deadline of the earliest sleeper, if any."""
        return self._sleepers[0][0] if self._sleepers else None

    async def sleep(self, seconds: float) -> None:
        """Block until virtual time has moved ``seconds`` forward."""
        event = anyio.Event()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._seq), event))
        await event.wait()

    async def settle(self, max_rounds: int = 100_000) -> None:
        """Let every runnable task run until all are blocked (asyncio).

        anyio's ``wait_all_tasks_blocked`` polls with real 0.1 s sleeps; this
        yields with ``sleep(0)`` instead, so virtual time costs no wall time.
        """
        me = asyncio.current_task()
        # Callbacks waiting in the loop's ready queue (a shielded future being resolved,
        # say) mean a task is about to run even though it still looks blocked.
        ready = getattr(asyncio.get_running_loop(), "_ready", ())
        for _ in range(max_rounds):
            await asyncio.sleep(0)
            if not ready and all(task is me or _blocked(task) for task in asyncio.all_tasks()):
                return

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers in order."""
        target = self._now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, event = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            event.set()
            # Wake every sleeper sharing this instant before letting tasks run.
            while self._sleepers and self._sleepers[0][0] <= self._now:
                heapq.heappop(self._sleepers)[2].set()
            await self.settle()
        self._now = max(self._now, target)
        await self.settle()


def _blocked(task: asyncio.Task[object]) -> bool:
    """True when ``task`` waits on a future that is not done yet."""
    waiter = getattr(task, "_fut_waiter", None)
    return waiter is not None and not waiter.done()
