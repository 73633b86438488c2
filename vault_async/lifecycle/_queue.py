"""The deadline queue: what is due when, as typed entries.

Two kinds of job wait here: the next step of a secret (:class:`Planned`, at most one
per secret) and the revocation of a replaced lease (:class:`Revocation`, one per
lease). Planning a secret again supersedes its earlier plan, with one exception that
keeps leases alive: a *required* rotation is never replaced by a renew (only by an
earlier rotation). Superseded entries stay in the heap and are skipped when popped.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._models import Lease
from ._policy import Step

if TYPE_CHECKING:
    from ._handle import ManagedSecret

__all__ = ["DeadlineQueue", "Job", "Planned", "Revocation"]


@dataclass(frozen=True, slots=True)
class Planned:
    """The next step of one secret."""

    handle: ManagedSecret
    step: Step


@dataclass(frozen=True, slots=True)
class Revocation:
    """A replaced lease (of ``generation``) to revoke; ``attempt`` counts failed revocations."""

    handle: ManagedSecret
    lease: Lease
    generation: int = 0
    attempt: int = 0


Job = Planned | Revocation


@dataclass(order=True, slots=True)
class _Entry:
    due: float
    priority: int  # tokens first: the leases depend on them
    seq: int
    job: Job = field(compare=False)


class DeadlineQueue:
    """Jobs ordered by due time; at most one plan per secret, one revocation per lease."""

    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        # key -> the entry in force for it: id(handle) for plans, id(lease) for revocations.
        self._live: dict[int, _Entry] = {}

    def plan(self, handle: ManagedSecret, step: Step) -> Step:
        """Plan ``step`` for ``handle`` unless a required rotation must stay; returns the plan."""
        key = id(handle)
        entry = self._live.get(key)
        if entry is not None and isinstance(entry.job, Planned):
            held = entry.job.step
            if held.required and held.action == "rotate":
                if step.action != "rotate" or step.due >= held.due:
                    return held
                step = Step("rotate", step.due, required=True, expiring=step.expiring)
        self._push(key, step.due, 0 if handle.kind == "token" else 1, Planned(handle, step))
        return step

    def revoke(self, revocation: Revocation, due: float) -> None:
        """Revoke ``revocation.lease`` at ``due`` (re-timing an earlier entry for it)."""
        self._push(id(revocation.lease), due, 2, revocation)

    def cancel(self, handle: ManagedSecret) -> None:
        """Drop the plan of ``handle``."""
        entry = self._live.get(id(handle))
        if entry is not None and isinstance(entry.job, Planned):
            del self._live[id(handle)]

    def planned(self, handle: ManagedSecret) -> Step | None:
        """The step planned for ``handle``, if any."""
        entry = self._live.get(id(handle))
        return entry.job.step if entry is not None and isinstance(entry.job, Planned) else None

    def revocation(self, lease: Lease) -> Revocation | None:
        """The pending revocation of ``lease``, if any."""
        entry = self._live.get(id(lease))
        return entry.job if entry is not None and isinstance(entry.job, Revocation) else None

    def revocations(self) -> list[Revocation]:
        """Every revocation still pending."""
        return [e.job for e in self._live.values() if isinstance(e.job, Revocation)]

    def next_due(self) -> float | None:
        """When the earliest live job is due."""
        heap = self._heap
        while heap and self._live.get(_key(heap[0].job)) is not heap[0]:
            heapq.heappop(heap)
        return heap[0].due if heap else None

    def pop_due(self, now: float) -> Job | None:
        """The earliest live job due at ``now``, removed from the queue; None if none is due."""
        due = self.next_due()
        if due is None or due > now:
            return None
        entry = heapq.heappop(self._heap)
        del self._live[_key(entry.job)]
        return entry.job

    def _push(self, key: int, due: float, priority: int, job: Job) -> None:
        entry = _Entry(due, priority, next(self._seq), job)
        self._live[key] = entry
        heapq.heappush(self._heap, entry)


def _key(job: Job) -> int:
    return id(job.handle) if isinstance(job, Planned) else id(job.lease)
