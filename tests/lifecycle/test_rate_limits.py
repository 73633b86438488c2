"""Rate-limit quotas (429) and a fleet's start-up, on a virtual clock.

A 429 from a quota means Vault refused before doing anything: the engine tries again
later, after Vault's ``Retry-After`` when it sent one (plus jitter, so a fleet refused in
the same second does not come back in the same second), else after its usual backoff;
never so late that a valid credential expires waiting. A start-up jitter spreads the
first login and credential request of a fleet that starts together.
"""

from __future__ import annotations

import itertools
import logging
import math
import random

import pytest

from vault_async._exceptions import RateLimited
from vault_async.lifecycle import (
    Grant,
    Lease,
    LeaseConfig,
    LeaseManager,
    SecretSource,
    VirtualClock,
)
from vault_async.lifecycle import _policy as policy


def _rate_limited(retry_after: float | None) -> RateLimited:
    return RateLimited(
        "rate limited", status=429, method="GET", path="database/creds/app",
        errors=("request path \"database/creds/app\": rate limit quota exceeded",),
        retry_after=retry_after,
    )


class QuotaSource:
    """A dynamic credential whose first ``refusals`` acquisitions (and renewals while
    ``renew_refused``) answer 429."""

    def __init__(
        self, clock: VirtualClock, *, refusals: int, retry_after: float | None, ttl: float = 60.0
    ) -> None:
        self.clock = clock
        self.refusals = refusals
        self.retry_after = retry_after
        self.ttl = ttl
        self.renew_refused = False
        self.acquires: list[float] = []
        self.renews: list[float] = []

    def source(self) -> SecretSource:
        async def acquire() -> Grant:
            self.acquires.append(self.clock.now())
            if len(self.acquires) <= self.refusals:
                raise _rate_limited(self.retry_after)
            n = len(self.acquires)
            return Grant(f"database/creds/app/lease{n:04d}", self.ttl, True, {"username": "v"})

        async def renew(current: Lease) -> Grant:
            self.renews.append(self.clock.now())
            if self.renew_refused:
                raise _rate_limited(self.retry_after)
            return Grant(current.lease_id, self.ttl, True, {})

        async def revoke(current: Lease) -> None:
            return None

        return SecretSource("database_dynamic", "database/creds/app", acquire, renew, revoke)


# ----------------------------------------------------------------------------- the policy


def test_retry_after_is_the_least_wait_and_a_fleet_spreads_above_it() -> None:
    rng = random.Random(7)
    config = LeaseConfig()
    waits = [
        policy.after_failure(
            "rotate", None, gone=False, required=True, attempt=1, grace=0.0, now=100.0,
            config=config, rng=rng, retry_after=4.0,
        ).due - 100.0
        for _ in range(500)
    ]
    assert min(waits) >= 4.0
    assert max(waits) <= 8.0
    # Spread over the second interval, not all at 4 s: a fleet refused together comes
    # back apart.
    assert max(waits) - min(waits) > 3.0


def test_retry_after_never_outlasts_the_lease_left() -> None:
    rng = random.Random(7)
    lease = Lease("database/creds/app/x", 60.0, True, {}, obtained_at=0.0, expires_at=110.0)
    for attempt in range(1, 20):
        step = policy.after_failure(
            "renew", lease, gone=False, required=False, attempt=attempt, grace=6.0, now=100.0,
            config=LeaseConfig(), rng=rng, retry_after=300.0,
        )
        assert step.due <= 105.0  # half of the 10 s left: a retry can still save it


def test_a_zero_retry_after_is_no_tight_loop() -> None:
    rng = random.Random(7)
    config = LeaseConfig()
    for attempt in range(1, 10):
        step = policy.after_failure(
            "rotate", None, gone=False, required=True, attempt=attempt, grace=0.0, now=0.0,
            config=config, rng=rng, retry_after=0.0,
        )
        assert step.due >= config.backoff_floor


# ----------------------------------------------------------------------------- the engine


async def test_the_engine_waits_out_retry_after(clock: VirtualClock) -> None:
    quota = QuotaSource(clock, refusals=3, retry_after=5.0)
    async with LeaseManager(None, LeaseConfig(), clock=clock, rng=random.Random(3)) as mgr:
        handle = mgr.manage(quota.source())
        for _ in range(60):
            await clock.advance(1.0)
        assert handle.ready
        assert len(quota.acquires) == 4
        gaps = [b - a for a, b in itertools.pairwise(quota.acquires)]
        assert all(gap >= 5.0 for gap in gaps), gaps
        assert handle.consecutive_failures == 0


