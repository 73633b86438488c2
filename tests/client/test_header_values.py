"""A token or namespace that cannot be a header value fails early, as the client's own error.

It names the setting and never echoes the value (a token is a secret).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import respx

from vault_async import AsyncVaultClient, ClientConfig, InvalidConfig, VaultError
from vault_async.devstack import DevStack

BAD_VALUES = ["hvs.SECRET\r\nX-Injected: 1", "hvs.SECRET\n", "hvs.SE\x00CRET", "hvs.SÉCRET"]


def _assert_clean(error: InvalidConfig, setting: str) -> None:
    message = str(error)
    assert isinstance(error, VaultError)
    assert setting in message, message
    assert "SECRET" not in message, message
    assert "SECRET" not in repr(error)


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_bad_token_in_config_or_env(bad: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig) as info:
        ClientConfig(addr="http://v:8200", token=bad)
    _assert_clean(info.value, "VAULT_TOKEN")
    with pytest.raises(InvalidConfig) as info:
        ClientConfig.from_env({"VAULT_TOKEN": bad}, home=tmp_path)
    _assert_clean(info.value, "VAULT_TOKEN")


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_bad_namespace_in_config_or_env(bad: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig) as info:
        ClientConfig(addr="http://v:8200", namespace=bad)
    _assert_clean(info.value, "VAULT_NAMESPACE")
    with pytest.raises(InvalidConfig) as info:
        ClientConfig.from_env({"VAULT_NAMESPACE": bad}, home=tmp_path)
    _assert_clean(info.value, "VAULT_NAMESPACE")


@pytest.mark.parametrize("bad", BAD_VALUES)
async def test_bad_tokens_given_later_fail_before_sending(
    client: AsyncVaultClient, router: respx.MockRouter, bad: str
) -> None:
    with pytest.raises(InvalidConfig) as info:
        client.set_token(bad)
    _assert_clean(info.value, "token")
    with pytest.raises(InvalidConfig) as info:
        await client.sys.wrapping.unwrap(bad)
    _assert_clean(info.value, "token")
    with pytest.raises(InvalidConfig) as info:
        await client.sys.wrapping.wrap({"k": "v"}, ttl="5m\r\nX-Injected: 1")
    assert "wrap_ttl" in str(info.value)
    assert not router.calls


async def test_bad_token_against_a_real_server(devstack: DevStack) -> None:
    with pytest.raises(InvalidConfig) as info:
        AsyncVaultClient(devstack.vault_addr, token="hvs.SECRET\r\nX-Injected: 1")
    _assert_clean(info.value, "VAULT_TOKEN")
    async with AsyncVaultClient(devstack.vault_addr, token=devstack.root_token) as client:
        with pytest.raises(InvalidConfig) as info:
            await client.sys.wrapping.unwrap("hvs.SECRET\r\n")
        _assert_clean(info.value, "token")
        assert (await client.sys.health()).sealed is False
