"""A token read from a sink file (``TokenAuth(token_file=...)``): the Agent's, not the engine's.

Against the real dev stack: the engine never renews or revokes a file's token, reads the
file again before the token expires, and follows the token the Agent put in its place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from tests.support.agent import replace_file
from vault_async import AsyncVaultClient, TokenAuth
from vault_async.devstack import DevStack
from vault_async.lifecycle import LeaseConfig, LeaseManager

pytestmark = pytest.mark.integration


def _child_token(stack: DevStack, ttl: str) -> tuple[str, str]:
    """(token, accessor) of a renewable token with the ``default`` policy (lookup-self)."""
    body = stack.vault_call(
        "POST", "auth/token/create", {"policies": ["default"], "ttl": ttl, "renewable": True}
    )
    return body["auth"]["client_token"], body["auth"]["accessor"]


def _ttl_of(stack: DevStack, accessor: str) -> int:
    body = stack.vault_call("POST", "auth/token/lookup-accessor", {"accessor": accessor})
    return int(body["data"]["ttl"])


async def _until(predicate: Callable[[], bool], within: float) -> None:
    """Poll ``predicate`` every 0.1 s; fail after ``within`` seconds."""
    with anyio.fail_after(within):
        while True:
            if predicate():
                return
            await anyio.sleep(0.1)


async def test_a_file_token_is_read_again_never_renewed_nor_revoked(
    devstack: DevStack, tmp_path: Path
) -> None:
    first, first_accessor = _child_token(devstack, "6s")
    issued = time.monotonic()
    sink = tmp_path / "sink"
    replace_file(sink, first)
    client = AsyncVaultClient(addr=devstack.vault_addr, token="", timeout=5.0, max_retries=0)
    async with client, LeaseManager(client, LeaseConfig(shutdown_timeout=5)) as manager:
        handle = manager.manage_token(client, TokenAuth(token_file=sink))
        await handle.wait_ready(timeout=10)
        first_read = handle.read_at
        # The engine's next step comes before the token expires: a renewal (the engine
        # taking over what the Agent owns) or a new read of the file.
        await _until(lambda: handle.renewals > 0 or handle.read_at != first_read, within=10)
        assert handle.renewals == 0
        assert _ttl_of(devstack, first_accessor) <= 6 - (time.monotonic() - issued) + 1

        # The Agent logs in again and writes its new token; the old one goes away.
        second, second_accessor = _child_token(devstack, "60s")
        replace_file(sink, second)
        devstack.vault_call("POST", "auth/token/revoke-accessor", {"accessor": first_accessor})
        await anyio.sleep(1.1)  # the client looks at the file at most once a second
        assert (await client.auth.token.lookup_self()).accessor == second_accessor
        await _until(
            lambda: handle.current is not None and handle.current.identity == second_accessor,
            within=10,
        )
        assert handle.renewals == 0
    # Shut down: the Agent's token is still alive.
    assert _ttl_of(devstack, second_accessor) > 0
