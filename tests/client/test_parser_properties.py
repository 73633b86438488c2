"""The response parser raises nothing but VaultError, whatever bytes or JSON arrive."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault_async import AsyncVaultClient, ClientConfig, RetryPolicy, VaultError
from vault_async._parse import decode_body, to_auth, to_secret, to_token_info, to_wrap_info

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
vault_keys = st.sampled_from(
    [
        "data",
        "auth",
        "wrap_info",
        "lease_id",
        "lease_duration",
        "renewable",
        "warnings",
        "client_token",
        "policies",
        "ttl",
        "token",
        "errors",
        "metadata",
        "accessor",
    ]
)
vaultish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(vault_keys, inner, max_size=5),
    max_leaves=25,
)


def _parse_all(body: dict[str, Any]) -> None:
    for fn in (to_secret, to_auth, to_token_info, to_wrap_info):
        with contextlib.suppress(VaultError):
            fn(body)


@given(st.binary(max_size=200))
def test_arbitrary_bytes(raw: bytes) -> None:
    try:
        body = decode_body(raw)
    except VaultError:
        return
    assert isinstance(body, dict)
    _parse_all(body)


@given(json_values | vaultish)
def test_arbitrary_json(value: Any) -> None:
    raw = json.dumps(value).encode()
    try:
        body = decode_body(raw)
    except VaultError:
        assert not isinstance(value, dict)
        return
    _parse_all(body)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=120) | vaultish.map(lambda v: json.dumps(v).encode()))
async def test_every_method_through_the_client(raw: bytes) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=raw))
    config = ClientConfig(addr="http://v:8200", token="t", retry=RetryPolicy(max_retries=0))
    async with AsyncVaultClient(config=config, transport=transport) as client:
        calls = [
            client.secrets.kv_v2.read_secret("a"),
            client.secrets.kv_v2.read_metadata("a"),
            client.secrets.kv_v2.list_secrets("a"),
            client.secrets.database.generate_credentials("r"),
            client.secrets.transit.decrypt("k", "vault:v1:x"),
            client.secrets.transit.encrypt_batch("k", [b"a", b"b"]),
            client.auth.token.lookup_self(),
            client.auth.token.renew_self(),
            client.sys.leases.lookup("l"),
            client.sys.health(),
        ]
        for call in calls:
            with contextlib.suppress(VaultError):
                await call
