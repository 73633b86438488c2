from __future__ import annotations

from vault_async.lifecycle import LeaseEvent, LeaseManager, VirtualClock

from .conftest import FakeVault


async def test_renews_then_rotates_before_max_ttl(
    manager: LeaseManager, clock: VirtualClock, fake_vault: FakeVault
) -> None:
    events: list[LeaseEvent] = []
    handle = manager.manage(fake_vault.source())
    handle.subscribe(events.append)
    first = await handle.wait_ready(timeout=5)
    for _ in range(400):
        await clock.advance(1)
        assert handle.current is not None
        assert fake_vault.valid(handle.current.lease_id)
    kinds = [e.kind for e in events]
    assert "renewed" in kinds and "rotated" in kinds and "revoked" in kinds
    assert handle.generation >= 2
    assert fake_vault.leases[first.lease_id].revoked
