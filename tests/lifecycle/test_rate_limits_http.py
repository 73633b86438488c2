"""The lease engine behind the real client, Vault mocked by respx: a quota's 429 on the login
and on ``database/creds`` (neither is retried by the client: both create something) is
waited out by the engine, after ``Retry-After`` when Vault sent one."""

from __future__ import annotations

import itertools
import random

import httpx
import pytest
import respx

from vault_async import AppRoleAuth, AsyncVaultClient, ClientConfig, RateLimited
from vault_async.lifecycle import LeaseConfig, LeaseManager, VirtualClock

ADDR = "http://vault.test:8200"
QUOTA = {"errors": ['request path "auth/approle/login": rate limit quota exceeded']}
LOGIN_OK = {
    "auth": {
        "client_token": "hvs.notarealtoken", "accessor": "acc", "lease_duration": 600,
        "renewable": True, "policies": ["app"], "token_type": "service",
    }
}
CREDS_OK = {
    "lease_id": "database/creds/app/abcdef", "lease_duration": 300, "renewable": True,
    "data": {"username": "v-app", "password": "pw"},
}


async def test_engine_rides_out_429_with_and_without_retry_after() -> None:
    clock = VirtualClock()
    router = respx.MockRouter(base_url=ADDR + "/v1", assert_all_called=False)
    login_times: list[float] = []
    creds_times: list[float] = []

    def login(request: httpx.Request) -> httpx.Response:
        login_times.append(clock.now())
        if len(login_times) <= 2:
            return httpx.Response(429, headers={"Retry-After": "6"}, json=QUOTA)
        return httpx.Response(200, json=LOGIN_OK)

    def creds(request: httpx.Request) -> httpx.Response:
        creds_times.append(clock.now())
        if len(creds_times) <= 3:
            return httpx.Response(429, json=QUOTA)  # headers not enabled on the quota
        return httpx.Response(200, json=CREDS_OK)

    router.post("/auth/approle/login").mock(side_effect=login)
    router.get("/database/creds/app").mock(side_effect=creds)
    router.put("/auth/token/revoke-self").respond(204)
    router.put("/sys/leases/revoke").respond(204)
    client = AsyncVaultClient(
        config=ClientConfig(addr=ADDR), transport=httpx.MockTransport(router.async_handler)
    )
    config = LeaseConfig(relogin_interval=0.0)
    async with client, LeaseManager(client, config, clock=clock, rng=random.Random(2)) as mgr:
        token = mgr.manage_token(client, AppRoleAuth("role-id", "secret-id"))
        db = mgr.manage_database_credentials(client, role="app")
        for _ in range(200):
            await clock.advance(0.5)
            if db.ready:
                break
        assert token.ready
        assert db.ready
        assert len(login_times) == 3
        login_gaps = [b - a for a, b in itertools.pairwise(login_times)]
        assert all(6.0 <= gap <= 12.5 for gap in login_gaps), login_gaps
        assert len(creds_times) == 4
        creds_gaps = [b - a for a, b in itertools.pairwise(creds_times)]
        assert all(gap >= config.backoff_floor for gap in creds_gaps), creds_gaps
        assert isinstance(db.last_error, type(None))
        assert token.last_error_class == "RateLimited"  # what it rode out, kept for /healthz


async def test_client_carries_retry_after_or_none_on_a_login() -> None:
    router = respx.MockRouter(base_url=ADDR + "/v1", assert_all_called=False)
    route = router.post("/auth/approle/login")
    client = AsyncVaultClient(
        config=ClientConfig(addr=ADDR), transport=httpx.MockTransport(router.async_handler)
    )
    async with client:
        for headers, expected in (({"Retry-After": "3"}, 3.0), ({}, None)):
            route.respond(429, headers=headers, json=QUOTA)
            with pytest.raises(RateLimited) as info:
                await client.login(AppRoleAuth("role-id", "secret-id"))
            assert info.value.retry_after == expected
            assert info.value.status == 429
            assert "secret-id" not in str(info.value)
    assert route.call_count == 2  # a login is never retried by the client itself
