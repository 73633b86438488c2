"""Several node addresses: the client sticks to the node that last answered and moves on
when a node is down, sealed or not active, classifying nodes with `sys/health` in the
background. Mocked nodes, for what a real cluster cannot be made to do on demand."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping

import httpx
import pytest
import respx

from vault_async import (
    AsyncVaultClient,
    ClientConfig,
    InvalidConfig,
    NodeStatus,
    RetryPolicy,
    UnexpectedStatus,
    VaultConnectionError,
    VaultError,
    _nodes,
)
from vault_async._transport import RawResponse, Transport, as_transport

from .conftest import TOKEN, VirtualTime

A, B, C = "http://vault-a.test:8200", "http://vault-b.test:8200", "http://vault-c.test:8200"
KV_OK = {"data": {"data": {"k": "v"}, "metadata": {"version": 1}}}
CREDS_OK = {"lease_id": "database/creds/app/x", "lease_duration": 60, "data": {"username": "u"}}
NOT_ACTIVE = {"errors": ["local node not active but active cluster node not found"]}
HEALTH = "/v1/sys/health"


@pytest.fixture
def nodes_router() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False)


def nodes_client(
    router: respx.MockRouter, vtime: VirtualTime, *addrs: str, retries: int = 3
) -> AsyncVaultClient:
    first, *rest = addrs or (A, B, C)
    config = ClientConfig(
        addr=first,
        failover_addrs=tuple(rest),
        token=TOKEN,
        retry=RetryPolicy(max_retries=retries, backoff_initial=0.1, backoff_max=1.0),
    )
    return AsyncVaultClient(
        config=config,
        transport=httpx.MockTransport(router.async_handler),
        rng=random.Random(7),
        sleep=vtime.sleep,
        clock=vtime.clock,
    )


@pytest.fixture
async def client(
    nodes_router: respx.MockRouter, vtime: VirtualTime
) -> AsyncIterator[AsyncVaultClient]:
    # Every node answers sys/health as a standby unless a test says otherwise.
    for addr in (A, B, C):
        nodes_router.get(addr + HEALTH).respond(429, json={"standby": True})
    async with nodes_client(nodes_router, vtime) as opened:
        yield opened


def kv(addr: str) -> str:
    return addr + "/v1/secret/data/app"


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Wait (5 s at most) until the watcher has made ``predicate`` true."""
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110 -- the state is a plain attribute
            await asyncio.sleep(0.01)


# -- configuration ------------------------------------------------------------------------------


def test_failover_addrs_from_environment(tmp_path: object) -> None:
    env = {
        "VAULT_ADDR": "http://a:8200/",
        "VAULT_FAILOVER_ADDRS": " http://b:8200 ,, http://a:8200,http://c:8200/ ,http://b:8200",
    }
    config = ClientConfig.from_env(env)
    assert config.addr == "http://a:8200"
    assert config.failover_addrs == ("http://b:8200", "http://c:8200")
    assert config.addrs == ("http://a:8200", "http://b:8200", "http://c:8200")
    assert ClientConfig.from_env({"VAULT_ADDR": "http://a:8200"}).failover_addrs == ()
    assert ClientConfig.from_env({"BAO_FAILOVER_ADDRS": "http://b:1"}).failover_addrs == (
        "http://b:1",
    )


@pytest.mark.parametrize("bad", ["vault-b:8200", "ftp://b:1", "http://user:pw@b:1", "http://b:x"])
def test_a_bad_failover_address_names_the_setting(bad: str) -> None:
    with pytest.raises(InvalidConfig, match="VAULT_FAILOVER_ADDRS") as info:
        ClientConfig.from_env({"VAULT_ADDR": "http://a:1", "VAULT_FAILOVER_ADDRS": bad})
    assert "\n" not in str(info.value)
    assert "pw" not in str(info.value)


def test_client_takes_failover_addrs_as_a_keyword() -> None:
    client = AsyncVaultClient("http://a:1", failover_addrs=["http://b:2", "http://a:1"])
    assert client.config.addrs == ("http://a:1", "http://b:2")
    assert [n.addr for n in client.nodes] == ["http://a:1", "http://b:2"]
    assert all(n.state == "unknown" and n.last_checked is None for n in client.nodes)
    assert client.last_node is None


