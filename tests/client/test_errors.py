"""Status codes map to one error class each; errors carry method, path and Vault's errors."""

from __future__ import annotations

import httpx
import pytest
import respx

from vault_async import (
    AsyncVaultClient,
    BadGateway,
    Forbidden,
    InternalServerError,
    InvalidPath,
    InvalidRequest,
    MalformedResponse,
    PreconditionFailed,
    RateLimited,
    UnexpectedStatus,
    VaultConnectionError,
    VaultError,
    VaultTimeout,
    VaultUnavailable,
)

from .conftest import TOKEN


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequest),
        (401, Forbidden),
        (403, Forbidden),
        (404, InvalidPath),
        (405, UnexpectedStatus),
        (412, PreconditionFailed),
        (429, RateLimited),
        (500, InternalServerError),
        (501, UnexpectedStatus),
        (502, BadGateway),
        (503, VaultUnavailable),
        (504, UnexpectedStatus),
    ],
)
async def test_status_maps_to_class(
    client: AsyncVaultClient, router: respx.MockRouter, status: int, cls: type[VaultError]
) -> None:
    # creating request: never retried on a status, so exactly one call is made
    route = router.get("/database/creds/app").respond(status, json={"errors": ["boom"]})
    with pytest.raises(cls) as info:
        await client.secrets.database.generate_credentials("app")
    err = info.value
    assert type(err) is cls
    assert err.status == status
    assert err.method == "GET"
    assert err.path == "database/creds/app"
    assert err.errors == ("boom",)
    assert "database/creds/app" in str(err)
    assert route.call_count == 1


async def test_error_body_not_json_still_maps(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    router.get("/database/creds/app").respond(403, text="<html>denied</html>")
    with pytest.raises(Forbidden) as info:
        await client.secrets.database.generate_credentials("app")
    assert info.value.errors == ("<non-JSON error body>",)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"data": {"username": "u"', b"[1, 2, 3]", b'"just a string"', b"\xff\xfe"],
)
async def test_malformed_success_body(
    client: AsyncVaultClient, router: respx.MockRouter, body: bytes
) -> None:
    router.get("/database/creds/app").respond(200, content=body)
    with pytest.raises(MalformedResponse) as info:
        await client.secrets.database.generate_credentials("app")
    assert info.value.status == 200
    assert info.value.path == "database/creds/app"


async def test_wrong_field_types_are_malformed(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    router.get("/database/creds/app").respond(200, json={"lease_duration": "soon", "data": {}})
    with pytest.raises(MalformedResponse, match="lease_duration"):
        await client.secrets.database.generate_credentials("app")


async def test_connect_error_and_timeout_have_own_classes(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    router.get("/database/creds/a").mock(side_effect=httpx.ConnectError("refused"))
    router.get("/database/creds/b").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(VaultConnectionError, match="ConnectError"):
        await client.secrets.database.generate_credentials("a")
    with pytest.raises(VaultTimeout, match="ReadTimeout"):
        await client.secrets.database.generate_credentials("b")


async def test_rate_limited_carries_retry_after(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    router.get("/database/creds/app").respond(429, headers={"Retry-After": "7"}, json={})
    with pytest.raises(RateLimited) as info:
        await client.secrets.database.generate_credentials("app")
    assert info.value.retry_after == 7.0


def test_every_error_is_a_vault_error() -> None:
    import vault_async

    for name in vault_async.__all__:
        obj = getattr(vault_async, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, VaultError), name
            assert obj.__doc__, name


async def test_errors_never_contain_token(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    router.get("/secret/data/x").respond(403, json={"errors": [f"token {TOKEN} is bad"]})
    with pytest.raises(Forbidden) as info:
        await client.secrets.kv_v2.read_secret("x")
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    assert "<redacted>" in str(info.value)
