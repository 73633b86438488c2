"""The lease engine against a real OpenBao and PostgreSQL, one test per known defect.

Each test sets up its own policies, roles and tokens (names starting ``defect-``) on the
module's own dev stack (the ``stack`` fixture), since one of them seals OpenBao. Vault's
view is read with the root token: ``sys/leases/lookup`` for the leases under a role,
``pg_roles`` for the logins that still exist.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import text

from tests.support.postgres import can_login
from vault_async import AppRoleAuth, AsyncVaultClient, Forbidden, TokenAuth
from vault_async._health import health_status
from vault_async.devstack import DevStack
from vault_async.lifecycle import Lease, LeaseEvent, LeaseManager, ManagedSecret
from vault_async.runtime import open_runtime

pytestmark = [pytest.mark.integration]

SERVICE_POLICY = "defect-service"


def lease_manager(client: AsyncVaultClient, **config: Any) -> LeaseManager:
    """The one place a test builds a lease engine (its settings as keyword arguments)."""
    from vault_async.lifecycle import LeaseConfig

    return LeaseManager(client, LeaseConfig(**config))


def client_for(stack: DevStack) -> AsyncVaultClient:
    return AsyncVaultClient(addr=stack.vault_addr, token="", timeout=5.0, max_retries=0)


def approle(stack: DevStack) -> AppRoleAuth:
    return AppRoleAuth(stack.role_id, stack.secret_id, mount_point=stack.approle_mount)


def policy_hcl(stack: DevStack, creds: str | None) -> str:
    """A service policy; ``creds`` is the role it may use (``*``: any, None: none)."""
    mount = stack.db_mount
    rules = [
        f'path "{mount}/static-creds/*" {{ capabilities = ["read"] }}',
        'path "auth/token/lookup-self" { capabilities = ["read"] }',
        'path "auth/token/renew-self" { capabilities = ["update"] }',
        'path "auth/token/revoke-self" { capabilities = ["update"] }',
    ]
    if creds is not None:
        leases = f"{mount}/creds/{'+' if creds == '*' else creds}/*"
        rules += [
            f'path "{mount}/creds/{creds}" {{ capabilities = ["read"] }}',
            f'path "sys/leases/renew/{leases}" {{ capabilities = ["update"] }}',
            f'path "sys/leases/revoke/{leases}" {{ capabilities = ["update"] }}',
        ]
    return "\n".join(rules) + "\n"


async def root(stack: DevStack, method: str, path: str, body: Any = None) -> httpx.Response:
    """One root-token call; the response is returned whatever its status."""
    async with httpx.AsyncClient(
        base_url=f"{stack.vault_addr}/v1",
        headers={"X-Vault-Token": stack.root_token},
        timeout=10.0,
    ) as http:
        return await http.request(method, path, json=body)


async def root_ok(stack: DevStack, method: str, path: str, body: Any = None) -> dict[str, Any]:
    response = await root(stack, method, path, body)
    assert response.status_code < 400, (method, path, response.status_code, response.text[:300])
    return response.json() if response.content else {}


async def leases_under(stack: DevStack, role: str) -> set[str]:
    """Full ids of the leases Vault holds for ``{mount}/creds/{role}/`` (empty: none)."""
    prefix = f"{stack.db_mount}/creds/{role}/"
    response = await root(stack, "LIST", f"sys/leases/lookup/{prefix}")
    if response.status_code == 404:
        return set()
    assert response.status_code == 200, response.text[:300]
    return {prefix + key for key in response.json()["data"]["keys"]}


async def lease_known(stack: DevStack, lease_id: str) -> bool:
    """True while Vault still knows the lease (not revoked, not expired)."""
    response = await root(stack, "PUT", "sys/leases/lookup", {"lease_id": lease_id})
    return response.status_code == 200


async def eventually(predicate: Callable[[], Any], *, within: float, step: float = 0.1) -> bool:
    """Poll ``predicate`` (sync or async) until it holds; False after ``within`` seconds."""
    with anyio.move_on_after(within):
        while True:
            result = predicate()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return True
            await anyio.sleep(step)
    return False


async def role_gone(stack: DevStack, username: str) -> bool:
    return username not in await stack.v_roles()


def record(handle: ManagedSecret) -> list[LeaseEvent]:
    events: list[LeaseEvent] = []
    handle.subscribe(events.append)
    return events


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def service_policy(stack: DevStack) -> str:
    """A policy allowing every dynamic role's credentials (for tokens the tests create)."""
    await root_ok(
        stack, "PUT", f"sys/policies/acl/{SERVICE_POLICY}", {"policy": policy_hcl(stack, "*")}
    )
    return SERVICE_POLICY


