"""OpenBao namespaces against the real server: per-call namespaces, nesting, bad names, and
leases renewed and revoked in the namespace that issued them.

``team_namespace`` is namespace ``team-a`` on the session's stack, configured as the root
is (database engine, AppRole, KV at ``secret/``).
"""

from __future__ import annotations

import time

import pytest
import respx

from tests.client._util import unique
from vault_async import AsyncVaultClient, ClientConfig, InvalidConfig, InvalidPath, InvalidRequest
from vault_async._config import check_namespace
from vault_async.devstack import DevNamespace, DevStack
from vault_async.lifecycle import Lease, LeaseManager, database_dynamic

pytestmark = pytest.mark.integration


def client_in(stack: DevStack, namespace: str | None) -> AsyncVaultClient:
    config = ClientConfig(addr=stack.vault_addr, token=stack.root_token, namespace=namespace)
    return AsyncVaultClient(config=config, max_retries=0)


async def lease_exists(client: AsyncVaultClient, lease_id: str, namespace: str | None) -> bool:
    try:
        await client.sys.leases.lookup(lease_id, namespace=namespace)
    except InvalidRequest:  # 400 "invalid lease"
        return False
    return True


async def test_per_call_namespace_reaches_kv_and_credentials(
    devstack: DevStack, team_namespace: DevNamespace
) -> None:
    """A client without a namespace writes and reads KV and gets database credentials in
    ``team-a`` by the per-call keyword; the same path at the root is another secret."""
    ns = team_namespace.path
    path = unique("ns-kv")
    async with client_in(devstack, None) as client:
        await client.secrets.kv_v2.create_or_update_secret(path, {"where": "team-a"}, namespace=ns)
        read = await client.secrets.kv_v2.read_secret(path, namespace=ns)
        assert read.data == {"where": "team-a"}
        assert path in await client.secrets.kv_v2.list_secrets(namespace=ns)
        with pytest.raises(InvalidPath):  # not at the root
            await client.secrets.kv_v2.read_secret(path)

        creds = await client.secrets.database.generate_credentials("app", namespace=ns)
        assert await lease_exists(client, creds.lease_id, ns)
        await client.sys.leases.revoke(creds.lease_id, namespace=ns)
        assert not await lease_exists(client, creds.lease_id, ns)


async def test_client_in_a_namespace_reaches_the_root_per_call(
    devstack: DevStack, team_namespace: DevNamespace
) -> None:
    """``namespace=None`` is the root namespace for one call; sys/health is root-only."""
    path = unique("root-kv")
    async with client_in(devstack, None) as root:
        await root.secrets.kv_v2.create_or_update_secret(path, {"where": "root"})
    async with client_in(devstack, team_namespace.path) as client:
        assert (await client.sys.health()).initialized
        assert (await client.secrets.kv_v2.read_secret(path, namespace=None)).data == {
            "where": "root"
        }
        with pytest.raises(InvalidPath):  # team-a has its own secret/ mount, without it
            await client.secrets.kv_v2.read_secret(path)


async def test_nested_namespace_path(devstack: DevStack, team_namespace: DevNamespace) -> None:
    """``team-a/<child>`` (written with slashes around it, as Vault's CLI allows) is one
    namespace path: the header carries it, and its mounts are its own."""
    child = unique("child")
    devstack.vault_call("POST", f"sys/namespaces/{child}", namespace=team_namespace.path)
    nested = f"{team_namespace.path}/{child}"
    devstack.vault_call(
        "POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}}, namespace=nested
    )
    async with client_in(devstack, f"/{nested}/") as client:
        assert client.config.namespace == nested
        await client.secrets.kv_v2.create_or_update_secret("x", {"n": 1}, mount_point="kv")
        assert (await client.secrets.kv_v2.read_secret("x", mount_point="kv")).data == {"n": 1}
    async with client_in(devstack, team_namespace.path) as parent:
        with pytest.raises((InvalidPath, InvalidRequest)):  # no kv/ mount in team-a itself
            await parent.secrets.kv_v2.read_secret("x", mount_point="kv")
        child_read = await parent.request("GET", f"{child}/kv/data/x", idempotent=True)
        assert isinstance(child_read, dict)