def test_tls_settings_apply_when_only_a_failover_node_is_https() -> None:
    config = ClientConfig(addr="http://a:1", failover_addrs=("https://b:2",))
    assert config.ssl_context() is not None


# -- one address: exactly as before -------------------------------------------------------------


async def test_one_address_sends_no_health_check_and_starts_no_task(
    nodes_router: respx.MockRouter, vtime: VirtualTime
) -> None:
    route = nodes_router.get(kv(A)).respond(200, json=KV_OK)
    health = nodes_router.get(A + HEALTH).respond(200, json={})
    async with nodes_client(nodes_router, vtime, A) as client:
        tasks = asyncio.all_tasks()
        await client.secrets.kv_v2.read_secret("app")
        assert asyncio.all_tasks() == tasks
        assert client.last_node == A
    assert route.call_count == 1
    assert health.call_count == 0


async def test_one_address_does_not_move_on_a_sealed_answer(
    nodes_router: respx.MockRouter, vtime: VirtualTime
) -> None:
    route = nodes_router.get(kv(A)).mock(
        side_effect=[httpx.Response(503, json={}), httpx.Response(200, json=KV_OK)]
    )
    async with nodes_client(nodes_router, vtime, A) as client:
        await client.secrets.kv_v2.read_secret("app")
        assert client.last_node == A
        assert client.nodes[0].state == "unknown"
    assert route.call_count == 2


async def test_one_address_does_not_follow_a_redirect(
    nodes_router: respx.MockRouter, vtime: VirtualTime
) -> None:
    path = "/v1/auth/approle/login"
    route = nodes_router.post(A + path).respond(307, headers={"Location": A + path})
    async with nodes_client(nodes_router, vtime, A) as client:
        with pytest.raises(UnexpectedStatus) as info:
            await client.request(
                "POST", "auth/approle/login", json={"role_id": "r"}, token=None, idempotent=False
            )
    assert info.value.status == 307
    assert route.call_count == 1


# -- which node is asked -------------------------------------------------------------------------


async def test_requests_go_to_the_first_node_and_stick_to_it(
    client: AsyncVaultClient, nodes_router: respx.MockRouter
) -> None:
    a = nodes_router.get(kv(A)).respond(200, json=KV_OK)
    b = nodes_router.get(kv(B)).respond(200, json=KV_OK)
    for _ in range(3):
        await client.secrets.kv_v2.read_secret("app")
    assert (a.call_count, b.call_count) == (3, 0)
    assert client.last_node == A


