"""Fakes for the lease engine: an in-memory Vault lease table driven by a virtual clock."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from vault_async._exceptions import InvalidRequest, VaultConnectionError
from vault_async.lifecycle import Grant, Lease, LeaseManager, SecretSource, VirtualClock


@dataclass
class FakeLease:
    lease_id: str
    issued_at: float
    expires_at: float
    max_expires_at: float
    password: str
    revoked: bool = False


@dataclass
class FakeVault:
    """Dynamic leases with a default TTL and a max TTL, on a virtual clock."""

    clock: VirtualClock
    ttl: float = 60.0
    max_ttl: float = 300.0
    down: bool = False
    leases: dict[str, FakeLease] = field(default_factory=dict)
    calls: list[tuple[str, float]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def _check(self, op: str) -> None:
        self.calls.append((op, self.clock.now()))
        if self.down:
            raise VaultConnectionError("connection refused (fake)")

    def valid(self, lease_id: str, at: float | None = None) -> bool:
        lease = self.leases.get(lease_id)
        now = self.clock.now() if at is None else at
        return lease is not None and not lease.revoked and now < lease.expires_at

    def source(self, name: str = "database/creds/app") -> SecretSource:
        async def acquire() -> Grant:
            self._check("acquire")
            now = self.clock.now()
            n = next(self._ids)
            lease = FakeLease(f"database/creds/app/lease{n:06d}", now, now + self.ttl,
                              now + self.max_ttl, f"pw-{n}")
            self.leases[lease.lease_id] = lease
            return Grant(lease.lease_id, self.ttl, True,
                         {"username": f"v-app-{n}", "password": lease.password})

        async def renew(current: Lease) -> Grant:
            self._check("renew")
            now = self.clock.now()
            lease = self.leases.get(current.lease_id)
            if lease is None or lease.revoked or now >= lease.expires_at:
                raise InvalidRequest("lease not found or lease is not renewable", status=400)
            lease.expires_at = min(now + self.ttl, lease.max_expires_at)
            return Grant(lease.lease_id, int(lease.expires_at - now), True, {})

        async def revoke(current: Lease) -> None:
            self._check("revoke")
            if current.lease_id in self.leases:
                self.leases[current.lease_id].revoked = True

        return SecretSource("database_dynamic", name, acquire, renew, revoke)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)


@pytest.fixture
def fake_vault(clock: VirtualClock) -> FakeVault:
    return FakeVault(clock)


@pytest.fixture
async def manager(clock: VirtualClock, rng: random.Random) -> AsyncIterator[LeaseManager]:
    async with LeaseManager(clock=clock, rng=rng, drain_period=5.0, shutdown_timeout=5.0) as mgr:
        yield mgr
