"""TLS to OpenBao: verified with VAULT_CACERT or VAULT_CAPATH (no hash links needed), against
VAULT_TLS_SERVER_NAME when set; a wrong CA fails clearly; skipping verification is possible
but never silent."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.certs import ca_and_server_cert, self_signed_pem
from tests.support.tls_openbao import TlsOpenBao, openbao_with_certificate
from vault_async import (
    AsyncVaultClient,
    ClientConfig,
    InvalidConfig,
    VaultConnectionError,
    VaultError,
)
from vault_async._prometheus import LatencyRecorder, LatencyTransport
from vault_async._transport import httpx_transport
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


@pytest.fixture(scope="module")
def named_bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TlsOpenBao, Path]]:
    """OpenBao serving a certificate for vault.internal only, and the CA file that signed it."""
    workdir = tmp_path_factory.mktemp("named-bao")
    ca_pem, cert_pem, key_pem = ca_and_server_cert("vault.internal")
    ca = workdir / "ca.pem"
    ca.write_text(ca_pem)
    with openbao_with_certificate(workdir, cert_pem, key_pem) as bao:
        yield bao, ca


def _client(config: ClientConfig, kind: str) -> AsyncVaultClient:
    transport: httpx.AsyncBaseTransport | LatencyTransport | None = None
    if kind == "httpx":
        transport = httpx_transport(config)
    elif kind == "latency-httpx":  # the metrics wrapper adapts the httpx transport itself
        transport = LatencyTransport(
            httpx_transport(config),
            LatencyRecorder(),
            config.timeout,
            server_name=config.tls_server_name,
        )
    return AsyncVaultClient(config=config, transport=transport)


@pytest.mark.parametrize("kind", ["default", "httpx", "latency-httpx"])
async def test_tls_server_name_verifies_a_certificate_for_another_name(
    named_bao: tuple[TlsOpenBao, Path], kind: str
) -> None:
    bao, ca = named_bao
    env = {"VAULT_ADDR": bao.addr, "VAULT_TOKEN": bao.root_token, "VAULT_CACERT": str(ca)}
    without_name = ClientConfig.from_env(env)
    async with _client(without_name, kind) as client:
        with pytest.raises(VaultConnectionError, match="certificate"):
            await client.sys.health()
    named = ClientConfig.from_env(env | {"VAULT_TLS_SERVER_NAME": "vault.internal"})
    assert named.tls_server_name == "vault.internal"
    async with _client(named, kind) as client:
        assert (await client.sys.health()).sealed is False


@pytest.mark.parametrize("kind", ["default", "httpx"])
async def test_tls_server_name_is_the_name_verified(tls_stack: DevStack, kind: str) -> None:
    # The dev server's certificate is for 127.0.0.1: asking for another name must fail.
    config = ClientConfig(
        addr=tls_stack.vault_addr,
        token=tls_stack.root_token,
        ca_cert=str(tls_stack.ca_cert),
        tls_server_name="vault.internal",
    )
    async with _client(config, kind) as client:
        with pytest.raises(VaultConnectionError, match="certificate"):
            await client.sys.health()


@pytest.mark.parametrize("kind", ["default", "httpx"])
async def test_capath_without_hash_links(tls_stack: DevStack, tmp_path: Path, kind: str) -> None:
    assert tls_stack.ca_cert is not None
    (tmp_path / "ca.pem").write_text(tls_stack.ca_cert.read_text())
    (tmp_path / "README").write_text("not a certificate")
    env = {
        "VAULT_ADDR": tls_stack.vault_addr,
        "VAULT_TOKEN": tls_stack.root_token,
        "VAULT_CAPATH": str(tmp_path),
    }
    async with _client(ClientConfig.from_env(env), kind) as client:
        assert (await client.sys.health()).sealed is False


def test_capath_without_any_certificate_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("not a certificate")
    config = ClientConfig(addr="https://127.0.0.1:8200", ca_path=str(tmp_path))
    with pytest.raises(InvalidConfig, match="VAULT_CAPATH"):
        config.ssl_context()


def test_tls_server_name_must_be_a_host_name() -> None:
    with pytest.raises(InvalidConfig, match="VAULT_TLS_SERVER_NAME"):
        ClientConfig(addr="https://127.0.0.1:8200", tls_server_name="vault.internal\r\nX: 1")


def test_vault_cacert_wins_over_vault_capath(tmp_path: Path) -> None:
    # As in the Vault CLI: with both set, the CA file is used and the directory ignored.
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(self_signed_pem(common_name="file-ca"))
    directory = tmp_path / "capath"
    directory.mkdir()
    (directory / "other.pem").write_text(self_signed_pem(common_name="directory-ca"))
    env = {"VAULT_ADDR": "https://127.0.0.1:8200", "VAULT_CACERT": str(ca_file)}
    context = ClientConfig.from_env(env | {"VAULT_CAPATH": str(directory)}).ssl_context()
    assert context is not None
    names = [dict(pair[0] for pair in ca["subject"])["commonName"] for ca in context.get_ca_certs()]
    assert names == ["file-ca"]
    (directory / "other.pem").unlink()  # a directory with no certificate is not even read
    assert ClientConfig.from_env(env | {"VAULT_CAPATH": str(directory)}).ssl_context()
