"""Typed results. Their ``repr`` shows the keys of secret data, never the values or tokens;
lease ids, accessors and entity ids only by their last characters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._redact import id_suffix, masked_repr

__all__ = [
    "EMPTY",
    "AuthResult",
    "HealthStatus",
    "LeaseInfo",
    "SealStatus",
    "Secret",
    "TokenInfo",
    "WrapInfo",
    "WrappingLookup",
]

EMPTY: Mapping[str, Any] = MappingProxyType({})
_IDS = frozenset({"lease_id", "accessor", "entity_id"})  # shown as their last characters


def _keys(data: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k!r}: ..." for k in data) + "}"


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret (or lease) Vault returned: the lease it lives under and its data."""

    lease_id: str = ""
    lease_duration: int = 0
    renewable: bool = False
    data: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    warnings: tuple[str, ...] = ()
    request_id: str = ""
    metadata: Mapping[str, Any] = field(default_factory=lambda: EMPTY)

    def __repr__(self) -> str:
        return (
            f"Secret(lease_id=…{id_suffix(self.lease_id)}, lease_duration={self.lease_duration}, "
            f"renewable={self.renewable}, data={_keys(self.data)}, warnings={self.warnings!r})"
        )


@dataclass(frozen=True, slots=True)
class AuthResult:
    """A token obtained by a login or a renewal, with its lease.

    ``lease_duration`` is the token's TTL in seconds when Vault answered; ``token_type``
    is Vault's "service" or "batch" ("" if it did not say). ``expire_time`` is set when the
    result comes from a lookup (``TokenAuth``): with it, a ``lease_duration`` of 0 means
    "about to expire", not "never".
    """

    client_token: str = field(repr=False)
    accessor: str = ""
    lease_duration: int = 0
    renewable: bool = False
    policies: tuple[str, ...] = ()
    token_policies: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=lambda: EMPTY, repr=False)
    entity_id: str = ""
    orphan: bool = False
    token_type: str = ""
    expire_time: str | None = None

    @property
    def is_batch(self) -> bool:
        """A batch token: it cannot be renewed or revoked, and it has no accessor."""
        return self.token_type == "batch"

    def __repr__(self) -> str:
        return masked_repr(self, _IDS)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What ``auth/token/lookup-self`` reports about a token (the token itself is left out).

    ``ttl`` is the seconds left when Vault answered, ``expire_time`` Vault's RFC 3339 time
    (None for a token that never expires), ``type`` "service" or "batch".
    """

    accessor: str = ""
    ttl: int = 0
    creation_ttl: int = 0
    explicit_max_ttl: int = 0
    renewable: bool = False
    policies: tuple[str, ...] = ()
    display_name: str = ""
    entity_id: str = ""
    expire_time: str | None = None
    issue_time: str | None = None
    num_uses: int = 0
    orphan: bool = False
    path: str = ""
    type: str = ""
    meta: Mapping[str, Any] = field(default_factory=lambda: EMPTY, repr=False)

    @property
    def token_type(self) -> str:
        """``type`` under the name :class:`AuthResult` uses: "service" or "batch"."""
        return self.type

    @property
    def is_batch(self) -> bool:
        """A batch token: it cannot be renewed or revoked, and it has no accessor."""
        return self.type == "batch"

    def __repr__(self) -> str:
        return masked_repr(self, _IDS)

    def __getitem__(self, key: str) -> Any:
        """Dict-style access, e.g. ``info["ttl"]``."""
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)


@dataclass(frozen=True, slots=True)
class WrapInfo:
    """The wrapping token Vault returns in place of a response-wrapped secret."""

    token: str = field(repr=False)
    accessor: str = ""
    ttl: int = 0
    creation_time: str = ""
    creation_path: str = ""

    def __repr__(self) -> str:
        return masked_repr(self, _IDS)


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """What ``sys/leases/lookup`` reports about a lease."""

    lease_id: str
    ttl: int = 0
    renewable: bool = False
    issue_time: str | None = None
    expire_time: str | None = None
    last_renewal: str | None = None

    def __repr__(self) -> str:
        return masked_repr(self, _IDS)


@dataclass(frozen=True, slots=True)
class WrappingLookup:
    """What ``sys/wrapping/lookup`` reports about a wrapping token."""

    creation_path: str = ""
    creation_time: str = ""
    creation_ttl: int = 0


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """The body of ``sys/health`` plus the status code it came with."""

    status_code: int
    initialized: bool = False
    sealed: bool = False
    standby: bool = False
    performance_standby: bool = False
    version: str = ""
    cluster_name: str = ""
    cluster_id: str = ""
    server_time_utc: int = 0


@dataclass(frozen=True, slots=True)
class SealStatus:
    """The body of ``sys/seal-status`` (and of ``sys/unseal``)."""

    sealed: bool
    initialized: bool = False
    threshold: int = 0
    shares: int = 0
    progress: int = 0
    version: str = ""
    type: str = ""
