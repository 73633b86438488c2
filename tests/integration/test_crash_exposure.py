"""Crash safety: a replica killed by SIGKILL leaves its database login behind only until its
Vault token expires, because the lease the login belongs to is a child of that token.

The token's TTL is short (the engine renews it while the service lives); the database lease's
TTL is long, so only the token's death can explain the login's removal. What is measured:

- the exposure window: from the kill to the moment the `v-` role is gone from `pg_roles`;
  it is at most min(token TTL left at the kill, lease TTL left) + Vault's revocation latency,
  and the token TTL left at the kill is at most `token_ttl` (renew-self grants `token_ttl`);
- Vault's revocation latency: from the token's `expire_time` to the role being gone.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.support.health import wait_for_health
from tests.support.postgres import connected_as
from tests.support.service import ServiceProcess
from vault_async.devstack import DevStack, DevStackError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN_TTL = 8  # seconds: the service's token, renewed by the engine
TOKEN_MAX_TTL = "10m"
LEASE_TTL = "10m"  # the database lease, far longer than the token
LEASE_MAX_TTL = "1h"
REMOVAL_MARGIN = 15.0  # seconds past the token's expiry allowed for Vault to drop the role


@dataclass(frozen=True, slots=True)
class TokenInfo:
    accessor: str
    issued_at: float
    expires_at: float
    renewed_at: float | None
    ttl: int


def _unix(stamp: str) -> float:
    """Vault's RFC 3339 time (nanoseconds, `Z`) as a Unix time."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(head + "+00:00").timestamp()
    return whole + (float("0." + frac) if frac else 0.0)


def role_tokens(stack: DevStack, approle_role: str) -> list[TokenInfo]:
    """The live tokens AppRole issued for `approle_role`, looked up by accessor (root)."""
    found = []
    for accessor in stack.vault_call("LIST", "auth/token/accessors")["data"]["keys"]:
        try:
            data = stack.vault_call(
                "POST", "auth/token/lookup-accessor", {"accessor": accessor}
            )["data"]
        except DevStackError:  # expired between the listing and the lookup
            continue
        if (data.get("meta") or {}).get("role_name") != approle_role:
            continue
        renewed = data.get("last_renewal_time")
        found.append(TokenInfo(
            accessor=accessor, issued_at=_unix(data["issue_time"]),
            expires_at=_unix(data["expire_time"]),
            renewed_at=float(renewed) if renewed else None, ttl=int(data["ttl"]),
        ))
    return found


def role_leases(stack: DevStack, db_role: str) -> dict[str, dict[str, Any]]:
    """Lease suffix -> `sys/leases/lookup` answer, for every lease of `db_role` (root)."""
    prefix = f"{stack.db_mount}/creds/{db_role}/"
    try:
        keys = stack.vault_call("LIST", f"sys/leases/lookup/{prefix}")["data"]["keys"]
    except DevStackError:  # Vault answers 404 when there is none
        return {}
    return {
        key: stack.vault_call("PUT", "sys/leases/lookup", {"lease_id": prefix + key})["data"]
        for key in keys
    }


async def sessions_of(stack: DevStack, user: str) -> set[int]:
    """Backend PIDs of the sessions logged in as `user` (while the role exists)."""
    async with stack.admin_connection() as conn:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE usename = $1", user)
    return {r["pid"] for r in rows}


async def live_backends(stack: DevStack, pids: set[int]) -> set[int]:
    """Which of `pids` still serve a session (a dropped role's sessions have no user name)."""
    async with stack.admin_connection() as conn:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])", list(pids)
        )
    return {r["pid"] for r in rows}


async def wait_backends_gone(stack: DevStack, pids: set[int], within: float = 10) -> None:
    """Poll until none of `pids` serves a session; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while left := await live_backends(stack, pids):
        if time.monotonic() > deadline:
            raise AssertionError(f"backends {sorted(left)} still open after {within:.0f} s")
        await asyncio.sleep(0.1)


async def wait_role_gone(stack: DevStack, user: str, within: float) -> float:
    """Poll `pg_roles` until `user` is gone; the Unix time it was first seen gone."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if user not in await stack.v_roles():
            return time.time()
        await asyncio.sleep(0.1)
    raise AssertionError(f"{user} still exists {within:.0f} s after the kill")


