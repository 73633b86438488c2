"""Recovery without hammering: a token revoked from outside, and force_rotate after failures.

Revoking a token also revokes every lease it created, so the calls made with it
answer 403 until the manager logs in again. And ``force_rotate`` (called by the
SQLAlchemy binding each time PostgreSQL rejects a login) must not call Vault
faster than the engine's backoff.
"""

from __future__ import annotations

import itertools
import random
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from vault_async._exceptions import Forbidden, InvalidRequest, VaultConnectionError
from vault_async.lifecycle import Lease, LeaseManager, ManagedSecret, VirtualClock

from .conftest import FakeClient, FakeVault

LATENCY = 0.05


class SlowClient(FakeClient):
    """A FakeClient whose calls take virtual time, so concurrent callers really overlap.

    Each call is checked when it completes, and ``refuse_logins`` makes logins fail.
    """

    refuse_logins = False

    async def login(self, method: Any) -> SimpleNamespace:
        await self.vault.clock.sleep(LATENCY)
        if self.refuse_logins:
            self.vault._check("login")
            raise InvalidRequest("invalid role or secret ID", status=400)
        return await super().login(method)

    async def _generate(self, name: str, mount_point: str = "database") -> SimpleNamespace:
        await self.vault.clock.sleep(LATENCY)
        return await super()._generate(name, mount_point)

    async def _renew(self, lease_id: str, increment: int | None = None) -> SimpleNamespace:
        await self.vault.clock.sleep(LATENCY)
        return await super()._renew(lease_id, increment)


def revoke_token(vault: FakeVault, client: FakeClient) -> None:
    """``auth/token/revoke-accessor`` from outside: the token and its leases are gone."""
    assert client.token is not None
    vault.tokens[client.token].revoked = True


async def rotate_all(
    clock: VirtualClock, handles: list[ManagedSecret], callers: int, span: float = 1.0
) -> list[Lease | BaseException]:
    """``callers`` concurrent force_rotate calls per handle while virtual time moves ``span``."""
    results: list[Lease | BaseException] = []

    async def rotate(handle: ManagedSecret) -> None:
        try:
            results.append(await handle.force_rotate("database rejected the login"))
        except Exception as exc:
            results.append(exc)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for handle in handles:
                for _ in range(callers):
                    tg.start_soon(rotate, handle)
            await clock.advance(span)
    return results


# ---------------------------------------------------------------------- bug 1: 403


async def test_forbidden_acquire_logs_in_again_once_for_all_callers(clock: VirtualClock) -> None:
    vault = FakeVault(clock)
    client = SlowClient(vault)
    async with LeaseManager(client, clock=clock, rng=random.Random(3)) as mgr:
        token = mgr.manage_token(client, object())
        creds = [mgr.manage_database_credentials(role="app", name=f"db{i}") for i in range(3)]
        await clock.advance(1.0)  # the login and the first credentials take virtual time
        firsts = [c.current for c in creds]
        assert all(lease is not None for lease in firsts)
        await clock.advance(5.0)
        revoke_token(vault, client)
        acquires = len(vault.times("acquire"))

        results = await rotate_all(clock, creds, callers=4)

        assert not [r for r in results if isinstance(r, BaseException)], results
        assert vault.logins == 2  # one login shared by the three secrets
        # Each secret: one call refused with 403, one retry with the fresh token.
        assert len(vault.times("acquire")) == acquires + 6
        assert not vault.times("renew")  # the "check the others" renewals were superseded
        for handle, first in zip(creds, firsts, strict=True):
            assert handle.current is not None
            assert first is not None
            assert handle.current.lease_id != first.lease_id
            assert vault.valid(handle.current.lease_id)
            assert handle.generation == 2
            assert (handle.consecutive_failures, handle.total_failures) == (0, 0)
        # The token's state counts the 403; the fresh login cleared the streak.
        assert token.generation == 2
        assert token.total_failures == 1
        assert token.consecutive_failures == 0
        assert token.last_error_class == "Forbidden"
        assert vault.token_valid(client.token)


