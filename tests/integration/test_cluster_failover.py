"""The client and the service on a real three-node OpenBao cluster given as several addresses:
a standby first in the list, a node killed, sealed, restarted, and the 307 a standby sends
when asked not to forward. One cluster for the module; each test leaves every node up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.service import ServiceProcess, migrated_devstack
from vault_async import AppRoleAuth, AsyncVaultClient, ClientConfig, VaultError
from vault_async._transport import RawResponse, Transport, default_transport
from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack() -> Iterator[DevStack]:
    with migrated_devstack(nodes=3) as started:
        yield started


def first_in_state(stack: DevStack, state: str) -> tuple[int, str]:
    index = stack.cluster.states().index(state)
    return index, stack.vault_addrs[index]


def client_for(
    stack: DevStack, first: str, transport: Transport | None = None
) -> AsyncVaultClient:
    """A client with `first` as VAULT_ADDR and the other nodes as failover addresses."""
    others = tuple(addr for addr in stack.vault_addrs if addr != first)
    config = ClientConfig(addr=first, failover_addrs=others, token=stack.root_token)
    return AsyncVaultClient(config=config, transport=transport)


def states_of(client: AsyncVaultClient) -> dict[str, str]:
    return {node.addr: node.state for node in client.nodes}


async def wait_for_state(client: AsyncVaultClient, addr: str, state: str) -> None:
    """Wait (60 s at most) until the client's watcher classifies `addr` as `state`."""
    async with asyncio.timeout(60):
        while states_of(client)[addr] != state:  # noqa: ASYNC110 -- a plain attribute
            await asyncio.sleep(0.1)


def restart(stack: DevStack, index: int) -> None:
    stack.cluster.start_node(index)
    stack.cluster.active(timeout=60)


async def test_a_standby_first_in_the_list_serves_and_the_nodes_are_classified(
    stack: DevStack,
) -> None:
    _, standby = first_in_state(stack, "standby")
    async with client_for(stack, standby) as client:
        client.set_token(None)
        await client.login(AppRoleAuth(stack.role_id, stack.secret_id))
        secret = await client.secrets.database.generate_credentials(stack.dynamic_role)
        assert secret.data["username"]
        assert client.last_node == standby
        expected = dict(zip(stack.vault_addrs, stack.cluster.states(), strict=True))
        async with asyncio.timeout(30):
            while states_of(client) != expected:  # noqa: ASYNC110 -- a plain attribute
                await asyncio.sleep(0.1)
        assert client.last_node == standby  # a standby that serves is not left


async def test_with_a_namespace_the_nodes_are_still_classified(stack: DevStack) -> None:
    """OpenBao refuses sys/health inside a namespace (400): the probe must not send one."""
    active = stack.cluster.active().addr
    async with AsyncVaultClient(active, stack.root_token) as root:
        await root.request("POST", "sys/namespaces/failover-ns", idempotent=False)
    others = tuple(addr for addr in stack.vault_addrs if addr != active)
    config = ClientConfig(
        addr=active, failover_addrs=others, token=stack.root_token, namespace="failover-ns"
    )
    async with AsyncVaultClient(config=config) as client:
        await client.request("GET", "sys/mounts", idempotent=True)
        expected = dict(zip(stack.vault_addrs, stack.cluster.states(), strict=True))
        async with asyncio.timeout(30):
            while states_of(client) != expected:  # noqa: ASYNC110 -- a plain attribute
                await asyncio.sleep(0.1)
        assert client.last_node == active


class NoForwarding(Transport):
    """Asks standbys not to forward (`X-Vault-No-Request-Forwarding`): they answer 307."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.statuses: list[int] = []

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None
    ) -> RawResponse:
        asked = {**headers, "X-Vault-No-Request-Forwarding": "1"}
        response = await self.inner.send(method, url, asked, content)
        self.statuses.append(response.status)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_standby_that_does_not_forward_redirects_to_the_active_node(
    stack: DevStack,
) -> None:
    _, standby = first_in_state(stack, "standby")
    active = stack.cluster.active().addr
    transport = NoForwarding(default_transport(ClientConfig(addr=standby)))
    async with client_for(stack, standby, transport) as client:
        written = await client.secrets.kv_v2.create_or_update_secret(
            "failover-307", {"seen": "yes"}
        )
        assert written.version >= 1
        assert client.last_node == active
    assert 307 in transport.statuses


def test_the_service_shows_its_nodes_on_healthz_and_metrics(stack: DevStack) -> None:
    _, standby = first_in_state(stack, "standby")
    others = [addr for addr in stack.vault_addrs if addr != standby]
    env = stack.env() | {"VAULT_ADDR": standby, "VAULT_FAILOVER_ADDRS": " , ".join(others)}
    with ServiceProcess(env) as service:
        deadline = time.monotonic() + 30
        while True:
            _, body = service.healthz()
            nodes = body["vault"]["nodes"]
            if all(node["state"] != "unknown" for node in nodes) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        metrics = httpx.get(f"{service.base_url}/metrics", timeout=5).text
        output = service.output()
    assert body["vault"]["last_node"] == standby
    assert [node["addr"] for node in nodes] == [standby, *others]
    assert sorted(node["state"] for node in nodes) == ["active", "standby", "standby"]
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }
    assert samples["vault_async_vault_last_node", (("node", standby),)] == 1.0
    assert samples["vault_async_vault_node_state", (("node", standby), ("state", "standby"))] == 1
    assert stack.root_token not in metrics + output


@pytest.mark.slow
async def test_killing_the_node_in_vault_addr_moves_requests_to_another(
    stack: DevStack,
) -> None:
    index, active = first_in_state(stack, "active")
    async with client_for(stack, active) as client:
        await client.request("GET", "sys/mounts", idempotent=True)
        assert client.last_node == active
        stack.cluster.kill(index)
        killed = time.monotonic()
        await client.request("GET", "sys/mounts", idempotent=True)  # a standby reads alone
        read = time.monotonic() - killed
        failures = 0
        async with asyncio.timeout(30):
            while True:  # new credentials need the new leader
                try:
                    creds = await client.secrets.database.generate_credentials(stack.dynamic_role)
                    break
                except VaultError:
                    failures += 1
                    await asyncio.sleep(0.05)
        created = time.monotonic() - killed
        assert creds.data["username"]
        print(
            f"\nactive node killed: a read served after {read:.2f} s, new credentials after "
            f"{created:.2f} s ({failures} failed attempts)"
        )
        assert client.last_node not in (None, active)
        await wait_for_state(client, active, "down")
        restart(stack, index)
        await wait_for_state(client, active, "standby")


async def test_sealing_the_node_in_vault_addr_moves_requests_and_classifies_it_sealed(
    stack: DevStack,
) -> None:
    index, standby = first_in_state(stack, "standby")
    async with client_for(stack, standby) as client:
        await client.request("GET", "sys/mounts", idempotent=True)
        stack.cluster.seal(index)
        await client.request("GET", "sys/mounts", idempotent=True)
        assert client.last_node not in (None, standby)
        await wait_for_state(client, standby, "sealed")
        restart(stack, index)
        await wait_for_state(client, standby, "standby")