async def test_a_refused_connection_moves_to_the_next_node(
    client: AsyncVaultClient, nodes_router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    a = nodes_router.get(kv(A)).mock(side_effect=httpx.ConnectError("refused"))
    b = nodes_router.get(kv(B)).respond(200, json=KV_OK)
    with caplog.at_level(logging.INFO, logger="vault_async.client"):
        await client.secrets.kv_v2.read_secret("app")
        await client.secrets.kv_v2.read_secret("app")
    assert (a.call_count, b.call_count) == (1, 2)
    assert client.last_node == B
    moves = [r for r in caplog.records if r.getMessage() == "client.failover"]
    assert len(moves) == 1
    assert (moves[0].from_node, moves[0].to_node) == (A, B)  # type: ignore[attr-defined]
    assert "ConnectError" in moves[0].reason  # type: ignore[attr-defined]
    assert moves[0].levelno == logging.INFO
    assert TOKEN not in caplog.text


async def test_a_sealed_node_is_left_for_the_next(
    client: AsyncVaultClient, nodes_router: respx.MockRouter
) -> None:
    nodes_router.get(kv(A)).respond(503, json={"errors": ["Vault is sealed"]})
    b = nodes_router.get(kv(B)).respond(200, json=KV_OK)
    await client.secrets.kv_v2.read_secret("app")
    assert b.call_count == 1
    assert client.last_node == B


async def test_a_standby_without_a_leader_is_left_for_the_next(
    client: AsyncVaultClient, nodes_router: respx.MockRouter
) -> None:
    a = nodes_router.get(kv(A)).respond(500, json=NOT_ACTIVE)
    nodes_router.get(kv(B)).respond(200, json=KV_OK)
    await client.secrets.kv_v2.read_secret("app")
    assert a.call_count == 1
    assert client.last_node == B


async def test_an_ordinary_server_error_does_not_move(
    client: AsyncVaultClient, nodes_router: respx.MockRouter
) -> None:
    a = nodes_router.get(kv(A)).mock(
        side_effect=[
            httpx.Response(500, json={"errors": ["boom"]}),
            httpx.Response(200, json=KV_OK),
        ]
    )
    b = nodes_router.get(kv(B)).respond(200, json=KV_OK)
    await client.secrets.kv_v2.read_secret("app")
    assert (a.call_count, b.call_count) == (2, 0)


async def test_every_node_down_fails_with_an_error_naming_the_nodes(
    client: AsyncVaultClient, nodes_router: respx.MockRouter
) -> None:
    for addr in (A, B, C):
        nodes_router.get(kv(addr)).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(VaultConnectionError) as info:
        await client.secrets.kv_v2.read_secret("app")
    assert str(info.value) == (
        f"GET secret/data/app: no response from any of 3 Vault nodes ({A}, {B}, {C}; "
        "last: ConnectError)"
    )
    assert TOKEN not in str(info.value)


async def test_the_error_naming_many_nodes_stays_one_bounded_line(
    nodes_router: respx.MockRouter, vtime: VirtualTime
) -> None:
    addrs = [f"http://vault-{i}-{'x' * 150}.test:8200" for i in range(9)]
    nodes_router.route().mock(side_effect=httpx.ConnectError("refused"))
    async with nodes_client(nodes_router, vtime, *addrs, retries=0) as client:
        with pytest.raises(VaultConnectionError) as info:
            await client.secrets.kv_v2.read_secret("app")
    text = str(info.value)
    assert "no response from any of 9 Vault nodes (" in text
    assert "and 4 more; last: ConnectError)" in text
    assert "\n" not in text
    assert len(text) < 800


async def test_one_node_of_several_failing_is_named(
    client: AsyncVaultClient, nodes_router: respx.MockRouter
) -> None:
    nodes_router.get(A + "/v1/database/creds/app").mock(side_effect=httpx.ReadError("reset"))
    with pytest.raises(VaultConnectionError) as info:
        await client.secrets.database.generate_credentials("app")
    assert str(info.value) == f"GET database/creds/app: no response from Vault at {A} (ReadError)"


async def test_moving_past_a_refused_node_spends_no_retry(
    nodes_router: respx.MockRouter, vtime: VirtualTime
) -> None:
    nodes_router.get(kv(A)).mock(side_effect=httpx.ConnectError("refused"))
    b = nodes_router.get(kv(B)).respond(200, json=KV_OK)
    for addr in (A, B):
        nodes_router.get(addr + HEALTH).respond(429, json={})
    async with nodes_client(nodes_router, vtime, A, B, retries=0) as client:
        await client.secrets.kv_v2.read_secret("app")
    assert b.call_count == 1
    assert vtime.sleeps == []


async def test_two_refused_nodes_are_passed_at_once_and_a_retry_counts_after_all(
    client: AsyncVaultClient, nodes_router: respx.MockRouter, vtime: VirtualTime
) -> None:
    routes = [
        nodes_router.get(kv(addr)).mock(side_effect=httpx.ConnectError("refused"))
        for addr in (A, B)
    ]
    c = nodes_router.get(kv(C)).respond(200, json=KV_OK)
    await client.secrets.kv_v2.read_secret("app")
    assert [r.call_count for r in routes] == [1, 1]
    assert c.call_count == 1
    assert vtime.sleeps == []
    # Every node refusing: each is tried once per attempt, with one backoff between attempts.
    c.mock(side_effect=httpx.ConnectError("refused"))
    for route in routes:
        route.reset()
    c.reset()
    with pytest.raises(VaultConnectionError):
        await client.secrets.kv_v2.read_secret("app")
    assert [r.call_count for r in (*routes, c)] == [4, 4, 4]  # 1 + 3 retries each
    assert len(vtime.sleeps) == 3


# -- requests that create things ------------------------------------------------------------------


async def test_credentials_move_on_when_the_request_never_left(
    client: AsyncVaultClient, nodes_router: respx.MockRouter
) -> None:
    nodes_router.get(A + "/v1/database/creds/app").mock(side_effect=httpx.ConnectError("no"))
    b = nodes_router.get(B + "/v1/database/creds/app").respond(200, json=CREDS_OK)
    await client.secrets.database.generate_credentials("app")
    assert b.call_count == 1
    assert client.last_node == B


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadError("reset"), httpx.ReadTimeout("slow"), httpx.Response(503, json={})],
    ids=["reset", "timeout", "sealed"],
)
async def test_credentials_are_not_sent_again_once_they_may_have_arrived(
    client: AsyncVaultClient,
    nodes_router: respx.MockRouter,
    failure: httpx.Response | Exception,
) -> None:
    path = "/v1/database/creds/app"
    a = nodes_router.get(A + path).mock(side_effect=[failure])
    b = nodes_router.get(B + path).respond(200, json=CREDS_OK)
    with pytest.raises(VaultError):
        await client.secrets.database.generate_credentials("app")
    assert (a.call_count, b.call_count) == (1, 0)
    # The next request goes to the next node all the same.
    await client.secrets.database.generate_credentials("app")
    assert b.call_count == 1