async def approle_login_role(
    stack: DevStack, name: str, policy: str, **settings: Any
) -> AppRoleAuth:
    """An AppRole role of the test's own, and a secret_id for it."""
    base = f"auth/{stack.approle_mount}/role/{name}"
    await root_ok(stack, "POST", base, {"token_policies": [policy], **settings})
    role_id = (await root_ok(stack, "GET", f"{base}/role-id"))["data"]["role_id"]
    secret_id = (await root_ok(stack, "POST", f"{base}/secret-id"))["data"]["secret_id"]
    return AppRoleAuth(role_id, secret_id, mount_point=stack.approle_mount)


# -- defect 2: a 403 that is not the token's fault ------------------------------------------------


@pytest.mark.slow
async def test_forbidden_credential_path_does_not_log_in_again(stack: DevStack) -> None:
    db_role, policy, login_role = unique("defect-403"), unique("defect-403"), unique("defect-403")
    stack.create_dynamic_role(db_role, "60s", "10m")
    await root_ok(
        stack, "PUT", f"sys/policies/acl/{policy}", {"policy": policy_hcl(stack, db_role)}
    )
    # A secret_id good for one login: a second login would fail, so the service's only
    # way to keep working is to keep (and renew) the token it has. 3 s tokens renew often.
    auth = await approle_login_role(
        stack, login_role, policy, token_ttl="3s", token_max_ttl="10m", secret_id_num_uses=1
    )
    try:
        async with (
            client_for(stack) as client,
            lease_manager(client, min_force_interval=0.0) as mgr,
        ):
            token = mgr.manage_token(client, auth)
            creds = mgr.manage_database_credentials(role=db_role, mount=stack.db_mount)
            lease = await creds.wait_ready(timeout=15)
            assert token.current is not None
            accessor = token.current.data["accessor"]
            # The operator narrows the policy: the token is fine, the path is not.
            await root_ok(
                stack, "PUT", f"sys/policies/acl/{policy}", {"policy": policy_hcl(stack, None)}
            )
            renewals = token.renewals
            with pytest.raises(Forbidden):
                await creds.force_rotate("test: the database refused the login")
            # The engine keeps retrying the rotation on its own while the token is renewed.
            await eventually(
                lambda: token.renewals >= renewals + 2 and creds.total_failures >= 2, within=8
            )
            states = mgr.snapshot()
            token_state, creds_state = states[token.name], states[creds.name]
            assert token.generation == 1, "the engine logged in again for a path's 403"
            assert token_state.consecutive_failures == 0, token_state
            assert token_state.renewals >= renewals + 2, token_state
            assert creds_state.consecutive_failures > 0, creds_state
            assert creds_state.total_failures >= 2, creds_state
            assert creds_state.last_error_class == "Forbidden", creds_state
            assert creds.current is not None
            assert creds.current.lease_id == lease.lease_id  # the valid lease is kept
            # The service's token is still the one it logged in with, and still valid.
            looked_up = await root_ok(
                stack, "POST", "auth/token/lookup-accessor", {"accessor": accessor}
            )
            assert looked_up["data"]["ttl"] > 0
    finally:
        await root(stack, "DELETE", f"auth/{stack.approle_mount}/role/{login_role}")
        await root(stack, "DELETE", f"sys/policies/acl/{policy}")


# -- defect 4: the drain waits for the connections still checked out -------------------------------