async def test_sigkilled_replica_login_dies_with_its_token(migrated: DevStack) -> None:
    """An 8 s token kept alive by renewals for 20 s, then SIGKILL: the 10 min lease's login
    goes when the token expires, no later than min(token left, lease left) + a margin."""
    stack = migrated
    db_role, approle_role = "crash-lease", "crash-token"
    stack.create_dynamic_role(db_role, LEASE_TTL, LEASE_MAX_TTL)
    login = stack.create_approle_role(
        approle_role, token_ttl=f"{TOKEN_TTL}s", token_max_ttl=TOKEN_MAX_TTL
    )
    env = stack.env() | {
        "VAULT_ROLE_ID": login.role_id, "VAULT_SECRET_ID": login.secret_id,
        "VAULT_DB_ROLE": db_role,
    }
    before = set(await stack.v_roles())
    service = ServiceProcess(env)
    with service:
        await wait_for_health(service.base_url, lambda b: b["status"] == "ok", within=30)
        (user,) = set(await stack.v_roles()) - before
        (first,) = role_tokens(stack, approle_role)
        (lease_key,) = role_leases(stack, db_role)
        # Alive for more than twice the token's TTL: only renewals keep that token valid.
        await asyncio.sleep(2.5 * TOKEN_TTL)
        (alive,) = role_tokens(stack, approle_role)
        assert alive.accessor == first.accessor, "the service logged in again instead of renewing"
        assert alive.renewed_at is not None
        assert time.time() - alive.issued_at > 2 * TOKEN_TTL
        assert user in await stack.v_roles()
        assert list(role_leases(stack, db_role)) == [lease_key]
        sessions = await sessions_of(stack, user)
        assert sessions
        service.stop(signal.SIGKILL)
        killed_at = time.time()
        (dying,) = role_tokens(stack, approle_role)
        lease = role_leases(stack, db_role)[lease_key]
    token_left = dying.expires_at - killed_at
    lease_left = _unix(lease["expire_time"]) - killed_at
    gone_at = await wait_role_gone(stack, user, within=TOKEN_TTL + REMOVAL_MARGIN)
    window = gone_at - killed_at
    latency = gone_at - dying.expires_at
    print(
        f"crash exposure: token_ttl {TOKEN_TTL} s, token left at kill {token_left:.2f} s, "
        f"lease left at kill {lease_left:.0f} s, login gone {window:.2f} s after the kill, "
        f"{latency:.2f} s after the token expired (Vault's revocation latency)"
    )
    # The window is the token's: renew-self grants token_ttl, never more; the lease had far
    # longer to live, so only the token's expiry removed the login.
    assert token_left <= TOKEN_TTL
    assert lease_left > 10 * TOKEN_TTL
    assert window <= min(token_left, lease_left) + REMOVAL_MARGIN
    assert role_leases(stack, db_role) == {}
    await wait_backends_gone(stack, sessions)


async def test_revocation_drops_the_login_not_its_open_sessions(migrated: DevStack) -> None:
    """Vault's revocation (`DROP ROLE`) ends the login, not a session already open with it:
    a replica that is frozen rather than dead keeps its connections until it closes them."""
    stack = migrated
    db_role = "crash-sessions"
    stack.create_dynamic_role(db_role, LEASE_TTL, LEASE_MAX_TTL)
    body = stack.vault_call("GET", f"{stack.db_mount}/creds/{db_role}")
    user, password = body["data"]["username"], body["data"]["password"]
    async with connected_as(stack, user, password) as conn:
        backend = {await conn.fetchval("SELECT pg_backend_pid()")}
        stack.vault_call("PUT", f"sys/leases/revoke/{body['lease_id']}")
        assert user not in await stack.v_roles()
        assert await conn.fetchval("SELECT 1") == 1
        assert await live_backends(stack, backend) == backend
    await wait_backends_gone(stack, backend)


async def test_batch_token_caps_its_leases_at_its_own_ttl(migrated: DevStack) -> None:
    """A batch token cannot be renewed or revoked, but a lease it obtains never outlives it:
    Vault caps the lease's TTL at the token's, and the login goes when the lease expires."""
    stack = migrated
    db_role, approle_role, batch_ttl = "crash-batch-lease", "crash-batch", 5
    stack.create_dynamic_role(db_role, LEASE_TTL, LEASE_MAX_TTL)
    base = f"auth/{stack.approle_mount}/role/{approle_role}"
    stack.vault_call("POST", base, {
        "token_policies": ["app-service"], "token_no_default_policy": True,
        "token_type": "batch", "token_ttl": f"{batch_ttl}s",
    })
    role_id = stack.vault_call("GET", f"{base}/role-id")["data"]["role_id"]
    secret_id = stack.vault_call("POST", f"{base}/secret-id")["data"]["secret_id"]
    async with httpx.AsyncClient(base_url=f"{stack.vault_addr}/v1", timeout=10) as vault:
        auth = (await vault.post(
            f"auth/{stack.approle_mount}/login", json={"role_id": role_id, "secret_id": secret_id}
        )).raise_for_status().json()["auth"]
        assert auth["token_type"] == "batch"
        body = (await vault.get(
            f"{stack.db_mount}/creds/{db_role}", headers={"X-Vault-Token": auth["client_token"]}
        )).raise_for_status().json()
    read_at = time.time()
    user = body["data"]["username"]
    print(f"batch token: ttl {auth['lease_duration']} s, lease ttl {body['lease_duration']} s "
          f"(role default {LEASE_TTL})")
    assert 0 < body["lease_duration"] <= batch_ttl
    gone_at = await wait_role_gone(stack, user, within=batch_ttl + REMOVAL_MARGIN)
    print(f"batch token: login gone {gone_at - read_at:.2f} s after it was read")