@pytest.mark.parametrize(
    "bad", ["team a", "team-a//b", "../team-a", "team-a/../b", ".", "/", "team\r\nX: 1", "tëam"]
)
def test_bad_namespace_is_one_line_naming_vault_namespace(bad: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        ClientConfig(addr="http://v:8200", namespace=bad)
    message = str(info.value)
    assert "VAULT_NAMESPACE" in message
    assert "\n" not in message
    assert len(bad) < 3 or bad not in message  # the value is never echoed


@pytest.mark.parametrize(
    "refused",
    ["sys", "team-a/audit", "auth/x", "a/cubbyhole", "identity", "team+a", "a/*", "root", "/root/"],
)
def test_names_openbao_refuses_or_reads_as_the_root_are_refused(refused: str) -> None:
    # OpenBao 2.7.2 refuses its reserved names and '+' or '*' in a name, and reads "root" as
    # the root namespace: a configuration that says so would not mean what it says.
    with pytest.raises(InvalidConfig) as info:
        ClientConfig(addr="http://v:8200", namespace=refused)
    assert "VAULT_NAMESPACE" in str(info.value)
    with pytest.raises(InvalidConfig):
        check_namespace(refused, "namespace")


def test_namespace_slashes_around_are_dropped() -> None:
    assert ClientConfig(addr="http://v:8200", namespace="team-a/").namespace == "team-a"
    assert ClientConfig(addr="http://v:8200", namespace="/a/b/").namespace == "a/b"
    assert ClientConfig(addr="http://v:8200", namespace="a..b").namespace == "a..b"


async def test_bad_per_call_namespace_fails_before_sending(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    with pytest.raises(InvalidConfig, match="namespace"):
        await client.secrets.kv_v2.read_secret("x", namespace="a/../b")
    assert not router.calls


async def test_a_root_lease_is_renewed_and_revoked_at_the_root(
    devstack: DevStack, team_namespace: DevNamespace
) -> None:
    """The client's namespace is ``team-a``, the credentials come from the root's mount:
    OpenBao finds a root lease only from the root namespace, so the source renews and
    revokes where it obtained the lease, not in the client's namespace."""
    async with client_in(devstack, team_namespace.path) as client:
        source = database_dynamic(client, devstack.dynamic_role, devstack.db_mount, namespace=None)
        grant = await source.acquire()
        lease = Lease(
            grant.lease_id, grant.lease_duration, grant.renewable, grant.data,
            obtained_at=time.monotonic(), expires_at=time.monotonic() + grant.lease_duration,
        )
        assert await lease_exists(client, lease.lease_id, None)
        assert source.renew is not None
        assert source.revoke is not None
        renewed = await source.renew(lease)
        assert renewed.lease_id == lease.lease_id
        await source.revoke(lease)
        assert not await lease_exists(client, lease.lease_id, None)


async def test_the_engine_revokes_a_root_lease_at_the_root_on_exit(
    devstack: DevStack, team_namespace: DevNamespace
) -> None:
    async with client_in(devstack, team_namespace.path) as client:
        async with LeaseManager(client) as manager:
            handle = manager.manage_database_credentials(
                role=devstack.dynamic_role, mount=devstack.db_mount, namespace=None
            )
            lease = await handle.wait_ready(timeout=20)
            assert await lease_exists(client, lease.lease_id, None)
        assert not await lease_exists(client, lease.lease_id, None)


async def test_a_namespaced_token_is_looked_up_renewed_and_revoked_in_its_namespace(
    devstack: DevStack, team_namespace: DevNamespace
) -> None:
    """The service's AppRole login of ``team-a``; the client's own namespace is the root."""
    login = team_namespace.logins.service
    ns = team_namespace.path
    async with AsyncVaultClient(devstack.vault_addr, token="", max_retries=0) as client:
        auth = await client.request(
            "POST",
            "auth/approle/login",
            json={"role_id": login.role_id, "secret_id": login.secret_id},
            idempotent=False,
            token=None,
            namespace=ns,
        )
        assert isinstance(auth, dict)
        client.set_token(auth["auth"]["client_token"])
        info = await client.auth.token.lookup_self(namespace=ns)
        assert info.path.startswith("auth/approle/login")
        assert (await client.auth.token.renew_self(namespace=ns)).lease_duration > 0
        await client.auth.token.revoke_self(namespace=ns)
        assert client.token is None
    async with client_in(devstack, ns) as root:
        with pytest.raises(InvalidRequest):
            await root.auth.token.lookup_accessor(info.accessor)
