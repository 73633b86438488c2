"""Every client method against the real OpenBao + PostgreSQL dev stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.client._util import enable_auth, unique
from tests.support.postgres import can_login, connected_as
from vault_async import (
    AppRoleAuth,
    AsyncVaultClient,
    ClientConfig,
    Forbidden,
    InvalidConfig,
    InvalidPath,
    InvalidRequest,
    TokenAuth,
    UserpassAuth,
)
from vault_async._parse import to_wrap_info
from vault_async.devstack import DevStack
from vault_async.devstack._processes import free_port

pytestmark = pytest.mark.integration


async def test_health_and_seal_status(root_client: AsyncVaultClient) -> None:
    health = await root_client.sys.health()
    assert health.status_code == 200
    assert health.initialized
    assert not health.sealed
    assert health.version
    seal = await root_client.sys.seal_status()
    assert seal.sealed is False
    assert seal.initialized is True


async def test_approle_login_and_token_self_management(devstack: DevStack) -> None:
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as client:
        auth = await client.login(AppRoleAuth(devstack.role_id, devstack.secret_id))
        assert client.token == auth.client_token
        assert auth.renewable
        assert auth.lease_duration > 0
        assert "app-service" in auth.policies
        assert "default" not in auth.policies  # it would renew and look up any lease
        assert auth.accessor
        info = await client.auth.token.lookup_self()
        assert info.accessor == auth.accessor
        assert 0 < info.ttl <= auth.lease_duration
        assert info["renewable"] is True
        renewed = await client.auth.token.renew_self(increment=600)
        assert renewed.client_token == auth.client_token
        assert 0 < renewed.lease_duration <= 3600
        await client.auth.token.revoke_self()
        assert client.token is None
        client.set_token(auth.client_token)
        with pytest.raises(Forbidden):
            await client.auth.token.lookup_self()


async def test_approle_with_wrapped_secret_id(
    devstack: DevStack, root_client: AsyncVaultClient
) -> None:
    body = await root_client.request(
        "POST",
        f"auth/{devstack.approle_mount}/role/{devstack.approle_role}/secret-id",
        idempotent=False,
        wrap_ttl="60s",
    )
    wrap = to_wrap_info(body)
    assert "wrap_info" not in repr(wrap)
    looked = await root_client.sys.wrapping.lookup(wrap.token)
    assert looked.creation_path.endswith("/secret-id")
    assert looked.creation_ttl == 60
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as client:
        method = AppRoleAuth(devstack.role_id, wrapped_secret_id=wrap.token)
        first = await client.login(method)
        assert (await client.auth.token.lookup_self()).accessor == first.accessor
        second = await client.login(method)  # the unwrapped secret_id is kept
        assert second.client_token != first.client_token
        with pytest.raises(InvalidRequest):  # wrapping tokens are single use
            await client.sys.wrapping.unwrap(wrap.token)


async def test_approle_secret_id_file_and_custom_mount(devstack: DevStack, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret-id"
    secret_file.write_text(devstack.secret_id + "\n")
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as client:
        auth = await client.login(
            AppRoleAuth(devstack.role_id, secret_id_file=secret_file, mount_point="approle")
        )
        assert auth.client_token
        with pytest.raises(Forbidden):  # an unknown mount is "permission denied"
            await client.login(
                AppRoleAuth(devstack.role_id, devstack.secret_id, mount_point="no-such-mount")
            )


async def test_token_auth_from_file(
    devstack: DevStack, root_client: AsyncVaultClient, tmp_path: Path
) -> None:
    child = await root_client.auth.token.create(policies=["default"], ttl="10m")
    sink = tmp_path / "agent-sink"
    sink.write_text(child.client_token)
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as client:
        auth = await client.login(TokenAuth(token_file=sink))
        assert auth.accessor == child.accessor
        assert 0 < auth.lease_duration <= 600
        assert (await client.auth.token.lookup_self()).accessor == child.accessor


async def test_userpass_on_custom_mount(root_client: AsyncVaultClient) -> None:
    mount = unique("up")
    await enable_auth(root_client, mount, "userpass")
    await root_client.request(
        "POST",
        f"auth/{mount}/users/alice",
        json={"password": "correct horse", "token_policies": "default"},
        idempotent=True,
    )
    async with AsyncVaultClient(config=ClientConfig(addr=root_client.config.addr)) as client:
        auth = await client.login(UserpassAuth("alice", "correct horse", mount_point=mount))
        assert auth.metadata.get("username") == "alice"
        with pytest.raises(InvalidRequest):
            await client.login(UserpassAuth("alice", "wrong", mount_point=mount))


async def test_kv_v2_full_cycle(examples_client: AsyncVaultClient) -> None:
    kv = examples_client.secrets.kv_v2
    path = unique("it/app") + "/config"
    v1 = await kv.create_or_update_secret(path, {"user": "a", "pass": "p1"}, cas=0)
    assert v1.version == 1
    with pytest.raises(InvalidRequest, match="check-and-set"):
        await kv.create_or_update_secret(path, {"user": "b"}, cas=0)
    v2 = await kv.create_or_update_secret(path, {"user": "b", "pass": "p2"}, cas=1)
    assert v2.version == 2
    patched = await kv.patch(path, {"pass": "p3"})
    assert patched.version == 3
    latest = await kv.read_secret(path)
    assert dict(latest.data) == {"user": "b", "pass": "p3"}
    assert latest.metadata["version"] == 3
    old = await kv.read_secret(path, version=1)
    assert dict(old.data) == {"user": "a", "pass": "p1"}
    listing = await kv.list_secrets(path.rsplit("/", 1)[0])
    assert listing == ("config",)
    assert await kv.list_secrets(unique("nothing-here")) == ()

    await kv.delete_latest_version(path)
    with pytest.raises(InvalidPath):
        await kv.read_secret(path)
    await kv.undelete_versions(path, [3])
    assert (await kv.read_secret(path)).data["pass"] == "p3"
    await kv.delete_versions(path, [2])
    with pytest.raises(InvalidPath):
        await kv.read_secret(path, version=2)


async def test_kv_v2_metadata_and_destroy(root_client: AsyncVaultClient) -> None:
    kv = root_client.secrets.kv_v2
    path = unique("meta")
    await kv.create_or_update_secret(path, {"a": "1"})
    await kv.create_or_update_secret(path, {"a": "2"})
    await kv.update_metadata(path, max_versions=5, custom_metadata={"owner": "team"})
    await kv.destroy_versions(path, [1])
    meta = await kv.read_metadata(path)
    assert meta.current_version == 2
    assert meta.max_versions == 5
    assert meta.custom_metadata == {"owner": "team"}
    assert meta.versions[1].destroyed is True
    assert meta.versions[2].destroyed is False
    await kv.delete_metadata_and_all_versions(path)
    with pytest.raises(InvalidPath):
        await kv.read_metadata(path)


async def test_kv_v1(root_client: AsyncVaultClient) -> None:
    mount = unique("kv1")
    await root_client.request(
        "POST",
        f"sys/mounts/{mount}",
        json={"type": "kv", "options": {"version": "1"}},
        idempotent=False,
    )
    kv = root_client.secrets.kv_v1
    await kv.create_or_update_secret("a/b", {"x": "1"}, mount_point=mount)
    assert dict((await kv.read_secret("a/b", mount_point=mount)).data) == {"x": "1"}
    assert await kv.list_secrets("a", mount_point=mount) == ("b",)
    await kv.delete_secret("a/b", mount_point=mount)
    with pytest.raises(InvalidPath):
        await kv.read_secret("a/b", mount_point=mount)


async def test_transit_encrypt_rotate_rewrap(
    devstack: DevStack, examples_client: AsyncVaultClient, root_client: AsyncVaultClient
) -> None:
    transit = examples_client.secrets.transit
    key = unique("key")
    await root_client.secrets.transit.create_key(key)
    plaintext = b"\x00\xffcard 4111-1111"
    ciphertext = await transit.encrypt(key, plaintext)
    assert ciphertext.startswith("vault:v1:")
    assert await transit.decrypt(key, ciphertext) == plaintext
    await root_client.secrets.transit.rotate_key(key)
    assert (await root_client.secrets.transit.read_key(key))["latest_version"] == 2
    rewrapped = await transit.rewrap(key, ciphertext)
    assert rewrapped.startswith("vault:v2:")
    assert await transit.decrypt(key, rewrapped) == plaintext
    items = [b"one", b"two", b""]
    batch = await transit.encrypt_batch(key, items)
    assert all(c.startswith("vault:v2:") for c in batch)
    assert await transit.decrypt_batch(key, batch) == items
    assert len(await transit.rewrap_batch(key, batch)) == 3
    data_key = await transit.generate_data_key(key, "plaintext", bits=256)
    assert data_key.plaintext is not None
    assert len(data_key.plaintext) == 32
    assert await transit.decrypt(key, data_key.ciphertext) == data_key.plaintext
    wrapped_only = await transit.generate_data_key(key, "wrapped")
    assert wrapped_only.plaintext is None
    with pytest.raises(InvalidRequest):
        await transit.decrypt(key, "vault:v1:not-base64!!")
    # the dev stack's own key works through the default mount
    assert (
        await transit.decrypt(
            devstack.transit_key, await transit.encrypt(devstack.transit_key, b"x")
        )
        == b"x"
    )


async def test_database_dynamic_credentials_and_leases(
    devstack: DevStack, app_client: AsyncVaultClient, root_client: AsyncVaultClient
) -> None:
    secret = await app_client.secrets.database.generate_credentials(devstack.dynamic_role)
    assert secret.lease_id.startswith(f"{devstack.db_mount}/creds/{devstack.dynamic_role}/")
    assert secret.renewable
    assert secret.lease_duration > 0
    assert set(secret.data) == {"username", "password"}
    assert secret.data["password"] not in repr(secret)
    async with connected_as(devstack, secret.data["username"], secret.data["password"]) as conn:
        assert await conn.fetchval("SELECT current_user") == secret.data["username"]
    # Lookup has no per-lease URL, so the service's policy leaves it to an operator.
    with pytest.raises(Forbidden):
        await app_client.sys.leases.lookup(secret.lease_id)
    info = await root_client.sys.leases.lookup(secret.lease_id)
    assert info.lease_id == secret.lease_id
    assert 0 < info.ttl <= secret.lease_duration
    renewed = await app_client.sys.leases.renew(secret.lease_id, increment=120)
    assert renewed.lease_id == secret.lease_id
    assert 0 < renewed.lease_duration <= 120
    await app_client.sys.leases.revoke(secret.lease_id)
    assert secret.data["username"] not in await devstack.v_roles()
    with pytest.raises(InvalidRequest):
        await root_client.sys.leases.lookup(secret.lease_id)


async def test_database_static_credentials_and_listing(
    devstack: DevStack, app_client: AsyncVaultClient, root_client: AsyncVaultClient
) -> None:
    db = app_client.secrets.database
    static = await db.get_static_credentials(devstack.static_role)
    assert static.data["username"] == "app_static"
    assert static.data["password"]
    assert static.data["ttl"] > 0
    assert "last_vault_rotation" in static.data
    assert static.lease_id == ""
    with pytest.raises(Forbidden):  # the service's policy names its roles; listing is not one
        await db.list_roles()
    admin = root_client.secrets.database
    assert devstack.dynamic_role in await admin.list_roles()
    assert devstack.static_role in await admin.list_static_roles()
    with pytest.raises(InvalidRequest, match="unknown role"):
        await admin.generate_credentials("no-such-role")
    with pytest.raises(InvalidConfig, match="role name"):  # one segment: refused, not sent
        await admin.generate_credentials("no/such/role")


async def test_revoke_prefix_and_wrapping(
    devstack: DevStack, root_client: AsyncVaultClient
) -> None:
    secrets_ = [
        await root_client.secrets.database.generate_credentials(devstack.dynamic_role)
        for _ in range(2)
    ]
    await root_client.sys.leases.revoke_prefix(f"{devstack.db_mount}/creds/{devstack.dynamic_role}")
    remaining = await devstack.v_roles()
    assert all(s.data["username"] not in remaining for s in secrets_)
    wrap = await root_client.sys.wrapping.wrap({"hello": "world"}, ttl="30s")
    assert (await root_client.sys.wrapping.lookup(wrap.token)).creation_path == "sys/wrapping/wrap"
    unwrapped = await root_client.sys.wrapping.unwrap(wrap.token)
    assert dict(unwrapped.data) == {"hello": "world"}


async def test_namespace_header_is_sent_and_rejected_by_dev_server(devstack: DevStack) -> None:
    # OpenBao without namespaces configured refuses an unknown namespace: proof the header is sent
    config = ClientConfig(addr=devstack.vault_addr, token=devstack.root_token, namespace="nope")
    async with AsyncVaultClient(config=config) as client:
        with pytest.raises((InvalidPath, Forbidden, InvalidRequest)):
            await client.secrets.kv_v2.read_secret("anything")


async def test_root_only_endpoints_answer_a_client_in_a_namespace(devstack: DevStack) -> None:
    """sys/health and sys/seal-status exist only in the root namespace (a namespace header gets
    400 "operation unavailable in namespaces"): a client in a namespace still reads them, so
    the service's Vault probe works with VAULT_NAMESPACE set."""
    name = unique("ns")
    devstack.vault_call("POST", f"sys/namespaces/{name}")
    config = ClientConfig(addr=devstack.vault_addr, token=devstack.root_token, namespace=name)
    async with AsyncVaultClient(config=config) as client:
        assert (await client.sys.health()).status_code == 200
        assert (await client.sys.seal_status()).sealed is False
        # the namespace still applies to everything else: its own mounts, not the root's
        with pytest.raises((InvalidPath, Forbidden, InvalidRequest)):
            await client.secrets.kv_v2.read_secret("anything")


