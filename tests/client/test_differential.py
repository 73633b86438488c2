"""Our client and hvac, against the same server, read the same data."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import hvac
import pytest

from vault_async import AsyncVaultClient
from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hvac_client(devstack: DevStack) -> hvac.Client:
    return hvac.Client(url=devstack.vault_addr, token=devstack.root_token)


async def test_kv_v2_reads_match(root_client: AsyncVaultClient, hvac_client: hvac.Client) -> None:
    path = f"diff/{uuid.uuid4().hex[:8]}"
    value: dict[str, Any] = {"s": "text", "n": 3, "nested": {"l": [1, "two", None]}, "b": True}
    await root_client.secrets.kv_v2.create_or_update_secret(path, value)
    await root_client.secrets.kv_v2.create_or_update_secret(path, {"s": "second"})
    for version in (None, 1, 2):
        ours = await root_client.secrets.kv_v2.read_secret(path, version=version)
        theirs = await asyncio.to_thread(
            hvac_client.secrets.kv.v2.read_secret_version,
            path=path,
            version=version,
            mount_point="secret",
            raise_on_deleted_version=True,
        )
        assert dict(ours.data) == theirs["data"]["data"]
        assert dict(ours.metadata) == theirs["data"]["metadata"]
    our_meta = await root_client.secrets.kv_v2.read_metadata(path)
    their_meta = await asyncio.to_thread(
        hvac_client.secrets.kv.v2.read_secret_metadata, path=path, mount_point="secret"
    )
    assert our_meta.current_version == their_meta["data"]["current_version"]
    assert sorted(our_meta.versions) == sorted(int(k) for k in their_meta["data"]["versions"])
    ours_list = await root_client.secrets.kv_v2.list_secrets("diff")
    theirs_list = await asyncio.to_thread(
        hvac_client.secrets.kv.v2.list_secrets, path="diff", mount_point="secret"
    )
    assert list(ours_list) == theirs_list["data"]["keys"]


async def test_transit_round_trips_across_clients(
    devstack: DevStack, root_client: AsyncVaultClient, hvac_client: hvac.Client
) -> None:
    import base64

    key = devstack.transit_key
    plaintext = b"differential \x00\x01 bytes"
    ours = await root_client.secrets.transit.encrypt(key, plaintext)
    theirs = await asyncio.to_thread(
        hvac_client.secrets.transit.encrypt_data,
        name=key,
        plaintext=base64.b64encode(plaintext).decode(),
    )
    their_ct = theirs["data"]["ciphertext"]
    # each decrypts the other's ciphertext to the same bytes
    assert await root_client.secrets.transit.decrypt(key, their_ct) == plaintext
    their_pt = await asyncio.to_thread(
        hvac_client.secrets.transit.decrypt_data, name=key, ciphertext=ours
    )
    assert base64.b64decode(their_pt["data"]["plaintext"]) == plaintext
    our_key = await root_client.secrets.transit.read_key(key)
    their_key = await asyncio.to_thread(hvac_client.secrets.transit.read_key, name=key)
    assert our_key["latest_version"] == their_key["data"]["latest_version"]
    assert our_key["type"] == their_key["data"]["type"]


async def test_database_reads_match(
    devstack: DevStack, root_client: AsyncVaultClient, hvac_client: hvac.Client
) -> None:
    ours = await root_client.secrets.database.get_static_credentials(devstack.static_role)
    theirs = await asyncio.to_thread(
        hvac_client.secrets.database.get_static_credentials, name=devstack.static_role
    )
    assert ours.data["username"] == theirs["data"]["username"]
    assert ours.data["password"] == theirs["data"]["password"]
    assert ours.data["last_vault_rotation"] == theirs["data"]["last_vault_rotation"]
    our_roles = await root_client.secrets.database.list_roles()
    their_roles = await asyncio.to_thread(hvac_client.secrets.database.list_roles)
    assert list(our_roles) == their_roles["data"]["keys"]
    # dynamic credentials differ per call by design; compare their shape and lease settings
    our_creds = await root_client.secrets.database.generate_credentials(devstack.dynamic_role)
    their_creds = await asyncio.to_thread(
        hvac_client.secrets.database.generate_credentials, name=devstack.dynamic_role
    )
    assert set(our_creds.data) == set(their_creds["data"])
    assert our_creds.lease_duration == their_creds["lease_duration"]
    assert our_creds.renewable == their_creds["renewable"]
    for lease in (our_creds.lease_id, their_creds["lease_id"]):
        await root_client.sys.leases.revoke(lease)
