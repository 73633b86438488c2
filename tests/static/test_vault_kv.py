"""The Vault KV v2 provider against the real dev-stack OpenBao."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from vault_async import AsyncVaultClient
from vault_async.static import (
    SecretAccessDenied,
    SecretChange,
    SecretConfigError,
    SecretNotFound,
    vault_kv,
)

pytestmark = pytest.mark.integration

FIRST = "kv-first-value-never-shown"
SECOND = "kv-second-value-never-shown"


async def test_a_version_written_mid_run_fires_a_change_and_both_stay_readable(
    kv_client: AsyncVaultClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    kv = kv_client.secrets.kv_v2
    name = f"static/{uuid.uuid4().hex[:8]}"
    await kv.create_or_update_secret(name, {"password": FIRST})
    changed: list[SecretChange] = []
    seen: list[str] = []
    try:
        async with vault_kv(kv_client, ttl=600, refresh_interval=0.05) as secrets:
            arrived = asyncio.Event()

            def on_change(change: SecretChange) -> None:
                changed.append(change)
                arrived.set()

            secrets.subscribe(name, on_change)
            first = await secrets.get(name)
            assert first.mapping() == {"password": FIRST}
            assert first.version == "1"
            await kv.create_or_update_secret(name, {"password": SECOND})
            assert (await secrets.get(name)).version == "1"  # still cached (ttl 600 s)
            await asyncio.wait_for(arrived.wait(), 10)  # the background refresh saw version 2
            assert (await secrets.get(name)).mapping()["password"] == SECOND
            assert (await secrets.get(name, version=1)).mapping()["password"] == FIRST
            assert (await secrets.get(name, version="2")).version == "2"
            with pytest.raises(SecretNotFound) as missing:
                await secrets.get(name, version=3)
            with pytest.raises(SecretConfigError, match="not a positive integer"):
                await secrets.get(name, version="v1")
            seen += [repr(first), str(first), repr(changed[0]), repr(secrets)]
            seen += [str(missing.value), repr(missing.value)]
    finally:
        await kv.delete_metadata_and_all_versions(name)
    assert [(c.previous.version, c.current.version) for c in changed] == [("1", "2")]
    assert str(missing.value).startswith(f"vault-kv secret {name!r}: not found")
    seen += [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    assert any(r.getMessage() == "static_secret.changed" for r in caplog.records)
    for text in seen:
        assert FIRST not in text
        assert SECOND not in text


async def test_missing_deleted_and_forbidden_secrets_name_the_secret(
    kv_client: AsyncVaultClient, service_client: AsyncVaultClient
) -> None:
    name = f"static/{uuid.uuid4().hex[:8]}"
    await kv_client.secrets.kv_v2.create_or_update_secret(name, {"k": FIRST})
    await kv_client.secrets.kv_v2.delete_latest_version(name)
    try:
        async with vault_kv(kv_client) as secrets:
            with pytest.raises(
                SecretNotFound, match=r"^vault-kv secret 'static/absent': not found"
            ):
                await secrets.get("static/absent")
            with pytest.raises(SecretNotFound, match=f"^vault-kv secret '{name}'") as deleted:
                await secrets.get(name)
        async with vault_kv(service_client) as denied:
            with pytest.raises(
                SecretAccessDenied, match=f"^vault-kv secret '{name}': permission denied"
            ) as forbidden:
                await denied.get(name)
    finally:
        await kv_client.secrets.kv_v2.delete_metadata_and_all_versions(name)
    for error in (deleted.value, forbidden.value):
        assert "\n" not in str(error)
        assert FIRST not in str(error) + repr(error)
