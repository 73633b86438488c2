"""The scheduler on virtual time against the in-memory fake Vault."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random

import anyio
import pytest

from vault_async.lifecycle import LeaseConfig, LeaseEvent, LeaseManager, VirtualClock
from vault_async.lifecycle._renewer import Renewer

from .conftest import FakeClient, FakeVault


async def test_renewal_instants_stay_within_jitter_bounds(
    manager: LeaseManager, clock: VirtualClock, fake_vault: FakeVault
) -> None:
    fake_vault.ttl, fake_vault.max_ttl = 60.0, 100_000.0
    handle = manager.manage(fake_vault.source())
    await handle.wait_ready(timeout=5)
    await clock.advance(600)
    renewals = fake_vault.times("renew")
    assert len(renewals) >= 12
    # Each renewal leaves 60 s of lease; the next one comes at 2/3 of it plus a
    # third of a grace drawn in [6, 12): between 42 and 44 s later.
    gaps = [b - a for a, b in zip([0.0, *renewals], renewals, strict=False)]
    assert all(42.0 <= g < 44.0 for g in gaps), gaps
    assert max(gaps) - min(gaps) > 0.2  # jittered, not lockstep
    assert handle.renewals == len(renewals)
    assert handle.generation == 1
    assert handle.rotations == 0


async def test_max_ttl_leads_to_rotation_before_expiry(
    manager: LeaseManager, clock: VirtualClock, fake_vault: FakeVault
) -> None:
    fake_vault.ttl, fake_vault.max_ttl = 60.0, 150.0
    handle = manager.manage(fake_vault.source())
    seen: list[tuple[LeaseEvent, bool, bool]] = []

    def on_event(event: LeaseEvent) -> None:
        assert handle.current is not None
        old_valid = all(fake_vault.valid(lid) for lid in first_ids)
        seen.append((event, fake_vault.valid(handle.current.lease_id), old_valid))

    handle.subscribe(on_event)
    first = await handle.wait_ready(timeout=5)
    first_ids = [first.lease_id]
    for _ in range(200):
        await clock.advance(1)
        assert handle.current is not None
        assert fake_vault.valid(handle.current.lease_id), clock.now()
    kinds = [e.kind for e, _, _ in seen]
    assert kinds.index("expiring") < kinds.index("rotated") < kinds.index("revoked")
    rotated = next((e, cur, old) for e, cur, old in seen if e.kind == "rotated")
    # When "rotated" fires the new credential is current and valid, the old one still valid.
    assert rotated[0].generation == 2
    assert rotated[1]
    assert rotated[2]
    old = fake_vault.leases[first.lease_id]
    assert old.revoked
    assert handle.rotations >= 1
    new_obtained = handle.current.obtained_at if handle.rotations == 1 else None
    if new_obtained is not None:
        assert new_obtained < old.max_expires_at


async def test_backoff_grows_capped_by_lease_and_keeps_credential(
    clock: VirtualClock, fake_vault: FakeVault, caplog: pytest.LogCaptureFixture
) -> None:
    fake_vault.ttl, fake_vault.max_ttl = 600.0, 100_000.0
    async with LeaseManager(
        None,
        LeaseConfig(backoff_base=1.0, backoff_max=300.0, backoff_floor=0.5),
        clock=clock,
        rng=random.Random(3),
    ) as mgr:
        handle = mgr.manage(fake_vault.source())
        lease = await handle.wait_ready(timeout=5)
        first_renew = lease.expires_at - 600.0 + 400.0  # well before any renewal
        await clock.advance(first_renew - clock.now() - 1.0)
        fake_vault.down = True
        caplog.set_level(logging.DEBUG, logger="vault_async.lifecycle")
        await clock.advance(199.0)
        state = mgr.snapshot()[handle.name]
        assert state.degraded
        assert state.consecutive_failures >= 5
        assert state.last_error_class == "VaultConnectionError"
        assert handle.current is not None
        assert handle.current.lease_id == lease.lease_id  # credential kept
        attempts = [t for op, t in fake_vault.calls if op in ("renew", "acquire")][-20:]
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert max(gaps) > 8.0  # it grew past the first few bounds
        for t, gap in zip(attempts, gaps, strict=False):
            assert gap >= 0.5 - 1e-9
            assert gap <= max(0.5, lease.expires_at - t) + 1e-9  # never past the lease
        fake_vault.down = False
        await clock.advance(300.0)
        state = mgr.snapshot()[handle.name]
        assert not state.degraded
        assert state.consecutive_failures == 0
        assert fake_vault.valid(handle.current.lease_id)
    assert "pw-" not in caplog.text


async def test_lease_revoked_outside_is_replaced_at_next_renewal(
    manager: LeaseManager, clock: VirtualClock, fake_vault: FakeVault
) -> None:
    handle = manager.manage(fake_vault.source())
    lease = await handle.wait_ready(timeout=5)
    fake_vault.leases[lease.lease_id].revoked = True
    await clock.advance(fake_vault.ttl)
    renew_at = fake_vault.times("renew")[0]
    acquire_at = fake_vault.times("acquire")[-1]
    assert handle.generation == 2
    assert 0.0 <= acquire_at - renew_at <= manager.config.backoff_floor
    assert handle.current is not None
    assert fake_vault.valid(handle.current.lease_id)


async def test_ten_thousand_leases_on_one_task(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=60.0, max_ttl=100_000.0)
    before = asyncio.all_tasks()
    async with LeaseManager(clock=clock, rng=random.Random(5)) as mgr:
        handles = [mgr.manage(vault.source(f"lease-{i}")) for i in range(10_000)]
        await clock.advance(1.0)
        assert all(h.ready for h in handles)
        await clock.advance(120.0)
        assert len(asyncio.all_tasks() - before) == 1  # the scheduler, nothing per lease
        assert sum(h.renewals for h in handles) >= 20_000
        assert all(vault.valid(h.current.lease_id) for h in handles if h.current)
    assert all(lease.revoked for lease in vault.leases.values())


async def test_shutdown_revokes_current_and_draining(
    clock: VirtualClock, fake_vault: FakeVault
) -> None:
    fake_vault.ttl, fake_vault.max_ttl = 60.0, 90.0
    async with LeaseManager(
        None, LeaseConfig(drain_period=1000.0), clock=clock, rng=random.Random(2)
    ) as mgr:
        handle = mgr.manage(fake_vault.source())
        await handle.wait_ready(timeout=5)
        await clock.advance(80.0)
        assert handle.rotations == 1
        assert sum(not lease.revoked for lease in fake_vault.leases.values()) == 2
    assert fake_vault.leases
    assert all(lease.revoked for lease in fake_vault.leases.values())


async def test_no_revocation_when_disabled(clock: VirtualClock, fake_vault: FakeVault) -> None:
    async with LeaseManager(None, LeaseConfig(revoke_on_shutdown=False), clock=clock) as mgr:
        await mgr.manage(fake_vault.source()).wait_ready(timeout=5)
    assert not any(lease.revoked for lease in fake_vault.leases.values())


async def test_force_rotate_is_shared_by_concurrent_callers(
    manager: LeaseManager, clock: VirtualClock, fake_vault: FakeVault
) -> None:
    handle = manager.manage(fake_vault.source())
    first = await handle.wait_ready(timeout=5)
    await clock.advance(5.0)
    results = []

    async def rotate() -> None:
        results.append(await handle.force_rotate("login rejected"))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(rotate)
    assert len(fake_vault.times("acquire")) == 2
    assert {r.lease_id for r in results} == {handle.current.lease_id}
    assert handle.current.lease_id != first.lease_id
    assert handle.generation == 2


async def test_failure_event_and_callback_errors_do_not_kill_the_loop(
    manager: LeaseManager, clock: VirtualClock, fake_vault: FakeVault
) -> None:
    handle = manager.manage(fake_vault.source())
    kinds: list[str] = []

    async def bad(event: LeaseEvent) -> None:
        kinds.append(event.kind)
        raise RuntimeError("subscriber bug")

    handle.subscribe(bad)
    await handle.wait_ready(timeout=5)
    fake_vault.down = True
    await clock.advance(45.0)
    fake_vault.down = False
    await clock.advance(60.0)
    assert "failed" in kinds
    assert "renewed" in kinds
    assert handle.consecutive_failures == 0
    assert handle.total_failures >= 1


async def test_non_renewable_token_leads_to_relogin_and_leases_follow(
    clock: VirtualClock, fake_vault: FakeVault
) -> None:
    fake_vault.token_renewable = False
    fake_vault.token_ttl = fake_vault.token_max_ttl = 120.0
    fake_vault.ttl, fake_vault.max_ttl = 60.0, 100_000.0
    client = FakeClient(fake_vault)
    async with LeaseManager(client, clock=clock, rng=random.Random(9)) as mgr:
        token = mgr.manage_token(client, object())
        creds = mgr.manage_database_credentials(role="app")
        await creds.wait_ready(timeout=5)
        for _ in range(400):
            await clock.advance(1.0)
            assert creds.current is not None
            assert fake_vault.valid(creds.current.lease_id), clock.now()
            assert fake_vault.token_valid(client.token)
        assert fake_vault.logins >= 3
        assert token.generation >= 3
        assert creds.rotations >= 2
        assert creds.renewals >= 2
        snap = mgr.snapshot()
        assert snap[token.name].kind == "token"
        assert not snap[token.name].renewable
    # Shutdown: leases revoked first, then the token (revoke-self).
    assert fake_vault.times("revoke_self")
    assert fake_vault.tokens[client.token].revoked  # type: ignore[index]


async def test_renewable_token_is_renewed_until_max_ttl(
    clock: VirtualClock, fake_vault: FakeVault
) -> None:
    client = FakeClient(fake_vault)
    async with LeaseManager(client, clock=clock, rng=random.Random(4)) as mgr:
        token = mgr.manage_token(auth_method=object())
        await token.wait_ready(timeout=5)
        for _ in range(300):
            await clock.advance(1.0)
            assert fake_vault.token_valid(client.token)
        assert token.renewals >= 1
        assert fake_vault.logins >= 2


async def test_static_role_is_reread_after_rotation(
    clock: VirtualClock, fake_vault: FakeVault
) -> None:
    client = FakeClient(fake_vault)
    async with LeaseManager(client, clock=clock, rng=random.Random(8)) as mgr:
        static = mgr.manage_static_credentials(role="app-static")
        lease = await static.wait_ready(timeout=5)
        assert lease.data["password"] == "static-0"
        assert not lease.renewable
        await clock.advance(125.0)
        assert static.current is not None
        assert static.current.data["password"] == "static-1"
        assert static.generation == 2
        assert static.rotations == 1
        assert len(fake_vault.times("static")) == 2


async def test_snapshot_and_reprs_hold_no_secrets(
    manager: LeaseManager, fake_vault: FakeVault
) -> None:
    handle = manager.manage(fake_vault.source())
    lease = await handle.wait_ready(timeout=5)
    state = manager.snapshot()[handle.name]
    text = repr(lease) + repr(state) + repr(handle)
    assert lease.data["password"] not in text
    assert lease.lease_id not in text
    assert state.ready
    assert state.renewable
    assert state.generation == 1
    assert state.ttl_remaining == pytest.approx(fake_vault.ttl)
    assert state.expires_at is not None
    assert state.next_action == "renew"


async def test_static_ttl_zero_is_reread_shortly(
    clock: VirtualClock, fake_vault: FakeVault
) -> None:
    fake_vault.static_period = 120.0
    client = FakeClient(fake_vault)
    await clock.advance(119.5)  # the first read lands as Vault is about to rotate: ttl 0
    async with LeaseManager(client, clock=clock, rng=random.Random(8)) as mgr:
        static = mgr.manage_static_credentials(role="app-static")
        lease = await static.wait_ready(timeout=5)
        assert lease.data["ttl"] == 0
        await clock.advance(5.0)
        assert static.current is not None
        assert static.current.data["password"] == "static-1"
        assert mgr.snapshot()[static.name].next_action == "rotate"


async def test_force_rotate_after_shutdown_refuses(
    clock: VirtualClock, fake_vault: FakeVault
) -> None:
    async with LeaseManager(clock=clock) as mgr:
        handle = mgr.manage(fake_vault.source())
        await handle.wait_ready(timeout=5)
    with pytest.raises(RuntimeError, match="shut down"):
        await handle.force_rotate("too late")
    assert len(fake_vault.times("acquire")) == 1


async def test_token_kept_when_only_leases_are_revoked(
    clock: VirtualClock, fake_vault: FakeVault
) -> None:
    client = FakeClient(fake_vault)
    async with LeaseManager(
        client, LeaseConfig(revoke_token_on_shutdown=False), clock=clock
    ) as mgr:
        mgr.manage_token(auth_method=object())
        await mgr.manage_database_credentials(role="app").wait_ready(timeout=5)
    assert all(lease.revoked for lease in fake_vault.leases.values())
    assert not fake_vault.times("revoke_self")


async def test_internal_error_is_logged_and_the_loop_survives(
    clock: VirtualClock,
    fake_vault: FakeVault,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.ERROR, logger="vault_async.lifecycle")
    async with LeaseManager(None, LeaseConfig(backoff_max=10.0), clock=clock) as mgr:
        fake_vault.down = True

        async def broken(*args: object) -> None:
            raise RuntimeError("a bug in the failure path")

        monkeypatch.setattr(Renewer, "fail", broken)
        handle = mgr.manage(fake_vault.source())
        await clock.advance(1.0)
        assert "lease.internal_error" in [r.getMessage() for r in caplog.records]
        assert mgr.snapshot()[handle.name].next_action == "rotate"
        monkeypatch.undo()
        fake_vault.down = False
        await clock.advance(10.0)
        assert handle.ready
