"""The ``rotated`` event tells a pool how long the replaced credential stays usable."""

from __future__ import annotations

import random

import pytest

from vault_async._prewarm import Prewarm, rollover_budget
from vault_async.lifecycle import LeaseConfig, LeaseEvent, LeaseManager, VirtualClock

from .conftest import FakeVault


async def test_rotated_event_says_when_the_replaced_lease_is_revoked_at_the_latest(
    clock: VirtualClock,
) -> None:
    vault = FakeVault(clock, ttl=600.0, max_ttl=100_000.0)
    events: list[LeaseEvent] = []
    config = LeaseConfig(min_force_interval=0.0, revoke_lead=5.0)
    async with LeaseManager(None, config, clock=clock, rng=random.Random(3)) as mgr:
        handle = mgr.manage(vault.source())
        handle.subscribe(events.append)
        await handle.wait_ready(timeout=5)
        await clock.advance(100.0)
        await handle.force_rotate("test")
    [rotated] = [e for e in events if e.kind == "rotated"]
    # The old lease had 500 s left; it is revoked revoke_lead before its end at the latest.
    assert rotated.previous_valid_for == pytest.approx(495.0, abs=1.0)


@pytest.mark.parametrize(
    ("valid_for", "longest_hold", "expected"),
    [
        (100.0, 0.05, 25.0),  # a long lease: a quarter of it (Prewarm.timeout caps it)
        (2.0, 0.05, 0.5),  # a short one: a quarter of what is left
        (2.0, 0.9, 0.2),  # slow requests need the rest: 2 - 2 x 0.9
        (2.0, 1.5, 0.0),  # slower still: switch at once
    ],
)
def test_the_warm_up_leaves_the_old_login_time_for_the_requests_on_it(
    valid_for: float, longest_hold: float, expected: float
) -> None:
    assert rollover_budget(Prewarm(share=0.25), valid_for, longest_hold) == pytest.approx(expected)


def test_prewarm_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Prewarm(concurrency=0)
    with pytest.raises(ValueError, match="share"):
        Prewarm(share=1.5)
