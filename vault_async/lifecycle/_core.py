"""What the parts of the lease engine share: the clock, the config, the queue, the bus."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import _policy as policy
from ._clock import Clock
from ._config import LeaseConfig
from ._events import EventBus
from ._models import EventKind, Lease, LeaseEvent, lease_id_suffix
from ._queue import DeadlineQueue, Revocation

if TYPE_CHECKING:
    from ._handle import ManagedSecret

__all__ = ["Core"]


@dataclass(slots=True)
class Core:
    """The engine's shared state; ``wake`` tells the scheduler a job may be due sooner."""

    clock: Clock
    config: LeaseConfig
    rng: random.Random
    wake: Callable[[float], None]
    queue: DeadlineQueue = field(default_factory=DeadlineQueue)
    events: EventBus = field(default_factory=EventBus)
    handles: dict[str, ManagedSecret] = field(default_factory=dict)

    def plan(self, handle: ManagedSecret, step: policy.Step | None) -> None:
        """Queue ``step`` for ``handle`` (None: nothing until asked)."""
        if step is None:
            self.queue.cancel(handle)
            return
        self.wake(self.queue.plan(handle, step).due)

    def revoke_at(self, revocation: Revocation, due: float) -> None:
        """Queue the revocation of a replaced lease (or token) for ``due``."""
        self.queue.revoke(revocation, due)
        self.wake(due)

    def owner_expires_at(self, handle: ManagedSecret, lease: Lease) -> float:
        """Until when the token that obtained ``lease`` lives (infinity: no token, or in force)."""
        token = handle.parent
        if token is None or token is handle or lease.owner == 0:
            return math.inf
        return token.owner_expires_at(lease.owner)

    def expires_at(self, handle: ManagedSecret, lease: Lease) -> float:
        """When ``lease`` stops working: its own expiry, or its token's if that comes first."""
        return min(lease.expires_at, self.owner_expires_at(handle, lease))

    def effective(self, handle: ManagedSecret, lease: Lease) -> Lease:
        """``lease`` with the expiry it really has (see :meth:`expires_at`)."""
        expires = self.expires_at(handle, lease)
        return (
            lease if expires == lease.expires_at else dataclasses.replace(lease, expires_at=expires)
        )

    def next_step(self, handle: ManagedSecret) -> policy.Step | None:
        """The policy's next step for ``handle`` in its present state."""
        lease = handle.current
        return policy.next_step(
            handle.kind,
            lease,
            natural=handle.natural,
            grace=handle.grace,
            capped=handle.capped,
            can_renew=handle.source.renew is not None,
            owner_expires_at=math.inf if lease is None else self.owner_expires_at(handle, lease),
            read_at=handle.read_at,
            now=self.clock.now(),
            config=self.config,
            rng=self.rng,
        )

    def dependents(self, token: ManagedSecret) -> Iterator[ManagedSecret]:
        """The open handles whose credentials are obtained with ``token``."""
        for h in self.handles.values():
            if h.parent is token and h is not token and not h.closed:
                yield h

    async def emit(
        self,
        handle: ManagedSecret,
        kind: EventKind,
        *,
        error_class: str | None = None,
        reason: str | None = None,
        lease: Lease | None = None,
        generation: int | None = None,
        previous_valid_for: float | None = None,
    ) -> None:
        """Tell the subscribers of ``handle`` (nothing is built when nobody listens).

        ``lease`` and ``generation`` name the credential concerned when it is not the one
        in force (a replaced lease being revoked).
        """
        if not self.events.wants(handle.name):
            return
        lease = lease or handle.current
        await self.events.emit(
            LeaseEvent(
                kind=kind,
                name=handle.name,
                generation=handle.generation if generation is None else generation,
                lease_id_suffix=lease_id_suffix(lease.lease_id) if lease else "",
                error_class=error_class,
                reason=reason,
                at=self.clock.now(),
                previous_valid_for=previous_valid_for,
            )
        )
