"""A 429's ``Retry-After`` is honoured up to ``LeaseConfig.max_quota_wait``, never beyond.

Without a valid credential (first login, a revoked token) nothing else bounds the wait, so
a quota's long ``block_interval`` or a bogus header must not park the engine for a day.
"""

from __future__ import annotations

import logging
import math
import random

import pytest

from vault_async.lifecycle import Lease, LeaseConfig, LeaseManager, VirtualClock
from vault_async.lifecycle import _policy as policy

from .test_rate_limits import QuotaSource

HUGE = (86_400.0, 1e9, 2.27e9)  # a day-long block_interval, a bogus number, an HTTP date in 2099


@pytest.mark.parametrize("retry_after", HUGE)
def test_a_huge_retry_after_without_a_lease_is_capped(retry_after: float) -> None:
    rng = random.Random(3)
    config = LeaseConfig()
    waits = [
        policy.after_failure(
            "rotate", None, gone=False, required=True, attempt=attempt, grace=0.0, now=50.0,
            config=config, rng=rng, retry_after=retry_after,
        ).due - 50.0
        for attempt in range(1, 40)
        for _ in range(20)
    ]
    assert max(waits) <= config.max_quota_wait
    # Still spread, so a fleet refused together does not come back together at the cap.
    assert max(waits) - min(waits) > config.backoff_max / 4


def test_a_retry_after_within_the_cap_is_honoured_in_full() -> None:
    rng = random.Random(5)
    config = LeaseConfig()
    waits = [
        policy.after_failure(
            "rotate", None, gone=False, required=True, attempt=1, grace=0.0, now=0.0,
            config=config, rng=rng, retry_after=config.backoff_max,
        ).due
        for _ in range(300)
    ]
    assert min(waits) >= config.backoff_max
    assert max(waits) <= config.max_quota_wait


def test_half_the_lease_left_still_caps_below_max_quota_wait() -> None:
    rng = random.Random(7)
    lease = Lease("database/creds/app/x", 60.0, True, {}, obtained_at=0.0, expires_at=140.0)
    for attempt in range(1, 10):
        step = policy.after_failure(
            "renew", lease, gone=False, required=False, attempt=attempt, grace=6.0, now=100.0,
            config=LeaseConfig(), rng=rng, retry_after=1e9,
        )
        assert step.due <= 120.0


def test_max_quota_wait_must_be_a_bound() -> None:
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="max_quota_wait"):
            LeaseConfig(max_quota_wait=bad)
    with pytest.raises(ValueError, match="max_quota_wait"):
        LeaseConfig(max_quota_wait=30.0, backoff_floor=31.0, backoff_max=60.0)


async def test_the_engine_logs_in_again_within_the_cap_and_says_how_long_it_waits(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="vault_async.lifecycle")
    quota = QuotaSource(clock, refusals=3, retry_after=1e9)
    config = LeaseConfig(max_quota_wait=90.0)
    async with LeaseManager(None, config, clock=clock, rng=random.Random(3)) as mgr:
        handle = mgr.manage(quota.source())
        for _ in range(4 * 90 + 10):
            await clock.advance(1.0)
            if handle.ready:
                break
        assert handle.ready, quota.acquires
    assert len(quota.acquires) == 4
    failed = [r for r in caplog.records if r.getMessage() == "lease.failed"]
    warnings = [r for r in failed if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # one warning for the run of 429s, as before
    told = warnings[0].__dict__
    assert told["retry_after"] == 1e9  # what Vault asked
    assert 0.0 < float(told["retry_in"]) <= 90.0  # what the engine does