async def test_without_retry_after_the_engine_backs_off(clock: VirtualClock) -> None:
    quota = QuotaSource(clock, refusals=6, retry_after=None)
    config = LeaseConfig()
    async with LeaseManager(None, config, clock=clock, rng=random.Random(3)) as mgr:
        handle = mgr.manage(quota.source())
        for _ in range(400):
            await clock.advance(1.0)
        assert handle.ready
        gaps = [b - a for a, b in itertools.pairwise(quota.acquires)]
        assert all(gap >= config.backoff_floor for gap in gaps), gaps
        assert len(quota.acquires) == 7


async def test_renewals_refused_by_a_quota_never_let_the_credential_lapse(
    clock: VirtualClock,
) -> None:
    quota = QuotaSource(clock, refusals=0, retry_after=30.0, ttl=60.0)
    async with LeaseManager(None, LeaseConfig(), clock=clock, rng=random.Random(5)) as mgr:
        handle = mgr.manage(quota.source())
        await clock.advance(1.0)
        assert handle.ready
        quota.renew_refused = True
        first = handle.current
        assert first is not None
        for _ in range(600):
            await clock.advance(0.25)
            current = handle.current
            assert current is not None
            assert current.expires_at > clock.now(), clock.now()
            if handle.generation > 1:
                break
        # Refused renewals led to a replacement before the first lease ran out.
        assert handle.generation == 2
        assert first.expires_at > quota.acquires[-1]
        assert mgr.snapshot()[handle.name].ready


async def test_a_run_of_429_logs_one_warning(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="vault_async.lifecycle")
    quota = QuotaSource(clock, refusals=8, retry_after=None)
    async with LeaseManager(None, LeaseConfig(), clock=clock, rng=random.Random(3)) as mgr:
        handle = mgr.manage(quota.source())
        for _ in range(600):
            await clock.advance(1.0)
        assert handle.ready
    failed = [r for r in caplog.records if r.getMessage() == "lease.failed"]
    assert len(failed) == 8
    warnings = [r for r in failed if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.levelname for r in failed]


# ----------------------------------------------------------------------------- start-up jitter


async def test_startup_jitter_delays_the_first_request_once(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vault_async.lifecycle")
    starts = []
    for seed in range(8):
        quota = QuotaSource(clock, refusals=0, retry_after=None)
        config = LeaseConfig(startup_jitter=10.0)
        began = clock.now()
        async with LeaseManager(None, config, clock=clock, rng=random.Random(seed)) as mgr:
            first = mgr.manage(quota.source(), name="one")
            second = mgr.manage(quota.source(), name="two")
            for _ in range(120):
                await clock.advance(0.1)
            assert first.ready
            assert second.ready
        starts.append(quota.acquires[0] - began)
        # Both handles of one process wait the same single delay.
        assert quota.acquires[1] - quota.acquires[0] < 0.2
    assert all(0.0 <= s <= 10.0 + 0.1 for s in starts), starts
    assert max(starts) - min(starts) > 3.0, starts  # processes spread out
    lines = [r for r in caplog.records if r.getMessage() == "startup.jitter"]
    assert len(lines) == 8  # once per process
    assert all(r.levelno == logging.INFO for r in lines)
    assert all(0.0 <= float(r.__dict__["delay"]) <= 10.0 for r in lines)


async def test_no_startup_jitter_by_default(clock: VirtualClock) -> None:
    quota = QuotaSource(clock, refusals=0, retry_after=None)
    assert LeaseConfig().startup_jitter == 0.0
    async with LeaseManager(None, LeaseConfig(), clock=clock, rng=random.Random(1)) as mgr:
        mgr.manage(quota.source())
        await clock.advance(0.01)
    assert quota.acquires == [0.0]


def test_startup_jitter_must_be_a_bound() -> None:
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="startup_jitter"):
            LeaseConfig(startup_jitter=bad)


def test_retry_after_zero_still_backs_off_as_attempts_grow() -> None:
    """OpenBao sends ``Retry-After: 0`` when the quota resets within the second."""
    rng = random.Random(11)
    config = LeaseConfig()
    late = [
        policy.after_failure(
            "rotate", None, gone=False, required=True, attempt=6, grace=0.0, now=0.0,
            config=config, rng=rng, retry_after=0.0,
        ).due
        for _ in range(200)
    ]
    assert max(late) > 16.0  # the 6th attempt spreads over 32 s, as without Retry-After
    assert max(late) <= config.backoff_max