async def test_default_transport_serves_plain_httpx(devstack: DevStack) -> None:
    import httpx

    from vault_async._transport import DefaultTransport

    transport = DefaultTransport()
    async with httpx.AsyncClient(transport=transport, base_url=devstack.vault_addr) as http:
        response = await http.get("/v1/sys/health")
        assert response.status_code == 200
        assert response.json()["initialized"] is True
        missing = await http.get(
            "/v1/secret/data/nope", headers={"X-Vault-Token": devstack.root_token}
        )
        assert missing.status_code == 404


async def test_connection_refused_is_connection_error() -> None:
    from vault_async import RetryPolicy, VaultConnectionError

    config = ClientConfig(
        addr=f"http://127.0.0.1:{free_port()}",  # a port nobody listens on
        token="t",
        retry=RetryPolicy(max_retries=1, backoff_max=0.01, backoff_initial=0.01),
    )
    async with AsyncVaultClient(config=config) as client:
        with pytest.raises(VaultConnectionError, match=r"\(ConnectError\)"):
            await client.secrets.database.generate_credentials("app")


async def test_token_lookup_and_revoke_by_accessor(root_client: AsyncVaultClient) -> None:
    child = await root_client.auth.token.create(policies=["default"], ttl="10m")
    info = await root_client.auth.token.lookup_accessor(child.accessor)
    assert info.accessor == child.accessor
    assert 0 < info.ttl <= 600
    assert "default" in info.policies
    await root_client.auth.token.revoke_accessor(child.accessor)
    with pytest.raises(InvalidRequest):
        await root_client.auth.token.lookup_accessor(child.accessor)
    async with AsyncVaultClient(
        config=ClientConfig(addr=root_client.config.addr, token=child.client_token)
    ) as revoked:
        with pytest.raises(Forbidden):
            await revoked.auth.token.lookup_self()


