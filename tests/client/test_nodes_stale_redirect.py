"""A standby that has not yet heard of a new leader redirects (307) to the old one, which
answers 500 "local node not active": seen on a real cluster under repeated step-downs (the
service's renewals were retried standby -> 307 -> old leader -> 500 without the client ever
moving). The client must move on to a node that can serve, not go back to the
redirecting standby on every attempt."""

from __future__ import annotations

import contextlib

import respx

from vault_async import AsyncVaultClient, InternalServerError

from .conftest import VirtualTime
from .test_nodes import CREDS_OK, HEALTH, NOT_ACTIVE, A, B, C, nodes_client

LEASE = "database/creds/app/abc"

def stale_standby_cluster(path: str, method: str, ok: dict[str, object]) -> respx.MockRouter:
    """A (in use) redirects to B, the old leader that is no longer active; C serves."""
    router = respx.MockRouter(assert_all_called=False)
    for addr in (A, B, C):
        router.get(addr + HEALTH).respond(429, json={"standby": True})
    router.route(method=method, url=A + path, name="a").respond(307, headers={"Location": B + path})
    router.route(method=method, url=B + path).respond(500, json=NOT_ACTIVE)
    router.route(method=method, url=C + path).respond(200, json=ok)
    return router


async def test_a_renewal_redirected_to_a_node_no_longer_active_is_retried_elsewhere(
    vtime: VirtualTime,
) -> None:
    renewed = {"lease_id": LEASE, "lease_duration": 20, "renewable": True}
    router = stale_standby_cluster(f"/v1/sys/leases/renew/{LEASE}", "PUT", renewed)
    client: AsyncVaultClient
    async with nodes_client(router, vtime, A, B, C, retries=3) as client:
        await client.sys.leases.renew(LEASE)
        assert client.last_node == C


async def test_after_a_redirect_to_a_node_no_longer_active_later_requests_move_on(
    vtime: VirtualTime,
) -> None:
    router = stale_standby_cluster("/v1/database/creds/app", "GET", CREDS_OK)
    client: AsyncVaultClient
    async with nodes_client(router, vtime, A, B, C, retries=3) as client:
        # A new credential is not retried within the call (not idempotent): each failed call
        # moves the client on, and it does not start again at the redirecting standby.
        for _ in range(2):
            with contextlib.suppress(InternalServerError):
                secret = await client.secrets.database.generate_credentials("app")
                break
        else:
            secret = await client.secrets.database.generate_credentials("app")
        assert secret.data["username"] == "u"
        assert client.last_node == C
    assert router["a"].call_count == 1  # the redirecting standby: asked once
