"""The lease engine against the real dev stack: OpenBao's database engine and PostgreSQL.

Three scenarios that share the server (rotation, outside revocation, token re-login)
run concurrently; the one that SIGSTOPs OpenBao runs alone afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from tests.support.postgres import can_login
from vault_async import AppRoleAuth, AsyncVaultClient
from vault_async.devstack import DevStack
from vault_async.lifecycle import Lease, LeaseConfig, LeaseEvent, LeaseManager, ManagedSecret

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHORT_ROLE = "lifecycle-short"  # 4 s leases, 12 s max TTL
# 20 s leases. The renewal comes with 6-7 s left, its call times out after a third
# of that, and the first retry (<= 1 s later) still lands with > 2.5 s left, which is
# beyond half the grace period (< 2 s): the manager retries the renewal, it does not
# rotate. With 10 s leases the retry could fall inside the grace period (a rotation,
# a new lease) for some draws of the grace and the jitter.
PAUSE_ROLE = "lifecycle-pause"
TOKEN_ROLE = "lifecycle-token"  # AppRole whose tokens hit their max TTL after 10 s


async def lease_logs_in(stack: DevStack, lease: Lease) -> bool:
    """True when PostgreSQL accepts the lease's username and password right now."""
    return await can_login(stack, lease.data["username"], lease.data["password"], connect_timeout=5)


async def wait_until(
    handle: ManagedSecret, predicate: Callable[[], bool], *, within: float
) -> None:
    """Wait, event by event, until ``predicate()`` holds; fail after ``within`` seconds."""
    send, receive = anyio.create_memory_object_stream[LeaseEvent](1000)
    unsubscribe = handle.subscribe(send.send_nowait)
    try:
        with anyio.fail_after(within):
            while not predicate():
                await receive.receive()
    finally:
        unsubscribe()
        send.close()
        receive.close()


def client_for(stack: DevStack) -> AsyncVaultClient:
    return AsyncVaultClient(addr=stack.vault_addr, token="", timeout=5.0, max_retries=0)


def approle(stack: DevStack) -> AppRoleAuth:
    return AppRoleAuth(stack.role_id, stack.secret_id, mount_point=stack.approle_mount)


def track(handle: ManagedSecret) -> tuple[list[LeaseEvent], set[str]]:
    """Record events and every username the handle ever held."""
    events: list[LeaseEvent] = []
    users: set[str] = set()

    def on_event(event: LeaseEvent) -> None:
        events.append(event)
        if handle.current is not None and "username" in handle.current.data:
            users.add(handle.current.data["username"])

    handle.subscribe(on_event)
    return events, users


@pytest.fixture(scope="module")
def roles(devstack: DevStack) -> dict[str, str]:
    devstack.create_dynamic_role(SHORT_ROLE, "4s", "12s")
    devstack.create_dynamic_role(PAUSE_ROLE, "20s", "120s")
    token_role = devstack.create_approle_role(TOKEN_ROLE, token_ttl="6s", token_max_ttl="10s")
    return {"role_id": token_role.role_id, "secret_id": token_role.secret_id}


async def rotation_scenario(stack: DevStack, results: dict[str, Any]) -> None:
    """Over 40 s of 4 s leases capped at 12 s: rotations, a working login at every probe."""
    drain = 2.0
    async with (
        client_for(stack) as client,
        LeaseManager(client, LeaseConfig(drain_period=drain)) as mgr,
    ):
        mgr.manage_token(client, approle(stack))
        creds = mgr.manage_database_credentials(role=SHORT_ROLE, mount=stack.db_mount)
        events, users = track(creds)
        lease = await creds.wait_ready(timeout=15)
        users.add(lease.data["username"])
        replaced_at: dict[str, float] = {}  # username -> when it stopped being current
        holder = {"user": lease.data["username"]}

        def note_rotation(event: LeaseEvent) -> None:
            if event.kind == "rotated" and creds.current is not None:
                replaced_at[holder["user"]] = time.monotonic()
                holder["user"] = creds.current.data["username"]

        creds.subscribe(note_rotation)
        probes = failures = 0
        end = time.monotonic() + 40.0
        while time.monotonic() < end:
            current = creds.current
            assert current is not None
            probes += 1
            if not await lease_logs_in(stack, current):
                failures += 1
            await anyio.sleep(0.25)
        # Every replaced credential whose drain is long over is gone from pg_roles.
        present = set(await stack.v_roles())
        now = time.monotonic()
        drained = {u for u, t in replaced_at.items() if now - t > drain + 3.0}
        results["rotation"] = {
            "probes": probes,
            "failures": failures,
            "rotations": creds.rotations,
            "renewals": creds.renewals,
            "kinds": [e.kind for e in events],
            "drained": drained,
            "lingering": drained & present,
            "users": set(users),
        }