# -- 307 to the active node ---------------------------------------------------------------------


async def test_a_redirect_to_a_listed_node_is_followed_with_the_same_body(
    client: AsyncVaultClient, nodes_router: respx.MockRouter
) -> None:
    path = "/v1/secret/data/app"
    nodes_router.post(A + path).respond(307, headers={"Location": C + path})
    c = nodes_router.post(C + path).respond(200, json={"data": {"version": 2}})
    await client.secrets.kv_v2.create_or_update_secret("app", {"k": "v"})
    assert c.call_count == 1
    assert c.calls[0].request.content == b'{"data":{"k":"v"}}'
    assert c.calls[0].request.headers["X-Vault-Token"] == TOKEN
    assert client.last_node == C


async def test_a_redirect_elsewhere_is_refused(
    client: AsyncVaultClient, nodes_router: respx.MockRouter
) -> None:
    path = "/v1/secret/data/app"
    evil = "http://evil.test:8200"
    nodes_router.post(A + path).respond(307, headers={"Location": evil + path})
    stolen = nodes_router.post(evil + path).respond(200, json={})
    with pytest.raises(UnexpectedStatus) as info:
        await client.secrets.kv_v2.create_or_update_secret("app", {"k": "v"})
    assert info.value.status == 307
    assert stolen.call_count == 0


async def test_a_redirect_to_a_node_seen_down_goes_to_the_next_node_instead(
    client: AsyncVaultClient, nodes_router: respx.MockRouter
) -> None:
    """A standby still pointing at its dead leader during an election."""
    path = "/v1/secret/data/app"
    nodes_router.get(kv(A)).mock(side_effect=httpx.ConnectError("refused"))
    nodes_router.get(kv(B)).respond(200, json=KV_OK)
    await client.secrets.kv_v2.read_secret("app")  # A is down, B in use
    a = nodes_router.post(A + path).mock(side_effect=httpx.ConnectError("refused"))
    nodes_router.post(B + path).respond(307, headers={"Location": A + path})
    c = nodes_router.post(C + path).respond(200, json={"data": {"version": 2}})
    await client.secrets.kv_v2.create_or_update_secret("app", {"k": "v"})
    assert (a.call_count, c.call_count) == (0, 1)
    assert client.last_node == C


async def test_a_redirect_is_followed_once_per_attempt(
    nodes_router: respx.MockRouter, vtime: VirtualTime
) -> None:
    path = "/v1/secret/data/app"
    a = nodes_router.post(A + path).respond(307, headers={"Location": B + path})
    b = nodes_router.post(B + path).respond(307, headers={"Location": A + path})
    for addr in (A, B):
        nodes_router.get(addr + HEALTH).respond(429, json={})
    async with nodes_client(nodes_router, vtime, A, B, retries=0) as client:
        with pytest.raises(UnexpectedStatus):
            await client.secrets.kv_v2.create_or_update_secret("app", {"k": "v"})
    assert (a.call_count, b.call_count) == (1, 1)


# -- classification in the background ------------------------------------------------------------