async def test_forbidden_renewal_logs_in_again_and_replaces_every_dead_lease(
    clock: VirtualClock,
) -> None:
    vault = FakeVault(clock, ttl=60.0, max_ttl=100_000.0, token_ttl=600.0, token_max_ttl=6000.0)
    client = FakeClient(vault)
    async with LeaseManager(client, clock=clock, rng=random.Random(5)) as mgr:
        token = mgr.manage_token(client, object())
        creds = [mgr.manage_database_credentials(role="app", name=f"db{i}") for i in range(2)]
        for handle in creds:
            await handle.wait_ready(timeout=5)
        await clock.advance(5.0)
        revoke_token(vault, client)
        relogin_at = None
        for _ in range(60):  # the first renewal comes at about 40 s
            await clock.advance(1.0)
            if vault.logins == 2 and relogin_at is None:
                relogin_at = clock.now()
                # Within the same second every lease of the dead token was replaced,
                # not only the one whose renewal met the 403.
                for handle in creds:
                    assert handle.current is not None
                    assert vault.valid(handle.current.lease_id), handle.name
                    assert handle.generation == 2
        assert relogin_at is not None
        assert relogin_at < 50.0
        assert vault.logins == 2
        assert token.total_failures == 1
        assert token.consecutive_failures == 0
        for handle in creds:
            assert handle.current is not None
            assert vault.valid(handle.current.lease_id)
            assert handle.consecutive_failures == 0


async def test_refused_login_fails_the_secret_and_is_not_retried_within_backoff(
    clock: VirtualClock,
) -> None:
    vault = FakeVault(clock)
    client = SlowClient(vault)
    async with LeaseManager(client, clock=clock, rng=random.Random(7)) as mgr:
        token = mgr.manage_token(client, object())
        creds = mgr.manage_database_credentials(role="app")
        await clock.advance(1.0)  # the login and the first credentials take virtual time
        assert creds.current is not None
        await clock.advance(5.0)
        revoke_token(vault, client)
        client.refuse_logins = True

        [first] = await rotate_all(clock, [creds], callers=1, span=0.2)
        assert isinstance(first, Forbidden)
        assert creds.consecutive_failures == 1
        assert creds.last_error_class == "Forbidden"
        assert token.consecutive_failures == 2  # the 403, then the refused login
        assert token.last_error_class == "InvalidRequest"
        calls = len(vault.calls)

        # A burst of callers inside the backoff: none reaches Vault.
        burst = await rotate_all(clock, [creds], callers=20, span=0.0)
        assert all(isinstance(r, Forbidden) for r in burst), burst
        assert len(vault.calls) == calls

        # Logins work again: the scheduled retries recover both, by themselves.
        client.refuse_logins = False
        await clock.advance(120.0)
        assert token.consecutive_failures == 0
        assert creds.consecutive_failures == 0
        assert creds.current is not None
        assert vault.valid(creds.current.lease_id)
        assert vault.token_valid(client.token)


# ------------------------------------------------------------- bug 2: force_rotate storms


async def test_force_rotate_after_a_failure_waits_for_the_backoff(
    manager: LeaseManager, clock: VirtualClock, fake_vault: FakeVault
) -> None:
    handle = manager.manage(fake_vault.source())
    await handle.wait_ready(timeout=5)
    await clock.advance(5.0)
    fake_vault.down = True
    with pytest.raises(VaultConnectionError):
        await handle.force_rotate("database rejected the login")
    acquires = len(fake_vault.times("acquire"))
    assert handle.consecutive_failures == 1

    # Rapid callers, one after the other and all at once: the last error, no Vault call.
    for _ in range(50):
        with pytest.raises(VaultConnectionError):
            await handle.force_rotate("database rejected the login")
    burst = await rotate_all(clock, [handle], callers=20, span=0.0)
    assert all(isinstance(r, VaultConnectionError) for r in burst), burst
    assert len(fake_vault.times("acquire")) == acquires
    assert handle.consecutive_failures == 1

    # A storm: a call every 50 ms for 30 s (600 calls), plus the scheduled retries.
    for _ in range(600):
        with pytest.raises(VaultConnectionError):
            await handle.force_rotate("database rejected the login")
        await clock.advance(0.05)
    attempts = fake_vault.times("acquire")[acquires - 1 :]  # from the first failed one
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    # Without the backoff this would be 600 calls; full jitter growing from 1 s
    # allows a handful. Never two attempts closer than the floor.
    assert 3 <= len(attempts) <= 15, attempts
    assert all(g >= manager.config.backoff_floor for g in gaps), gaps
    assert handle.consecutive_failures == len(attempts)
    assert max(gaps) > 2.0  # the delay grew with the failures

    # Vault is back: the scheduled retry recovers within the (capped) backoff.
    fake_vault.down = False
    await clock.advance(60.0)
    assert handle.consecutive_failures == 0
    assert handle.current is not None
    assert fake_vault.valid(handle.current.lease_id)
    lease = await handle.force_rotate("database rejected the login")
    assert fake_vault.valid(lease.lease_id)
