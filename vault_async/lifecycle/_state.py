"""The health view: each managed secret's state as ``/healthz`` and ``/metrics`` read it."""

from __future__ import annotations

import datetime as dt
import math

from ._core import Core
from ._models import SecretState, lease_id_suffix

__all__ = ["health_view"]


def _utc(epoch: float) -> dt.datetime | None:
    return None if math.isinf(epoch) else dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def health_view(core: Core) -> dict[str, SecretState]:
    """Every managed secret's state, by name (no credential value, lease ids shortened)."""
    now = core.clock.now()
    wall_offset = core.clock.wall() - now
    out: dict[str, SecretState] = {}
    for name, h in core.handles.items():
        lease = h.current
        # A lease dies with the token that obtained it, whatever its own TTL says.
        expires = math.inf if lease is None else core.expires_at(h, lease)
        finite = not math.isinf(expires)
        step = core.queue.planned(h)
        out[name] = SecretState(
            name=name,
            kind=h.kind,
            ready=lease is not None,
            ttl_remaining=max(0.0, expires - now) if finite else None,
            expires_at=_utc(expires + wall_offset),
            renewable=bool(lease and lease.renewable),
            last_renewal=None if h.last_renewal is None else _utc(h.last_renewal + wall_offset),
            generation=h.generation,
            renewals=h.renewals,
            rotations=h.rotations,
            consecutive_failures=h.consecutive_failures,
            total_failures=h.total_failures,
            last_error_class=h.last_error_class,
            degraded=h.degraded(now) or expires <= now,
            next_action=None if step is None else step.action,
            next_action_in=None if step is None else max(0.0, step.due - now),
            lease_id_suffix=lease_id_suffix(lease.lease_id) if lease else "",
        )
    return out
