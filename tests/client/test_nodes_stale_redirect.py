"""A standby that has not yet heard of a new leader redirects (307) to the old one, which
answers 500 "local node not active": seen on a real cluster under repeated step-downs
(tests/faults/test_cluster_faults.py::test_repeated_step_downs). The client must move on
to a node that can serve, not go back to the redirecting standby on every retry."""

from __future__ import annotations

import respx

from vault_async import AsyncVaultClient

from .conftest import VirtualTime
from .test_nodes import CREDS_OK, HEALTH, NOT_ACTIVE, A, B, C, nodes_client


async def test_a_redirect_to_a_node_that_is_not_active_moves_the_client_on(
    vtime: VirtualTime,
) -> None:
    nodes_router = respx.MockRouter(assert_all_called=False)
    path = "/v1/database/creds/app"
    for addr in (A, B, C):
        nodes_router.get(addr + HEALTH).respond(429, json={"standby": True})
    a = nodes_router.get(A + path).respond(307, headers={"Location": B + path})
    b = nodes_router.get(B + path).respond(500, json=NOT_ACTIVE)
    c = nodes_router.get(C + path).respond(200, json=CREDS_OK)
    client: AsyncVaultClient
    async with nodes_client(nodes_router, vtime, A, B, C, retries=3) as client:
        secret = await client.secrets.database.generate_credentials("app")
        assert secret.data["username"] == "u"
        assert client.last_node == C
    assert c.call_count == 1
    assert a.call_count + b.call_count <= 4  # within the retries, not round and round
