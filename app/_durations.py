"""Lease durations as Vault reads them (`30s`, `2m`, `1h30m`, plain seconds), checked early."""

from __future__ import annotations

import re

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

MIN_TTL_SECONDS = 2.0
"""Below this a credential expires before the lease engine can renew or replace it."""


def parse_duration(text: str) -> float:
    """Seconds in `text`: whole seconds (`90`) or number-unit pairs (`1m30s`); ValueError if not."""
    value = text.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    parts = _PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"{text!r} is not a duration; write it like 30s, 2m or 1h30m")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def parse_seconds(text: str) -> float:
    """As :func:`parse_duration`, and plain decimal seconds (`2.5`) too.

    One grammar for every duration setting of the service: no sign, exponent, ``_``,
    ``inf`` or ``nan`` (which ``float()`` would take), so every such setting reads alike.
    """
    value = text.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    return parse_duration(value)


def check_ttls(ttl: str, max_ttl: str) -> tuple[float, float]:
    """Both durations in seconds; ValueError naming the option when one cannot work."""
    try:
        ttl_s = parse_duration(ttl)
    except ValueError as exc:
        raise ValueError(f"--db-ttl: {exc}") from None
    try:
        max_s = parse_duration(max_ttl)
    except ValueError as exc:
        raise ValueError(f"--db-max-ttl: {exc}") from None
    if ttl_s < MIN_TTL_SECONDS:
        raise ValueError(f"--db-ttl: {ttl} is too short; give at least {MIN_TTL_SECONDS:.0f}s")
    if max_s < ttl_s:
        raise ValueError(f"--db-max-ttl: {max_ttl} is shorter than --db-ttl {ttl}")
    return ttl_s, max_s
