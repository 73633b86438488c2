"""Fakes for the lease engine: an in-memory Vault on a virtual clock."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from vault_async._exceptions import Forbidden, InvalidRequest, VaultConnectionError
from vault_async.lifecycle import (
    Grant,
    Lease,
    LeaseConfig,
    LeaseManager,
    SecretSource,
    VirtualClock,
)


@dataclass
class FakeLease:
    lease_id: str
    expires_at: float
    max_expires_at: float
    password: str
    token: str | None = None
    revoked: bool = False


@dataclass
class FakeToken:
    accessor: str
    expires_at: float
    max_expires_at: float
    renewable: bool
    revoked: bool = False


@dataclass
class FakeVault:
    """Dynamic leases with a default and a max TTL, tokens, and a static role."""

    clock: VirtualClock
    ttl: float = 60.0
    max_ttl: float = 300.0
    token_ttl: float = 100.0
    token_max_ttl: float = 250.0
    token_renewable: bool = True
    static_period: float = 120.0
    down: bool = False
    leases: dict[str, FakeLease] = field(default_factory=dict)
    tokens: dict[str, FakeToken] = field(default_factory=dict)
    calls: list[tuple[str, float]] = field(default_factory=list)
    logins: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def _check(self, op: str) -> None:
        self.calls.append((op, self.clock.now()))
        if self.down:
            raise VaultConnectionError("connection refused (fake)")

    def times(self, op: str) -> list[float]:
        return [t for name, t in self.calls if name == op]

    def token_valid(self, accessor: str | None, at: float | None = None) -> bool:
        if accessor is None:
            return True
        tok = self.tokens.get(accessor)
        now = self.clock.now() if at is None else at
        return tok is not None and not tok.revoked and now < tok.expires_at

    def valid(self, lease_id: str, at: float | None = None) -> bool:
        """A lease is valid while unexpired, unrevoked, and its creating token lives."""
        lease = self.leases.get(lease_id)
        now = self.clock.now() if at is None else at
        return (
            lease is not None
            and not lease.revoked
            and now < lease.expires_at
            and self.token_valid(lease.token, now)
        )

    # -- dynamic database credentials ------------------------------------------------
    def new_lease(self, token: str | None = None) -> FakeLease:
        now = self.clock.now()
        n = next(self._ids)
        lease = FakeLease(
            f"database/creds/app/lease{n:06d}",
            now + self.ttl,
            now + self.max_ttl,
            f"pw-{n}",
            token,
        )
        self.leases[lease.lease_id] = lease
        return lease

    def renew_lease(self, lease_id: str) -> float:
        now = self.clock.now()
        if not self.valid(lease_id):
            raise InvalidRequest("lease not found or lease is not renewable", status=400)
        lease = self.leases[lease_id]
        lease.expires_at = min(now + self.ttl, lease.max_expires_at)
        return float(round(lease.expires_at - now))

    def source(self, name: str = "database/creds/app") -> SecretSource:
        async def acquire() -> Grant:
            self._check("acquire")
            lease = self.new_lease()
            return Grant(
                lease.lease_id,
                self.ttl,
                True,
                {"username": f"v-{lease.lease_id[-6:]}", "password": lease.password},
            )

        async def renew(current: Lease) -> Grant:
            self._check("renew")
            return Grant(current.lease_id, self.renew_lease(current.lease_id), True, {})

        async def revoke(current: Lease) -> None:
            self._check("revoke")
            if current.lease_id in self.leases:
                self.leases[current.lease_id].revoked = True

        return SecretSource("database_dynamic", name, acquire, renew, revoke)


class FakeClient:
    """The handful of client methods the adapters call, backed by a FakeVault.

    ``creds_latency``: virtual seconds ``database/creds`` takes (a slow Vault).
    """

    creds_latency = 0.0

    def __init__(self, vault: FakeVault) -> None:
        self.vault = vault
        self.token: str | None = None
        self.auth = SimpleNamespace(
            token=SimpleNamespace(
                renew_self=self._renew_self,
                revoke_self=self._revoke_self,
                lookup_self=self._lookup_self,
            )
        )
        self.secrets = SimpleNamespace(
            database=SimpleNamespace(
                generate_credentials=self._generate, get_static_credentials=self._static
            )
        )
        self.sys = SimpleNamespace(leases=SimpleNamespace(renew=self._renew, revoke=self._revoke))

    def set_token(self, token: str | None) -> None:
        self.token = token

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Only token revocation by token goes through the raw request path."""
        assert (method, path) == ("POST", "auth/token/revoke-self"), path
        self.vault._check("revoke_self")
        accessor = kwargs["token"].removeprefix("s.token-")
        self.vault.tokens[accessor].revoked = True
        return {}

    async def _lookup_self(self) -> SimpleNamespace:
        self.vault._check("lookup_self")
        self._require_token()
        assert self.token is not None
        tok = self.vault.tokens[self.token]
        return SimpleNamespace(accessor=tok.accessor, expire_time="soon", ttl=0)

    def _require_token(self) -> None:
        if self.token is not None and not self.vault.token_valid(self.token):
            raise Forbidden("permission denied", status=403)

    async def login(self, method: Any) -> SimpleNamespace:
        v = self.vault
        v._check("login")
        v.logins += 1
        now = v.clock.now()
        accessor = f"accessor{next(v._ids):06d}"
        v.tokens[accessor] = FakeToken(
            accessor, now + v.token_ttl, now + v.token_max_ttl, v.token_renewable
        )
        self.token = accessor
        return SimpleNamespace(
            client_token=f"s.token-{accessor}",
            accessor=accessor,
            lease_duration=int(v.token_ttl),
            renewable=v.token_renewable,
            policies=["app"],
            token_type="service",
        )

    async def _renew_self(self, increment: int | None = None) -> SimpleNamespace:
        v = self.vault
        v._check("renew_self")
        self._require_token()
        assert self.token is not None
        tok = v.tokens[self.token]
        if not tok.renewable:
            raise InvalidRequest("token not renewable", status=400)
        now = v.clock.now()
        tok.expires_at = min(now + v.token_ttl, tok.max_expires_at)
        return SimpleNamespace(
            client_token=f"s.token-{tok.accessor}",
            accessor=tok.accessor,
            lease_duration=int(tok.expires_at - now),
            renewable=True,
            policies=["app"],
            token_type="service",
        )

    async def _revoke_self(self) -> None:
        self.vault._check("revoke_self")
        if self.token is not None:
            self.vault.tokens[self.token].revoked = True

    async def _generate(self, name: str, mount_point: str = "database") -> SimpleNamespace:
        self.vault._check("acquire")
        carried = self.token  # the lease belongs to the token the request carried
        self._require_token()
        if self.creds_latency:
            await self.vault.clock.sleep(self.creds_latency)
        lease = self.vault.new_lease(carried)
        return SimpleNamespace(
            lease_id=lease.lease_id,
            lease_duration=int(self.vault.ttl),
            renewable=True,
            warnings=[],
            data={"username": "v-app", "password": lease.password},
        )

    async def _static(self, name: str, mount_point: str = "database") -> SimpleNamespace:
        v = self.vault
        v._check("static")
        self._require_token()
        now = v.clock.now()
        period = v.static_period
        rotation = int(now // period)
        ttl = (rotation + 1) * period - now
        return SimpleNamespace(
            lease_id="",
            lease_duration=0,
            renewable=False,
            warnings=[],
            data={
                "username": "app-static",
                "password": f"static-{rotation}",
                "ttl": int(ttl),
                "rotation_period": int(period),
                "last_vault_rotation": str(rotation),
            },
        )

    async def _renew(self, lease_id: str, increment: int | None = None) -> SimpleNamespace:
        self.vault._check("renew")
        self._require_token()
        duration = self.vault.renew_lease(lease_id)
        return SimpleNamespace(
            lease_id=lease_id, lease_duration=int(duration), renewable=True, data={}, warnings=[]
        )

    async def _revoke(self, lease_id: str) -> None:
        self.vault._check("revoke")
        self._require_token()
        if lease_id in self.vault.leases:
            self.vault.leases[lease_id].revoked = True


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
    async with LeaseManager(
        None, LeaseConfig(drain_period=5.0, shutdown_timeout=5.0), clock=clock, rng=rng
    ) as mgr:
        yield mgr


class GivenTokenClient(FakeClient):
    """``TokenAuth``: each login looks the same non-renewable token up again.

    Vault reports the ttl in whole seconds (0 in the token's last second) and an
    ``expire_time``; ``max_logins`` stops a runaway loop so a test can end and say so.
    """

    def __init__(self, vault: FakeVault, ttl: float, max_logins: int | None = None) -> None:
        super().__init__(vault)
        self.expires = vault.clock.now() + ttl
        self.max_logins = max_logins
        vault.tokens["given"] = FakeToken("given", self.expires, self.expires, False)

    async def login(self, method: Any) -> SimpleNamespace:
        self.vault._check("login")
        if self.max_logins is not None and len(self.vault.times("login")) > self.max_logins:
            raise RuntimeError("login storm")
        self.token = "given"
        return SimpleNamespace(
            client_token="s.given",
            accessor="given",
            lease_duration=max(0, int(self.expires - self.vault.clock.now())),
            renewable=False,
            policies=["app"],
            token_type="service",
        )


def slow_client(vault: FakeVault, latency: float = 2.0) -> FakeClient:
    """A client whose ``database/creds`` takes ``latency`` virtual seconds."""
    client = FakeClient(vault)
    client.creds_latency = latency
    return client