async def test_open_transaction_outlives_the_drain_period(stack: DevStack) -> None:
    # Needs the binding to report its checked-out connections (ManagedSecret.track_use):
    # with the drain period alone the old login is dropped under the open transaction.
    drain = 1.0
    client = client_for(stack)
    mgr = lease_manager(client, drain_period=drain, min_force_interval=0.0)
    first, second = unique("drain-a"), unique("drain-b")
    insert = text("INSERT INTO users (username, email) VALUES (:name, 'drain@example.test')")
    async with open_runtime(
        stack.database_url,
        client=client,
        auth=approle(stack),
        db_role=stack.dynamic_role,
        db_mount=stack.db_mount,
        manager=mgr,
        ready_timeout=15,
    ) as runtime:
        assert runtime.db_secret is not None
        creds = mgr[runtime.db_secret]
        old = creds.current
        assert old is not None
        old_user = old.data["username"]
        async with runtime.sessionmaker() as session, session.begin():
            await session.execute(insert, {"name": first})
            await creds.force_rotate("test: rotation under an open transaction")
            assert creds.generation == 2
            await anyio.sleep(drain + 2.0)
            assert old_user in await stack.v_roles(), "old login dropped under a transaction"
            await session.execute(insert, {"name": second})
        # Committed and returned: nothing uses the old login, it goes promptly.
        assert await eventually(lambda: role_gone(stack, old_user), within=5), old_user
        assert not await lease_known(stack, old.lease_id)
    async with stack.admin_connection() as conn:
        rows = await conn.fetch(
            "SELECT username FROM users WHERE username = ANY($1::text[])", [first, second]
        )
    assert {r["username"] for r in rows} == {first, second}


# -- defect 5: a given token near its end ---------------------------------------------------------


@pytest.mark.slow
async def test_given_token_reread_is_no_rotation_and_expiry_fails_health(
    stack: DevStack, service_policy: str
) -> None:
    db_role = unique("defect-given")
    stack.create_dynamic_role(db_role, "60s", "10m")
    created = await root_ok(
        stack,
        "POST",
        "auth/token/create",
        {"policies": [service_policy], "ttl": "4s", "renewable": False},
    )
    given = created["auth"]["client_token"]
    client = client_for(stack)
    mgr = lease_manager(client)
    async with open_runtime(
        stack.database_url,
        client=client,
        auth=TokenAuth(token=given),
        db_role=db_role,
        db_mount=stack.db_mount,
        manager=mgr,
        ready_timeout=15,
    ) as runtime:
        assert runtime.db_secret is not None
        assert runtime.token_secret is not None
        token, creds = mgr[runtime.token_secret], mgr[runtime.db_secret]
        first = token.current
        assert first is not None
        # The token is not renewable: the engine looks it up again before it ends.
        assert await eventually(lambda: token.current is not first, within=4), "no re-read"
        assert token.generation == 1, "a re-read of the same token counted as a new token"
        assert creds.generation == 1, "the lease was rotated because the token was re-read"
        assert creds.rotations == 0
        assert len(await leases_under(stack, db_role)) == 1
        # Past the token's end: nothing the service holds is valid any more.
        assert await eventually(
            lambda: (
                (s := runtime.snapshot()[token.name]).ttl_remaining is not None
                and s.ttl_remaining <= 0
            ),
            within=6,
        ), runtime.snapshot()[token.name]
        # Vault revoked the database lease with the token: the service has no login left.
        db_lease = creds.current
        assert db_lease is not None
        assert await eventually(lambda: role_gone(stack, db_lease.data["username"]), within=5)
        states = runtime.snapshot()
        token_state, db_state = states[token.name], states[creds.name]
        assert token_state.ttl_remaining == 0, token_state
        status = health_status(
            db_state, token_state, vault_recent=runtime.vault_answered_recently()
        )
        assert status == "failing", (status, db_state, token_state)
        assert db_state.ttl_remaining == 0, db_state  # the lease died with the token
        assert db_state.degraded


# -- defect 9: a static role read again with the same password ------------------------------------


async def test_static_role_reread_is_no_rotation(stack: DevStack) -> None:
    async with (
        client_for(stack) as client,
        lease_manager(client, min_force_interval=0.0) as mgr,
    ):
        mgr.manage_token(client, approle(stack))
        creds = mgr.manage_static_credentials(role=stack.static_role, mount=stack.db_mount)
        events = record(creds)
        lease = await creds.wait_ready(timeout=15)
        for _ in range(2):
            await anyio.sleep(1.1)  # Vault's "ttl" in the answer has moved on meanwhile
            await creds.force_rotate("test: read the static role again")
        assert creds.current is not None
        assert creds.current.data["password"] == lease.data["password"]
        assert creds.generation == 1
        assert creds.rotations == 0
        assert "rotated" not in [e.kind for e in events]


