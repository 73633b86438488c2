"""Retry rules and backoff math, as small pure functions."""

from __future__ import annotations

import email.utils
import math
import random
import time

from ._config import RetryPolicy

__all__ = ["backoff_delay", "parse_retry_after", "retry_delay", "retryable_status"]


def retryable_status(status: int) -> bool:
    """Statuses worth retrying for an idempotent request: 412, 429, and 5xx except 501."""
    return status in (412, 429) or (500 <= status < 600 and status != 501)


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full jitter (AWS): uniform between 0 and the capped exponential for this attempt.

    Full jitter spreads a crowd of clients that failed together, so they do not hit a
    recovering Vault in lockstep.
    """
    cap = min(policy.backoff_max, policy.backoff_initial * (2.0 ** min(attempt, 32)))
    return rng.uniform(0.0, cap)


def retry_delay(
    attempt: int,
    policy: RetryPolicy,
    rng: random.Random,
    *,
    now: float,
    deadline: float,
    retry_after: float | None = None,
) -> float | None:
    """Seconds to wait before retry ``attempt + 1``, or None when no retry is left.

    The wait is full-jitter backoff, or Vault's ``Retry-After`` when it sent one; a retry
    that would start past ``deadline`` is not made.
    """
    if attempt >= policy.max_retries:
        return None
    delay = backoff_delay(attempt, policy, rng) if retry_after is None else retry_after
    return None if now + delay >= deadline else delay


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/bad."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:  # pragma: no cover - older Pythons
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