async def test_nodes_are_classified_by_sys_health_in_the_background(
    nodes_router: respx.MockRouter, vtime: VirtualTime
) -> None:
    asked: list[httpx.Request] = []

    def health(code: int) -> Callable[[httpx.Request], httpx.Response]:
        def answer(request: httpx.Request) -> httpx.Response:
            asked.append(request)
            return httpx.Response(code, json={})

        return answer

    nodes_router.get(A + HEALTH).mock(side_effect=health(429))
    nodes_router.get(B + HEALTH).mock(side_effect=health(200))
    nodes_router.get(C + HEALTH).mock(side_effect=health(503))
    nodes_router.get(kv(A)).respond(200, json=KV_OK)
    async with nodes_client(nodes_router, vtime) as client:
        assert not asked  # nothing before the first request
        await client.secrets.kv_v2.read_secret("app")
        await wait_until(lambda: all(n.state != "unknown" for n in client.nodes))
        assert client.nodes == (
            NodeStatus(A, "standby", vtime.now),
            NodeStatus(B, "active", vtime.now),
            NodeStatus(C, "sealed", vtime.now),
        )
        assert client.last_node == A  # a standby that serves is not left
    for request in asked:
        assert "X-Vault-Token" not in request.headers
        params = request.url.params
        assert params["standbycode"] == "429"
        assert params["sealedcode"] == "503"
        assert "standbyok" not in params


async def test_the_health_probe_goes_without_the_namespace(
    nodes_router: respx.MockRouter, vtime: VirtualTime
) -> None:
    """OpenBao answers sys/health 400 in a namespace: the probe never sends one."""
    asked: list[httpx.Request] = []

    def health(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        if "X-Vault-Namespace" in request.headers:
            return httpx.Response(400, json={"errors": ["operation unavailable in namespaces"]})
        return httpx.Response(200 if request.url.host == "vault-b.test" else 429, json={})

    for addr in (A, B, C):
        nodes_router.get(addr + HEALTH).mock(side_effect=health)
    kv_a = nodes_router.get(kv(A)).respond(200, json=KV_OK)
    config = ClientConfig(addr=A, failover_addrs=(B, C), token=TOKEN, namespace="team1")
    transport = httpx.MockTransport(nodes_router.async_handler)
    async with AsyncVaultClient(config=config, transport=transport) as client:
        await client.secrets.kv_v2.read_secret("app")
        await wait_until(lambda: all(n.state != "unknown" for n in client.nodes))
        assert [n.state for n in client.nodes] == ["standby", "active", "standby"]
    assert kv_a.calls[0].request.headers["X-Vault-Namespace"] == "team1"
    assert asked
    assert all("X-Vault-Namespace" not in r.headers for r in asked)
    assert all("X-Vault-Token" not in r.headers for r in asked)


async def test_a_failed_node_is_checked_again_at_once_and_the_task_ends_with_the_client(
    nodes_router: respx.MockRouter, vtime: VirtualTime
) -> None:
    down = {"A": False}

    def health_a(request: httpx.Request) -> httpx.Response:
        if down["A"]:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json={})

    nodes_router.get(A + HEALTH).mock(side_effect=health_a)
    nodes_router.get(B + HEALTH).respond(429, json={})
    nodes_router.get(C + HEALTH).respond(429, json={})
    a = nodes_router.get(kv(A)).respond(200, json=KV_OK)
    nodes_router.get(kv(B)).respond(200, json=KV_OK)
    client = nodes_client(nodes_router, vtime)
    async with client:
        before = asyncio.all_tasks()
        await client.secrets.kv_v2.read_secret("app")
        watcher = asyncio.all_tasks() - before
        assert len(watcher) == 1
        await wait_until(lambda: client.nodes[0].state == "active")
        down["A"] = True
        a.mock(side_effect=httpx.ConnectError("refused"))
        await client.secrets.kv_v2.read_secret("app")
        assert client.last_node == B
        await wait_until(lambda: client.nodes[0].state == "down")
    assert all(task.done() for task in watcher)