# -- defect 10: batch tokens ----------------------------------------------------------------------


async def test_batch_token_is_neither_renewed_nor_revoked(
    stack: DevStack, service_policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vault_async.lifecycle")
    login_role, db_role = unique("defect-batch"), unique("defect-batch")
    stack.create_dynamic_role(db_role, "60s", "10m")
    auth = await approle_login_role(
        stack, login_role, service_policy, token_type="batch", token_ttl="1m"
    )
    try:
        async with client_for(stack) as client, lease_manager(client) as mgr:
            token = mgr.manage_token(client, auth)
            creds = mgr.manage_database_credentials(role=db_role, mount=stack.db_mount)
            lease = await creds.wait_ready(timeout=15)
            await anyio.sleep(1.0)
            assert token.renewals == 0
        assert token.renewals == 0, "renew-self was called on a batch token"
        failed = [r for r in caplog.records if r.getMessage() == "lease.revoke_failed"]
        assert not failed, [getattr(r, "secret", None) for r in failed]
        # The database lease was still revoked.
        assert await role_gone(stack, lease.data["username"])
        assert not await lease_known(stack, lease.lease_id)
    finally:
        await root(stack, "DELETE", f"auth/{stack.approle_mount}/role/{login_role}")


# -- defect 7: callers cancelled while a rotation runs ---------------------------------------------


async def test_cancelled_force_rotate_leaves_one_lease(stack: DevStack) -> None:
    db_role = unique("defect-cancel")
    stack.create_dynamic_role(db_role, "60s", "10m")
    async with client_for(stack) as client, lease_manager(client) as mgr:
        mgr.manage_token(client, approle(stack))
        creds = mgr.manage_database_credentials(role=db_role, mount=stack.db_mount)
        lease = await creds.wait_ready(timeout=15)
        await anyio.sleep(1.2)  # past the interval within which force_rotate calls are shared
        assert await leases_under(stack, db_role) == {lease.lease_id}
        for _ in range(3):
            with anyio.move_on_after(0.001):  # a request timeout, at once
                await creds.force_rotate("test: caller cancelled")
        await anyio.sleep(1.0)
        current: Lease | None = creds.current
        assert current is not None
        new = await leases_under(stack, db_role) - {lease.lease_id}
        assert new == {current.lease_id}, (new, current.lease_id)
        assert creds.generation == 2
        assert await lease_known(stack, current.lease_id)
        assert await can_login(stack, current.data["username"], current.data["password"])
    assert await leases_under(stack, db_role) == set()


# -- defect 6: a revocation that failed is retried -------------------------------------------------


@pytest.mark.slow
async def test_revocation_retried_after_vault_was_sealed(stack: DevStack) -> None:
    db_role = unique("defect-seal")
    stack.create_dynamic_role(db_role, "60s", "10m")
    drain = 1.0
    async with (
        client_for(stack) as client,
        lease_manager(client, drain_period=drain, min_force_interval=0.0) as mgr,
    ):
        mgr.manage_token(client, approle(stack))
        creds = mgr.manage_database_credentials(role=db_role, mount=stack.db_mount)
        old = await creds.wait_ready(timeout=15)
        await creds.force_rotate("test: rotate, then seal before the old lease is revoked")
        # The old lease is due for revocation `drain` seconds from now: Vault is sealed then.
        await anyio.to_thread.run_sync(stack.vault_call, "PUT", "sys/seal")
        try:
            await anyio.sleep(drain + 2.0)
        finally:
            await anyio.to_thread.run_sync(
                stack.vault_call, "PUT", "sys/unseal", {"key": stack.unseal_key()}
            )
        # Revoked once Vault is back, well before the lease's 60 s TTL.
        assert await eventually(lambda: role_gone(stack, old.data["username"]), within=15)
        assert not await lease_known(stack, old.lease_id)
        assert creds.current is not None
        assert await lease_known(stack, creds.current.lease_id)
