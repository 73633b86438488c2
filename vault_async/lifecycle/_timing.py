"""The timing rules of the lease engine, as small pure functions.

They follow Vault's ``api/lifetime_watcher.go``: renew at about two thirds of the
remaining lease, keep a random grace period of 10-20 % of the lease so that many
replicas do not renew in lockstep, and stop renewing (rotate instead) once a
renewal would land inside the grace period.
"""

from __future__ import annotations

import random

__all__ = [
    "backoff_delay",
    "grace_period",
    "is_capped",
    "renew_delay",
    "rotation_lead",
    "should_stop_renewing",
]


def grace_period(lease_duration: float, rng: random.Random) -> float:
    """A random grace period in [10 %, 20 %) of the lease (Vault's ``calculateGrace``)."""
    if lease_duration <= 0:
        return 0.0
    jitter_max = 0.1 * lease_duration
    return jitter_max + rng.random() * jitter_max


def renew_delay(remaining: float, grace: float) -> float:
    """Seconds to sleep before renewing: 2/3 of the remaining lease plus 1/3 of the grace.

    The grace share is the jitter: two replicas holding the same lease duration
    drew different graces, so they wake at different instants.
    """
    return max(0.0, remaining * 2.0 / 3.0 + grace / 3.0)


def should_stop_renewing(remaining: float, sleep: float, grace: float) -> bool:
    """True when renewing after ``sleep`` would leave no more than the grace period.

    Vault's watcher returns (asks for a new secret) in this case rather than
    leaving itself a tiny budget to renew a lease that is about to expire.
    """
    return remaining <= grace or remaining - sleep <= grace


def is_capped(new_duration: float, natural_duration: float) -> bool:
    """True when a renewal gave less than the lease's natural duration (max TTL reached)."""
    return new_duration < natural_duration


def rotation_lead(
    natural_duration: float,
    grace: float,
    configured: float | None = None,
    min_lead: float = 30.0,
) -> float:
    """How long before expiry a replacement must be obtained.

    The configured lead, by default the grace period, but at least ``min_lead``
    seconds when the lease allows it: a lease is never asked to give more than a
    third of its natural duration, so short test leases still renew a few times.
    """
    base = grace if configured is None else configured
    floor = min(min_lead, natural_duration / 3.0)
    return max(base, floor, 0.0)


def backoff_delay(
    attempt: int,
    rng: random.Random,
    *,
    base: float,
    cap: float,
    floor: float,
    remaining: float | None = None,
) -> float:
    """Exponential backoff with full jitter, never past the remaining lease, never below ``floor``.

    ``attempt`` counts from 1. The upper bound doubles per attempt up to ``cap``;
    the delay is drawn uniformly below it (full jitter), then clamped so a retry
    still happens while the lease is valid, and never faster than ``floor``.
    """
    exponent = min(max(attempt - 1, 0), 62)
    upper = min(cap, base * (2.0**exponent))
    delay = rng.random() * upper
    if remaining is not None:
        delay = min(delay, remaining)
    return max(floor, delay)
