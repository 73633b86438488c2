"""How identifiers that grant access (lease ids, accessors) appear in reprs and logs."""

from __future__ import annotations

import dataclasses

__all__ = ["LEASE_ID_PATHS", "display_path", "id_suffix", "masked_repr"]

# Request paths that end in a lease id (the lease endpoints and their older sys/ forms).
LEASE_ID_PATHS = ("sys/leases/renew/", "sys/leases/revoke/", "sys/renew/", "sys/revoke/")


def id_suffix(value: str, keep: int = 6) -> str:
    """The last ``keep`` characters of an id: enough to correlate logs, too few to use."""
    if not value:
        return ""
    return value[-keep:]


def masked_repr(obj: object, ids: frozenset[str]) -> str:
    """A dataclass's repr with the fields in ``ids`` cut to ``…<suffix>``."""
    parts: list[str] = []
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        if not f.repr:
            continue
        value = getattr(obj, f.name)
        if f.name in ids and isinstance(value, str) and value:
            parts.append(f"{f.name}=…{id_suffix(value)}")
        else:
            parts.append(f"{f.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"


def display_path(path: str) -> str:
    """A request path as errors and logs show it: a lease id in it cut to ``…<suffix>``."""
    if path.startswith(LEASE_ID_PATHS):
        for prefix in LEASE_ID_PATHS:
            if path.startswith(prefix):
                return f"{prefix}…{id_suffix(path[len(prefix) :])}"
    return path
