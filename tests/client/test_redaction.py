"""No token, secret_id, password or secret value in reprs, errors or DEBUG log records."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
import respx

from vault_async import AppRoleAuth, AsyncVaultClient, TokenAuth, UserpassAuth, VaultError
from vault_async._models import AuthResult, LeaseInfo, Secret, TokenInfo, WrapInfo
from vault_async._translate import status_error
from vault_async._transport import RawResponse
from vault_async.secrets import DataKey

from .conftest import TOKEN

SECRET_ID = "sid-0f1e2d3c4b5a"
PASSWORD = "A1a-pg-password-xyz"
KV_VALUE = "kv-value-do-not-log"
NEW_TOKEN = "hvs.NEWTOKENFROMLOGIN"
WRAP_TOKEN = "hvs.WRAPPINGTOKEN123"
SECRETS = [TOKEN, SECRET_ID, PASSWORD, KV_VALUE, NEW_TOKEN, WRAP_TOKEN, "dXNlcg=="]


def _check(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"leaked {secret[:4]}..."


async def test_nothing_secret_reaches_logs_reprs_or_errors(
    client: AsyncVaultClient, router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    router.post("/auth/approle/login").mock(
        side_effect=[
            httpx.Response(200, json={"auth": {"client_token": NEW_TOKEN, "accessor": "acc"}}),
            httpx.Response(400, json={"errors": [f"invalid secret id {SECRET_ID}"]}),
        ]
    )
    router.get("/database/creds/app").respond(
        200,
        json={
            "lease_id": "database/creds/app/abc",
            "lease_duration": 60,
            "data": {"username": "v-app-1", "password": PASSWORD},
        },
    )
    router.get("/secret/data/app").mock(
        side_effect=[
            httpx.Response(200, json={"data": {"data": {"k": KV_VALUE}, "metadata": {}}}),
            httpx.Response(500, json={"errors": ["internal"]}),
            httpx.Response(500, json={"errors": ["internal"]}),
            httpx.Response(500, json={"errors": ["internal"]}),
            httpx.Response(500, json={"errors": ["internal"]}),
        ]
    )
    router.post("/transit/datakey/plaintext/app").respond(
        200,
        json={"data": {"ciphertext": "vault:v1:abc", "plaintext": "dXNlcg==", "key_version": 1}},
    )
    router.post("/sys/wrapping/unwrap").respond(403, json={"errors": ["bad wrapping token"]})

    seen: list[str] = []
    auth = await client.login(AppRoleAuth("role-id", SECRET_ID))
    seen += [repr(auth), str(auth), repr(AppRoleAuth("role-id", SECRET_ID))]
    creds = await client.secrets.database.generate_credentials("app")
    seen += [repr(creds), str(creds)]
    assert creds.data["password"] == PASSWORD  # the value is there, just not shown
    kv = await client.secrets.kv_v2.read_secret("app")
    seen.append(repr(kv))
    key: DataKey = await client.secrets.transit.generate_data_key("app")
    seen.append(repr(key))
    assert key.plaintext == b"user"
    for call in (
        client.login(AppRoleAuth("role-id", SECRET_ID)),
        client.secrets.kv_v2.read_secret("app"),
        client.sys.wrapping.unwrap(WRAP_TOKEN),
    ):
        with pytest.raises(VaultError) as info:
            await call
        seen += [str(info.value), repr(info.value)]
    seen += [repr(UserpassAuth("me", PASSWORD)), repr(TokenAuth(TOKEN)), repr(client)]
    seen += [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    assert any(r.getMessage() == "client.request" for r in caplog.records)
    for text in seen:
        _check(text)


async def test_token_file_is_reread_when_it_changes(
    client: AsyncVaultClient, router: respx.MockRouter, vtime: object, tmp_path: Path
) -> None:
    sink = tmp_path / "sink"
    sink.write_text("tok-one\n")
    tokens: list[str] = []

    def lookup(request: httpx.Request) -> httpx.Response:
        tokens.append(request.headers["X-Vault-Token"])
        return httpx.Response(200, json={"data": {"ttl": 100, "renewable": True, "id": "x"}})

    router.get("/auth/token/lookup-self").mock(side_effect=lookup)
    result = await client.login(TokenAuth(token_file=sink))
    assert result.client_token == "tok-one"
    assert result.lease_duration == 100
    sink.write_text("tok-two-longer\n")
    vtime.now += 5  # type: ignore[attr-defined]
    await client.auth.token.lookup_self()
    assert tokens == ["tok-one", "tok-two-longer"]
    assert client.token == "tok-two-longer"


LEASE_ID = "database/creds/app/q7Zk2Lm9Xw4Rt8Yp3Vn6"
ACCESSOR = "oX3l9QkR2mV8tY1wZ5nB7cD4"
ENTITY = "0b7f6e2a-9c41-4d3e-8f55-a1b2c3d4e5f6"


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        (Secret(lease_id=LEASE_ID), LEASE_ID),
        (LeaseInfo(lease_id=LEASE_ID), LEASE_ID),
        (AuthResult(client_token=NEW_TOKEN, accessor=ACCESSOR), ACCESSOR),
        (AuthResult(client_token=NEW_TOKEN, entity_id=ENTITY), ENTITY),
        (WrapInfo(token=WRAP_TOKEN, accessor=ACCESSOR), ACCESSOR),
        (TokenInfo(accessor=ACCESSOR), ACCESSOR),
        (TokenInfo(entity_id=ENTITY), ENTITY),
    ],
)
def test_reprs_show_only_a_suffix_of_ids(value: object, secret: str) -> None:
    text = repr(value)
    assert secret not in text, text
    assert secret[-6:] in text, text
    _check(text)


async def test_a_secret_used_as_a_key_is_scrubbed_from_vault_errors(
    root_client: AsyncVaultClient,
) -> None:
    # OpenBao quotes a custom_metadata key that is too long (over 128 characters).
    secret_key = "sk-" + "Q7v" * 50
    with pytest.raises(VaultError) as info:
        await root_client.secrets.kv_v2.update_metadata(
            "redaction/keys", custom_metadata={secret_key: "v"}
        )
    assert info.value.status == 400
    assert "<redacted>" in str(info.value), str(info.value)
    assert secret_key not in str(info.value)
    assert secret_key not in repr(info.value)


def test_status_error_scrubs_keys_at_any_depth() -> None:
    body = b'{"errors": ["bad key outer-secret-key and inner-secret-key"]}'
    response = RawResponse(400, {}, body, "Bad Request")
    sent = {"outer-secret-key": {"list": [{"inner-secret-key": 1}]}}
    error = status_error(response, method="POST", path="p", sent=sent, token=None)
    assert "outer-secret-key" not in str(error)
    assert "inner-secret-key" not in str(error)


@pytest.mark.parametrize(
    "special",
    ['"', "\\", "\t", "\u2028", "\x01", "<&>"],
    ids=["quote", "backslash", "tab", "u2028", "ctrl", "html"],
)
async def test_a_secret_vault_echoes_escaped_is_scrubbed(
    root_client: AsyncVaultClient, special: str
) -> None:
    # OpenBao quotes the too-long key Go-style (%q): '"' comes back as '\"', a tab as '\t'.
    secret_key = "SUPERSECRET" + special + "q" + "x" * 200
    with pytest.raises(VaultError) as info:
        await root_client.secrets.kv_v2.update_metadata(
            "redaction/escaped", custom_metadata={secret_key: "v"}
        )
    assert info.value.status == 400
    for text in (str(info.value), repr(info.value)):
        assert "<redacted>" in text, text
        assert "x" * 50 not in text, text


def test_status_error_scrubs_json_escaped_secrets() -> None:
    secret = 'pw"<tab>\t&\u2028end'
    echoed = '"pw\\"\\u003ctab\\u003e\\t\\u0026\\u2028end"'  # Go's json.Marshal form
    body = json.dumps({"errors": ["bad value " + echoed]}).encode()
    error = status_error(
        RawResponse(400, {}, body, "Bad Request"),
        method="PUT",
        path="p",
        sent={"data": {"k": secret}},
        token=None,
    )
    assert "<redacted>" in str(error), str(error)
    assert "end" not in str(error), str(error)
