"""Value objects of the lease engine: leases, grants, events and state snapshots.

None of their ``repr`` shows credential values: ``data`` is summarised by its
keys and lease ids by their last characters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._redact import id_suffix as lease_id_suffix

__all__ = [
    "Action",
    "EventKind",
    "Grant",
    "Lease",
    "LeaseEvent",
    "SecretKind",
    "SecretState",
    "lease_id_suffix",
]

SecretKind = Literal["database_dynamic", "database_static", "database_file", "token"]
EventKind = Literal["acquired", "renewed", "rotated", "expiring", "failed", "revoked"]
Action = Literal["renew", "rotate"]


def _summarise(data: Mapping[str, Any]) -> str:
    return "<" + ", ".join(sorted(data)) + ">"


@dataclass(frozen=True, slots=True)
class Grant:
    """What a source hands back from acquire or renew, before the engine timestamps it.

    ``identity`` says which credential this is (a lease id, an accessor, a digest of a
    static role's username and password): a new grant with the same identity is the
    same credential again, not a rotation. ``expires`` is False only for a credential
    Vault says never expires. ``revocable`` is False for what cannot be revoked (a
    batch token, a token handed to the service).
    """

    lease_id: str
    lease_duration: float
    renewable: bool
    data: Mapping[str, Any] = field(default_factory=dict)
    identity: str = ""
    expires: bool = True
    revocable: bool = True

    def __repr__(self) -> str:
        return (
            f"Grant(lease_id=…{lease_id_suffix(self.lease_id)!s}, "
            f"lease_duration={self.lease_duration!r}, renewable={self.renewable!r}, "
            f"data={_summarise(self.data)})"
        )


@dataclass(frozen=True, slots=True)
class Lease:
    """One credential as the engine holds it; times are in the manager's clock."""

    lease_id: str
    lease_duration: float
    renewable: bool
    data: Mapping[str, Any]
    obtained_at: float
    expires_at: float
    identity: str = ""
    revocable: bool = True
    owner: int = 0
    """Generation of the managed token that obtained it (0: none); it dies with that token."""

    def remaining(self, now: float) -> float:
        """Seconds of validity left at ``now`` (negative once expired)."""
        return self.expires_at - now

    def __repr__(self) -> str:
        return (
            f"Lease(lease_id=…{lease_id_suffix(self.lease_id)!s}, "
            f"lease_duration={self.lease_duration!r}, renewable={self.renewable!r}, "
            f"data={_summarise(self.data)}, obtained_at={self.obtained_at!r}, "
            f"expires_at={self.expires_at!r}, owner={self.owner!r})"
        )


@dataclass(frozen=True, slots=True)
class LeaseEvent:
    """A change in a managed secret's life, handed to subscribers."""

    kind: EventKind
    name: str
    generation: int
    lease_id_suffix: str = ""
    error_class: str | None = None
    reason: str | None = None
    at: float = 0.0
    previous_valid_for: float | None = None
    """On ``rotated``: seconds the replaced credential stays usable at most (its revocation
    is due then even with connections still using it); a pool that keeps serving on it
    while it prepares the new one must be done well before."""


@dataclass(frozen=True, slots=True)
class SecretState:
    """Health view of one managed secret."""

    name: str
    kind: SecretKind
    ready: bool
    ttl_remaining: float | None
    expires_at: dt.datetime | None
    renewable: bool
    last_renewal: dt.datetime | None
    generation: int
    renewals: int
    rotations: int
    consecutive_failures: int
    total_failures: int
    last_error_class: str | None
    degraded: bool
    next_action: str | None
    next_action_in: float | None
    lease_id_suffix: str
