"""TLS to OpenBao: verified with VAULT_CACERT; a wrong CA fails clearly; skipping verification
is possible but never silent."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import self_signed_pem
from vault_async import AsyncVaultClient, ClientConfig, VaultConnectionError, VaultError
from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_stack() -> Iterator[DevStack]:
    with DevStack(tls=True) as stack:
        yield stack


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    """A well-formed CA certificate, but not the one that signed our server."""
    path = tmp_path / "other-ca.pem"
    path.write_text(self_signed_pem(common_name="other-test-ca"))
    return path


async def test_verified_with_vault_cacert(
    tls_stack: DevStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_ADDR", tls_stack.vault_addr)
    monkeypatch.setenv("VAULT_TOKEN", tls_stack.root_token)
    monkeypatch.setenv("VAULT_CACERT", str(tls_stack.ca_cert))
    async with AsyncVaultClient() as client:
        health = await client.sys.health()
    assert health.initialized is True
    assert health.sealed is False


async def test_wrong_ca_fails_with_a_clear_error(tls_stack: DevStack, other_ca: Path) -> None:
    config = ClientConfig(
        addr=tls_stack.vault_addr, token=tls_stack.root_token, ca_cert=str(other_ca)
    )
    async with AsyncVaultClient(config=config) as client:
        with pytest.raises(VaultConnectionError) as info:
            await client.sys.health()
    message = str(info.value).lower()
    assert "certificate" in message or "ssl" in message, message
    assert tls_stack.root_token not in str(info.value)
    assert isinstance(info.value, VaultError)


async def test_skip_verify_works_and_warns(
    tls_stack: DevStack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in list(os.environ):
        if name.startswith(("VAULT_", "BAO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VAULT_ADDR", tls_stack.vault_addr)
    monkeypatch.setenv("VAULT_TOKEN", tls_stack.root_token)
    monkeypatch.setenv("VAULT_SKIP_VERIFY", "true")
    with caplog.at_level(logging.WARNING):
        async with AsyncVaultClient() as client:
            health = await client.sys.health()
    assert health.sealed is False
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("verif" in r.getMessage().lower() for r in warnings), [
        r.getMessage() for r in warnings
    ]