async def revoked_outside_scenario(stack: DevStack, results: dict[str, Any]) -> None:
    """A lease revoked with sys/leases/revoke is replaced as soon as a renewal finds it gone."""
    async with (
        client_for(stack) as client,
        LeaseManager(client, LeaseConfig(drain_period=1.0)) as mgr,
    ):
        mgr.manage_token(client, approle(stack))
        creds = mgr.manage_database_credentials(role=SHORT_ROLE, mount=stack.db_mount)
        events, users = track(creds)
        lease = await creds.wait_ready(timeout=15)
        users.add(lease.data["username"])
        await anyio.to_thread.run_sync(
            stack.vault_call, "PUT", "sys/leases/revoke", {"lease_id": lease.lease_id}
        )
        await wait_until(creds, lambda: creds.generation >= 2, within=10)
        kinds = [e.kind for e in events]
        assert creds.current is not None
        results["revoked"] = {
            "kinds": kinds,
            "generation": creds.generation,
            "new_login_ok": await lease_logs_in(stack, creds.current),
            "old_login_ok": await lease_logs_in(stack, lease),
            "users": set(users),
        }


async def token_scenario(stack: DevStack, ids: dict[str, str], results: dict[str, Any]) -> None:
    """A token capped at 10 s is replaced by a new AppRole login; the lease keeps going."""
    auth = AppRoleAuth(ids["role_id"], ids["secret_id"], mount_point=stack.approle_mount)
    async with (
        client_for(stack) as client,
        LeaseManager(client, LeaseConfig(drain_period=1.0)) as mgr,
    ):
        token = mgr.manage_token(client, auth)
        creds = mgr.manage_database_credentials(role=SHORT_ROLE, mount=stack.db_mount)
        _, users = track(creds)
        lease = await creds.wait_ready(timeout=15)
        users.add(lease.data["username"])
        await wait_until(token, lambda: token.generation >= 2, within=20)
        renewals_at_relogin = creds.renewals + creds.rotations
        await wait_until(
            creds, lambda: creds.renewals + creds.rotations >= renewals_at_relogin + 2, within=15
        )
        assert creds.current is not None
        results["token"] = {
            "token_generation": token.generation,
            "login_ok": await lease_logs_in(stack, creds.current),
            "degraded": mgr.snapshot()[creds.name].degraded,
            "users": set(users),
        }


async def test_rotation_revocation_and_relogin(devstack: DevStack, roles: dict[str, str]) -> None:
    results: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        tg.start_soon(rotation_scenario, devstack, results)
        tg.start_soon(revoked_outside_scenario, devstack, results)
        tg.start_soon(token_scenario, devstack, roles, results)

    rot = results["rotation"]
    assert rot["failures"] == 0, rot
    assert rot["probes"] >= 100
    assert rot["rotations"] >= 2
    assert rot["renewals"] >= 2
    assert "expiring" in rot["kinds"]
    assert "revoked" in rot["kinds"]
    assert rot["drained"]  # some replaced credentials are past their drain period...
    assert rot["lingering"] == set()  # ...and their roles are gone from pg_roles

    rev = results["revoked"]
    # The renewal that found the lease gone is followed at once by the rotation.
    i = rev["kinds"].index("failed")
    assert rev["kinds"][i + 1] == "rotated", rev
    assert rev["new_login_ok"]
    assert not rev["old_login_ok"]

    tok = results["token"]
    assert tok["token_generation"] >= 2
    assert tok["login_ok"]
    assert not tok["degraded"]

    # Shutdown revoked everything the three managers created.
    present = set(await devstack.v_roles())
    created = rot["users"] | rev["users"] | tok["users"]
    assert created
    assert not created & present


async def test_paused_vault_keeps_credential_and_recovers(
    devstack: DevStack, roles: dict[str, str]
) -> None:
    async with client_for(devstack) as client, LeaseManager(client) as mgr:
        mgr.manage_token(client, approle(devstack))
        creds = mgr.manage_database_credentials(role=PAUSE_ROLE, mount=devstack.db_mount)
        lease = await creds.wait_ready(timeout=15)
        state = mgr.snapshot()[creds.name]
        assert state.next_action == "renew"
        assert state.next_action_in is not None
        await anyio.sleep(max(0.0, state.next_action_in - 0.3))
        renewals = creds.renewals
        devstack.pause_vault()
        try:
            await wait_until(creds, lambda: creds.consecutive_failures >= 1, within=6)
            state = mgr.snapshot()[creds.name]
            assert state.degraded
            assert state.last_error_class is not None
            assert creds.current is not None
            assert creds.current.lease_id == lease.lease_id  # kept, not dropped
            assert await lease_logs_in(devstack, creds.current)  # and still accepted
        finally:
            devstack.resume_vault()
        await wait_until(creds, lambda: creds.renewals > renewals, within=10)
        state = mgr.snapshot()[creds.name]
        assert not state.degraded
        assert state.consecutive_failures == 0
        assert state.total_failures >= 1
        assert creds.current.lease_id == lease.lease_id
        username = lease.data["username"]
        assert username in await devstack.v_roles()
    assert username not in await devstack.v_roles()
