"""No valid credential left (Vault unreachable past the lease's end): recover promptly.

While a credential is valid the retries back off up to ``backoff_max``, capped by half
the lease left. Once nothing valid is left, nothing but ``expired_retry_max`` caps them,
and a ``force_rotate`` from the pool (a login the database rejected) tries at once,
at most once per ``min_force_interval``.
"""

from __future__ import annotations

import itertools
import logging
import random

import pytest

from vault_async._exceptions import VaultConnectionError
from vault_async.lifecycle import LeaseConfig, LeaseManager, VirtualClock

from .conftest import FakeVault


async def test_with_the_credential_expired_retries_stay_short(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=20.0, max_ttl=20.0)
    config = LeaseConfig(drain_period=5.0, shutdown_timeout=5.0)
    async with LeaseManager(None, config, clock=clock, rng=random.Random(11)) as mgr:
        handle = mgr.manage(vault.source())
        await handle.wait_ready(timeout=5)
        vault.down = True
        await clock.advance(300.0)  # an outage far longer than the credential
        assert handle.current is not None
        assert handle.current.expires_at < clock.now()
        expired_at = handle.current.expires_at
        attempts = [t for t in vault.times("acquire") if t > expired_at]
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        # Before: full jitter up to 60 s, a handful of attempts in 280 s, gaps of tens of s.
        assert max(gaps) <= config.expired_retry_max, gaps
        assert min(gaps) >= config.backoff_floor, gaps

        vault.down = False
        resumed = clock.now()
        await clock.advance(config.expired_retry_max)
        assert handle.consecutive_failures == 0, clock.now() - resumed
        assert vault.valid(handle.current.lease_id)


async def test_expired_retry_max_is_a_setting(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=20.0, max_ttl=20.0)
    config = LeaseConfig(expired_retry_max=2.0)
    async with LeaseManager(None, config, clock=clock, rng=random.Random(12)) as mgr:
        handle = mgr.manage(vault.source())
        await handle.wait_ready(timeout=5)
        vault.down = True
        await clock.advance(120.0)
        attempts = [t for t in vault.times("acquire") if t > 20.0]
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert max(gaps) <= 2.0, gaps


def test_expired_retry_max_is_checked() -> None:
    with pytest.raises(ValueError, match="expired_retry_max"):
        LeaseConfig(expired_retry_max=0.1)  # below backoff_floor
    with pytest.raises(ValueError, match="expired_retry_max"):
        LeaseConfig(expired_retry_max=float("inf"))


async def test_force_rotate_with_no_valid_credential_tries_now(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=20.0, max_ttl=20.0)
    config = LeaseConfig(drain_period=5.0, shutdown_timeout=5.0, expired_retry_max=60.0)
    async with LeaseManager(None, config, clock=clock, rng=random.Random(13)) as mgr:
        handle = mgr.manage(vault.source())
        await handle.wait_ready(timeout=5)
        vault.down = True
        await clock.advance(60.0)  # expired, and the scheduled retry backs off (up to 60 s here)
        assert handle.consecutive_failures > 0
        vault.down = False
        lease = await handle.force_rotate("database rejected the login")
        assert vault.valid(lease.lease_id)
        assert handle.consecutive_failures == 0


async def test_force_rotate_with_no_valid_credential_is_rate_limited(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=20.0, max_ttl=20.0)
    config = LeaseConfig(drain_period=5.0, shutdown_timeout=5.0, expired_retry_max=60.0)
    async with LeaseManager(None, config, clock=clock, rng=random.Random(14)) as mgr:
        handle = mgr.manage(vault.source())
        await handle.wait_ready(timeout=5)
        vault.down = True
        await clock.advance(60.0)
        before = len(vault.times("acquire"))
        # A request every 50 ms for 10 s, each asking for a new credential.
        for _ in range(200):
            with pytest.raises(VaultConnectionError):
                await handle.force_rotate("database rejected the login")
            await clock.advance(0.05)
        attempts = vault.times("acquire")[before:]
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert 5 <= len(attempts) <= 11, attempts  # about one per min_force_interval (1 s)
        assert min(gaps) >= config.min_force_interval - 1e-9, gaps


async def test_force_rotate_with_a_valid_credential_keeps_the_backoff(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=120.0, max_ttl=120.0)
    async with LeaseManager(None, LeaseConfig(), clock=clock, rng=random.Random(15)) as mgr:
        handle = mgr.manage(vault.source())
        await handle.wait_ready(timeout=5)
        await clock.advance(5.0)
        vault.down = True
        with pytest.raises(VaultConnectionError):
            await handle.force_rotate("database rejected the login")
        before = len(vault.times("acquire"))
        for _ in range(20):
            with pytest.raises(VaultConnectionError):
                await handle.force_rotate("database rejected the login")
            await clock.advance(0.05)
        assert len(vault.times("acquire")) - before <= 1


async def test_repeated_failures_with_no_valid_credential_warn_once_per_interval(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="vault_async.lifecycle")
    vault = FakeVault(clock, ttl=20.0, max_ttl=20.0)
    async with LeaseManager(None, LeaseConfig(), clock=clock, rng=random.Random(16)) as mgr:
        handle = mgr.manage(vault.source())
        await handle.wait_ready(timeout=5)
        vault.down = True
        await clock.advance(300.0)
        failures = handle.consecutive_failures
    failed = [r for r in caplog.records if r.getMessage() == "lease.failed"]
    warnings = [r for r in failed if r.levelno == logging.WARNING]
    assert len(failed) == failures > 60  # every failure is logged, most at DEBUG
    # The first failure, then at most one per 10 s (the credential expired at 20 s).
    assert len(warnings) <= 2 + 300 / 10, len(warnings)
    # Each WARNING counts the repeats logged at DEBUG since the previous one.
    assert 0 < sum(getattr(r, "suppressed", 0) for r in warnings) <= len(failed) - len(warnings)