class RecordingTransport(Transport):
    """An httpx handler as a client transport that records whether it was closed."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.inner = as_transport(httpx.MockTransport(router.async_handler), 5.0, 1 << 20, None)
        self.closed = False
        self.sent_after_close = 0

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None
    ) -> RawResponse:
        if self.closed:
            self.sent_after_close += 1
        return await self.inner.send(method, url, headers, content)

    async def aclose(self) -> None:
        self.closed = True


async def test_an_unexpected_error_in_a_check_does_not_stop_the_watcher(
    nodes_router: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_nodes, "HEALTH_INTERVAL", 0.01)
    nodes_router.get(A + HEALTH).respond(200, json={})
    broken = nodes_router.get(B + HEALTH).mock(side_effect=httpx.DecodingError("boom"))
    nodes_router.get(kv(A)).respond(200, json=KV_OK)
    transport = RecordingTransport(nodes_router)
    client = AsyncVaultClient(
        config=ClientConfig(addr=A, failover_addrs=(B,), token=TOKEN), transport=transport
    )
    with caplog.at_level(logging.INFO, logger="vault_async.client"):
        await client.secrets.kv_v2.read_secret("app")
        await wait_until(lambda: broken.call_count >= 3)
        assert [n.state for n in client.nodes] == ["active", "unknown"]
        await client.aclose()
    assert transport.closed
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert B in warnings[0].getMessage() + str(warnings[0].__dict__)
    assert TOKEN not in caplog.text


def watchers() -> list[asyncio.Task[object]]:
    return [
        t for t in asyncio.all_tasks() if t.get_name() == "vault-async-node-health" and not t.done()
    ]


async def test_a_request_racing_aclose_leaves_nothing_running_or_open(
    nodes_router: respx.MockRouter,
) -> None:
    for addr in (A, B):
        nodes_router.get(addr + HEALTH).respond(429, json={})
    nodes_router.get(kv(A)).respond(200, json=KV_OK)
    transport = RecordingTransport(nodes_router)
    client = AsyncVaultClient(
        config=ClientConfig(addr=A, failover_addrs=(B,), token=TOKEN), transport=transport
    )
    await client.secrets.kv_v2.read_secret("app")
    closing = asyncio.create_task(client.aclose())
    await asyncio.sleep(0)  # aclose is waiting for the watcher to stop
    racing = asyncio.create_task(client.secrets.kv_v2.read_secret("app"))
    closed, raced = await asyncio.gather(closing, racing, return_exceptions=True)
    assert closed is None
    assert isinstance(raced, VaultConnectionError)
    assert "closed" in str(raced)
    await asyncio.sleep(0.05)
    assert watchers() == []
    assert transport.closed
    assert transport.sent_after_close == 0
    # Used again after aclose returned, the client reopens; aclose closes it again.
    await client.secrets.kv_v2.read_secret("app")
    await client.aclose()
    assert watchers() == []


async def test_a_retry_after_aclose_is_not_sent_on_the_closed_transport(
    nodes_router: respx.MockRouter,
) -> None:
    for addr in (A, B):
        nodes_router.get(addr + HEALTH).respond(429, json={})
    closing: list[asyncio.Task[None]] = []

    async def slow_sleep(_: float) -> None:
        closing.append(asyncio.create_task(client.aclose()))
        await asyncio.sleep(0.01)

    nodes_router.get(kv(A)).respond(500, json={"errors": ["boom"]})
    transport = RecordingTransport(nodes_router)
    client = AsyncVaultClient(
        config=ClientConfig(addr=A, failover_addrs=(B,), token=TOKEN),
        transport=transport,
        sleep=slow_sleep,
    )
    with pytest.raises(VaultConnectionError, match="closed"):
        await client.secrets.kv_v2.read_secret("app")
    await asyncio.gather(*closing)
    assert transport.closed
    assert transport.sent_after_close == 0
    assert watchers() == []


async def test_the_watcher_moves_off_a_node_that_became_sealed(
    nodes_router: respx.MockRouter, vtime: VirtualTime
) -> None:
    nodes_router.get(A + HEALTH).respond(503, json={})
    nodes_router.get(B + HEALTH).respond(429, json={})
    nodes_router.get(C + HEALTH).respond(200, json={})
    nodes_router.get(kv(A)).respond(200, json=KV_OK)
    c = nodes_router.get(kv(C)).respond(200, json=KV_OK)
    async with nodes_client(nodes_router, vtime) as client:
        await client.secrets.kv_v2.read_secret("app")  # A answered before it was sealed
        await wait_until(lambda: client.nodes[0].state == "sealed")
        await client.secrets.kv_v2.read_secret("app")
        assert c.call_count == 1  # the active node is preferred among the others
        assert client.last_node == C