async def test_database_role_read_and_static_rotation(
    devstack: DevStack, root_client: AsyncVaultClient
) -> None:
    db = root_client.secrets.database
    role = await db.read_role(devstack.dynamic_role)
    assert role["db_name"]
    assert role["creation_statements"]
    with pytest.raises(InvalidPath):
        await db.read_role("no-such-role")

    before = await db.get_static_credentials(devstack.static_role)
    await db.rotate_static_role_credentials(devstack.static_role)
    after = await db.get_static_credentials(devstack.static_role)
    assert after.data["username"] == before.data["username"]
    assert after.data["password"] != before.data["password"]
    assert after.data["last_vault_rotation"] != before.data["last_vault_rotation"]
    assert not await can_login(devstack, before.data["username"], before.data["password"])
    assert await can_login(devstack, after.data["username"], after.data["password"])


async def test_seal_and_unseal() -> None:
    # Its own dev stack: a sealed server would fail every other test sharing one.
    with DevStack() as stack:
        async with AsyncVaultClient(config=ClientConfig(addr=stack.vault_addr)) as client:
            assert not (await client.sys.seal_status()).sealed
            stack.vault_call("PUT", "sys/seal")
            sealed = await client.sys.seal_status()
            assert sealed.sealed
            assert (await client.sys.health()).sealed
            with pytest.raises(InvalidRequest):
                await client.sys.unseal("not-a-key")
            unsealed = await client.sys.unseal(stack.unseal_key())
            assert not unsealed.sealed
            assert not (await client.sys.health()).sealed
