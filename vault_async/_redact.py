"""How identifiers that grant access (lease ids, accessors) appear in reprs and logs."""

from __future__ import annotations

import dataclasses

__all__ = ["id_suffix", "masked_repr"]


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
