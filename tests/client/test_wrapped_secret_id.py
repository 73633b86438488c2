"""AppRole with a response-wrapped secret_id: the wrapping token is kept until an unwrap succeeds.

A wrapping token is single-use. An unwrap that never reached Vault leaves it valid, so the
next login must unwrap with the same token; an unwrap whose answer was lost may have
consumed it, and if Vault then calls it invalid the error must say so. respx plays the
failures a real server cannot be made to produce on demand; the real OpenBao checks
Vault's own answer for a consumed token and a login after Vault was unreachable.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import respx

from vault_async import (
    AppRoleAuth,
    AsyncVaultClient,
    ClientConfig,
    InternalServerError,
    InvalidRequest,
    MalformedResponse,
    RetryPolicy,
    VaultConnectionError,
    VaultError,
    VaultTimeout,
)
from vault_async._parse import to_wrap_info
from vault_async.devstack import DevStack
from vault_async.devstack._processes import free_port

WRAP_TOKEN = "s.WRAPPINGTOKENDONOTLEAK"
SECRET_ID = "sid-unwrapped-do-not-leak"
CONSUMED = {"errors": ["wrapping token is not valid or does not exist"]}
UNWRAPPED = {"data": {"secret_id": SECRET_ID, "secret_id_accessor": "acc"}}


def _login_route(router: respx.MockRouter) -> respx.Route:
    """auth/approle/login answering like Vault: a token for the right secret_id, else 400."""

    def answer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("secret_id") != SECRET_ID:
            return httpx.Response(400, json={"errors": ["missing secret_id"]})
        return httpx.Response(
            200, json={"auth": {"client_token": "s.new", "lease_duration": 60, "renewable": True}}
        )

    return router.post("/auth/approle/login").mock(side_effect=answer)


def _assert_no_secret(error: BaseException) -> None:
    for text in (str(error), repr(error)):
        assert WRAP_TOKEN not in text
        assert SECRET_ID not in text


@pytest.mark.parametrize(
    "failure",
    [
        # Vault unreachable: every attempt the client makes fails to connect.
        [httpx.ConnectError("refused")] * 4,
        # Reached Vault, which refused before unwrapping (sealed, rate limited).
        [httpx.Response(503, json={"errors": ["Vault is sealed"]})],
        [httpx.Response(429, json={"errors": ["rate limit quota exceeded"]})],
        # The answer was lost, but Vault had not consumed the token after all.
        [httpx.ReadTimeout("t")],
    ],
    ids=["unreachable", "sealed", "rate-limited", "answer-lost"],
)
async def test_failed_unwrap_keeps_the_wrapping_token_for_the_next_login(
    client: AsyncVaultClient, router: respx.MockRouter, failure: list[object]
) -> None:
    unwrap = router.post("/sys/wrapping/unwrap").mock(
        side_effect=[*failure, httpx.Response(200, json=UNWRAPPED)]
    )
    login = _login_route(router)
    method = AppRoleAuth("role-id", wrapped_secret_id=WRAP_TOKEN)

    with pytest.raises(VaultError) as first:
        await client.login(method)
    _assert_no_secret(first.value)
    assert login.call_count == 0

    result = await client.login(method)
    assert result.client_token == "s.new"
    assert [c.request.headers["X-Vault-Token"] for c in unwrap.calls] == [WRAP_TOKEN] * len(
        unwrap.calls
    )
    # Unwrapped once: the secret_id is kept for later logins, the wrapping token forgotten.
    calls = unwrap.call_count
    assert (await client.login(method)).client_token == "s.new"
    assert unwrap.call_count == calls
    assert login.call_count == 2
    assert WRAP_TOKEN not in repr(vars(method))


async def test_consumed_wrapping_token_is_one_clear_error(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    unwrap = router.post("/sys/wrapping/unwrap").respond(400, json=CONSUMED)
    login = _login_route(router)
    method = AppRoleAuth("role-id", wrapped_secret_id=WRAP_TOKEN)

    with pytest.raises(InvalidRequest) as info:
        await client.login(method)
    message = str(info.value)
    assert "already used or has expired" in message
    assert "wrapping token is not valid or does not exist" in message  # Vault's words
    assert "earlier" not in message
    assert info.value.__suppress_context__  # one error, not a chain
    _assert_no_secret(info.value)
    # Vault will never accept that token again: later logins fail the same way, no request.
    with pytest.raises(InvalidRequest, match="already used or has expired"):
        await client.login(method)
    assert unwrap.call_count == 1
    assert login.call_count == 0


@pytest.mark.parametrize(
    ("lost", "first_error"),
    [
        (httpx.ReadTimeout("t"), VaultTimeout),
        (httpx.RemoteProtocolError("reset"), VaultConnectionError),
        (httpx.Response(500, json={"errors": ["internal error"]}), InternalServerError),
    ],
    ids=["timeout", "reset", "500"],
)
async def test_token_consumed_by_an_attempt_whose_answer_was_lost(
    client: AsyncVaultClient,
    router: respx.MockRouter,
    lost: object,
    first_error: type[VaultError],
) -> None:
    unwrap = router.post("/sys/wrapping/unwrap").mock(
        side_effect=[lost, httpx.Response(400, json=CONSUMED)]
    )
    login = _login_route(router)
    method = AppRoleAuth("role-id", wrapped_secret_id=WRAP_TOKEN)

    with pytest.raises(first_error):
        await client.login(method)
    with pytest.raises(InvalidRequest) as info:
        await client.login(method)
    message = str(info.value)
    assert "already used or has expired" in message
    assert "earlier unwrap attempt" in message
    _assert_no_secret(info.value)
    assert unwrap.call_count == 2
    assert login.call_count == 0


async def test_concurrent_first_logins_unwrap_once(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    async def slow_unwrap(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return httpx.Response(200, json=UNWRAPPED)

    unwrap = router.post("/sys/wrapping/unwrap").mock(
        side_effect=[slow_unwrap, httpx.Response(400, json=CONSUMED)]
    )
    login = _login_route(router)
    method = AppRoleAuth("role-id", wrapped_secret_id=WRAP_TOKEN)
    results = await asyncio.gather(client.login(method), client.login(method))
    assert [r.client_token for r in results] == ["s.new", "s.new"]
    assert unwrap.call_count == 1
    assert login.call_count == 2


async def test_unwrapped_answer_without_secret_id(
    client: AsyncVaultClient, router: respx.MockRouter
) -> None:
    unwrap = router.post("/sys/wrapping/unwrap").respond(200, json={"data": {"other": "x"}})
    method = AppRoleAuth("role-id", wrapped_secret_id=WRAP_TOKEN)
    with pytest.raises(MalformedResponse, match="no secret_id"):
        await client.login(method)
    # The token was consumed by that unwrap: later logins say so without asking again.
    with pytest.raises(MalformedResponse, match="no secret_id"):
        await client.login(method)
    assert unwrap.call_count == 1


# -- the real OpenBao -------------------------------------------------------------------


async def _wrapped_secret_id(devstack: DevStack, root_client: AsyncVaultClient) -> str:
    body = await root_client.request(
        "POST",
        f"auth/{devstack.approle_mount}/role/{devstack.approle_role}/secret-id",
        idempotent=False,
        wrap_ttl="60s",
    )
    return to_wrap_info(body).token


@pytest.mark.integration
async def test_real_consumed_wrapping_token(
    devstack: DevStack, root_client: AsyncVaultClient
) -> None:
    wrapped = await _wrapped_secret_id(devstack, root_client)
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as client:
        method = AppRoleAuth(devstack.role_id, wrapped_secret_id=wrapped)
        first = await client.login(method)
        assert (await client.auth.token.lookup_self()).accessor == first.accessor
        again = AppRoleAuth(devstack.role_id, wrapped_secret_id=wrapped)
        with pytest.raises(InvalidRequest) as info:
            await client.login(again)
    message = str(info.value)
    assert "already used or has expired" in message
    assert "wrapping token is not valid or does not exist" in message  # Vault's words
    for text in (message, repr(info.value)):
        assert wrapped not in text
        assert devstack.secret_id not in text
        assert devstack.role_id not in text


@pytest.mark.integration
async def test_real_unreachable_then_reachable(
    devstack: DevStack, root_client: AsyncVaultClient
) -> None:
    wrapped = await _wrapped_secret_id(devstack, root_client)
    method = AppRoleAuth(devstack.role_id, wrapped_secret_id=wrapped)
    nowhere = ClientConfig(addr=f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(max_retries=1))
    async with AsyncVaultClient(config=nowhere) as client:
        with pytest.raises(VaultConnectionError) as info:
            await client.login(method)
        assert wrapped not in str(info.value)
    async with AsyncVaultClient(config=ClientConfig(addr=devstack.vault_addr)) as client:
        auth = await client.login(method)
        assert (await client.auth.token.lookup_self()).accessor == auth.accessor
        assert (await client.login(method)).client_token != auth.client_token
