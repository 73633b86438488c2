"""``force_rotate`` from a pool: which generation failed, and whether Vault refused.

A login rejected with a credential that was already replaced must not replace the new one,
and with Vault refusing (a 4xx) forced rotations must not call it more often than the
engine's own retries do. Virtual time against the in-memory Vault.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random

from vault_async._exceptions import Forbidden
from vault_async.lifecycle import LeaseConfig, LeaseManager, VirtualClock
from vault_async.lifecycle._sources import SecretSource

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


def _refusing(vault: FakeVault, refuse: list[bool]) -> SecretSource:
    source = vault.source()
    acquire = source.acquire

    async def maybe_refused() -> object:
        if refuse[0]:
            vault._check("acquire")
            raise Forbidden("permission denied", status=403)
        return await acquire()

    return dataclasses.replace(source, acquire=maybe_refused)  # type: ignore[arg-type]


async def _acquires_while_refused(clock: VirtualClock, *, forcing: bool) -> list[float]:
    vault = FakeVault(clock, ttl=20.0, max_ttl=20.0)
    refuse = [False]
    config = LeaseConfig(min_force_interval=1.0)
    async with LeaseManager(None, config, clock=clock, rng=random.Random(5)) as mgr:
        handle = mgr.manage(_refusing(vault, refuse))
        await handle.wait_ready(timeout=5)
        refuse[0] = True
        await clock.advance(40.0)  # the credential has expired; Vault says 403
        assert handle.last_error_class == "Forbidden"
        start = clock.now()
        for _ in range(120):  # pools' rejected logins, every 0.25 s for 30 s
            if forcing:
                with contextlib.suppress(Forbidden):
                    await handle.force_rotate("database rejected the login")
            await clock.advance(0.25)
        return [t - start for t in vault.times("acquire") if t >= start]


async def test_forced_rotations_do_not_call_a_refusing_vault_more_often() -> None:
    quiet = await _acquires_while_refused(VirtualClock(), forcing=False)
    forced = await _acquires_while_refused(VirtualClock(), forcing=True)
    assert forced == quiet
