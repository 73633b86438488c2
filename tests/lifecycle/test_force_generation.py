"""``force_rotate`` from a pool: which generation failed, and whether Vault refused.

A login rejected with a credential that was already replaced must not replace the new one,
and with Vault refusing (a 4xx) forced rotations must not call it more often than the
engine's own retries do. Virtual time against the in-memory Vault.
"""

from __future__ import annotations

import random

from vault_async.lifecycle import LeaseConfig, LeaseManager, VirtualClock

from .conftest import FakeVault


async def test_force_rotate_for_a_replaced_generation_keeps_the_current_one(
    clock: VirtualClock,
) -> None:
    vault = FakeVault(clock)
    config = LeaseConfig(min_force_interval=1.0)
    async with LeaseManager(None, config, clock=clock, rng=random.Random(3)) as mgr:
        handle = mgr.manage(vault.source())
        await handle.wait_ready(timeout=5)
        await clock.advance(2.0)
        second = await handle.force_rotate("database rejected the login", generation=1)
        assert handle.generation == 2
        await clock.advance(2.0)  # past min_force_interval
        acquires = len(vault.times("acquire"))
        # A login made with generation 1 before the rotation is rejected afterwards.
        answer = await handle.force_rotate("database rejected the login", generation=1)
        assert answer is second
        assert handle.generation == 2
        assert len(vault.times("acquire")) == acquires
        # The current generation rejected: that one is replaced.
        await handle.force_rotate("database rejected the login", generation=2)
        assert handle.generation == 3
