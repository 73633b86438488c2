"""A single-segment name (key, role, username) can never reach another endpoint.

OpenBao decodes ``%2F`` before routing, so a quoted slash inside a key name still splits
the path: ``create_key("app/config", exportable=True)`` would reach ``keys/app/config``,
the config endpoint of the key ``app``. Such names are refused before anything is sent.
"""

from __future__ import annotations

import pytest
import respx

from tests.client._util import unique
from vault_async import AsyncVaultClient, InvalidConfig, VaultError
from vault_async._paths import name, subpath

BAD_NAMES = [
    ("{victim}/config", "'/'"),
    ("{victim}%2Fconfig", "encoded slash"),
    ("{victim}%2fconfig", "encoded slash"),
    ("{victim}%252Fconfig", "encoded slash"),
    ("{victim}\r\nX-Injected: 1", "control character"),
    ("{victim}\x00", "control character"),
    ("{victim}\x7f", "control character"),
    ("", "empty"),
    ("{victim}\udcff", "surrogate"),
]


async def test_a_slash_in_a_key_name_does_not_reconfigure_another_key(
    root_client: AsyncVaultClient,
) -> None:
    transit = root_client.secrets.transit
    victim = unique("victim")
    await transit.create_key(victim)
    before = await transit.read_key(victim)
    assert before["exportable"] is False
    with pytest.raises(InvalidConfig, match="key name"):
        await transit.create_key(f"{victim}/config", exportable=True)
    with pytest.raises(InvalidConfig, match="key name"):
        await transit.create_key(f"{victim}/rotate")
    after = await transit.read_key(victim)
    assert after["exportable"] is False
    assert after["latest_version"] == before["latest_version"] == 1


@pytest.mark.parametrize(("template", "reason"), BAD_NAMES)
async def test_bad_names_are_refused_before_sending(
    client: AsyncVaultClient, router: respx.MockRouter, template: str, reason: str
) -> None:
    bad = template.format(victim="app")
    with pytest.raises(InvalidConfig) as info:
        await client.secrets.transit.create_key(bad, exportable=True)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, VaultError)
    message = str(info.value)
    assert "key name" in message, message
    assert reason in message, message
    assert "\n" not in message
    assert "\r" not in message
    with pytest.raises(InvalidConfig, match="role name"):
        await client.secrets.database.generate_credentials(bad)
    assert not router.calls


@pytest.mark.parametrize(
    "bad", ["a/%2F/b", "a/b%2fc", "a/b%252Fc", "a/b\r\nc", "a/\x00", "a/b\x85", "a/b\udcff"]
)
async def test_multi_segment_paths_refuse_encoded_slashes_and_controls(
    client: AsyncVaultClient, router: respx.MockRouter, bad: str
) -> None:
    with pytest.raises(InvalidConfig, match="path"):
        await client.secrets.kv_v2.read_secret(bad)
    with pytest.raises(InvalidConfig, match="mount_point"):
        await client.secrets.kv_v2.read_secret("ok", mount_point=bad)
    assert not router.calls


def test_multi_segment_paths_stay_allowed() -> None:
    assert subpath("team/database", "mount_point") == "team/database"
    assert subpath("/a b/c?d/", "path") == "a%20b/c%3Fd"
    assert name("app-1.v2", "key name") == "app-1.v2"
    assert name("a b?#", "role name") == "a%20b%3F%23"
