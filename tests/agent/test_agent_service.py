"""The reference service on files a real ``bao agent`` writes: its token sink and a template
rendering short-lived database credentials.

The Agent logs in with AppRole, renews its token and the lease, and renders a new
credential when the lease reaches its max TTL (20 s here). The service reads the token
from ``VAULT_TOKEN_FILE`` and its database login from ``VAULT_DB_CREDS_FILE``; under load
it follows the new login with no failed request, and leaves the Agent's lease and token
alone (neither renewed nor revoked by the service).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import backends_of
from tests.support.agent import AgentProcess, agent_policy, wait_for_file
from tests.support.load import run_load
from tests.support.service import ServiceProcess
from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration

ROLE = "agent-short"
"""Leases of 10 s, at most 20 s: the Agent renders a new credential within the test."""


@pytest.fixture
def agent(migrated: DevStack, tmp_path: Path) -> Iterator[AgentProcess]:
    """A running Agent whose AppRole may read ``ROLE`` and renew its leases, nothing else."""
    migrated.create_dynamic_role(ROLE, "10s", "20s")
    migrated.vault_call(
        "PUT", f"sys/policies/acl/{ROLE}", {"policy": agent_policy(migrated.db_mount, ROLE)}
    )
    login = migrated.create_approle_role(
        ROLE, token_ttl="5m", token_max_ttl="1h", policies=[ROLE]
    )
    with AgentProcess(
        tmp_path,
        vault_addr=migrated.vault_addr,
        role_id=login.role_id,
        secret_id=login.secret_id,
        secret_path=f"{migrated.db_mount}/creds/{ROLE}",
    ) as process:
        yield process


async def _role_exists(stack: DevStack, name: str) -> bool:
    async with stack.admin_connection() as conn:
        found: bool = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name
        )
    return found


async def _until(check: object, within: float, what: str) -> float:
    """Await ``check()`` every 0.1 s until true; the monotonic time it became true."""
    assert callable(check)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return time.monotonic()
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {within} s")


async def test_service_follows_the_agent_with_no_failed_request(
    migrated: DevStack, agent: AgentProcess
) -> None:
    first = json.loads(wait_for_file(agent.creds, timeout=20))["data"]
    rendered_at = agent.creds.stat().st_mtime
    wait_for_file(agent.sink, timeout=5)
    env = {
        "DATABASE_URL": migrated.database_url,
        "VAULT_DB_CREDS_FILE": str(agent.creds),
        "VAULT_ADDR": migrated.vault_addr,
        "VAULT_TOKEN_FILE": str(agent.sink),
    }
    with ServiceProcess(env) as service:
        status, health = service.healthz()
        assert (status, health["status"], health["mode"]) == (200, "ok", "file")
        assert health["database"]["kind"] == "database_file"
        assert health["database"]["generation"] == 1
        assert health["token"] is not None

        stop = threading.Event()
        load = asyncio.create_task(
            run_load(service.base_url, concurrency=4, duration=40, stop=stop)
        )
        try:

            async def rerendered() -> bool:
                return json.loads(agent.creds.read_text())["data"]["username"] != first["username"]

            async def followed() -> bool:
                return service.healthz()[1]["database"]["generation"] >= 2

            async def old_sessions_closed() -> bool:
                return await backends_of(migrated, first["username"]) == 0

            async def old_login_dropped() -> bool:
                return not await _role_exists(migrated, first["username"])

            await _until(rerendered, 25, "the Agent renders a new credential")
            rerendered_at = agent.creds.stat().st_mtime
            swapped_at = await _until(followed, 5, "the service reads the new credential")
            follow_s = time.time() - rerendered_at  # wall clock: the file's mtime is one
            await _until(old_sessions_closed, 10, "no session of the old login")
            await _until(old_login_dropped, 15, "Vault drops the old login at its max TTL")
            await asyncio.sleep(1.0)  # requests on the new login after the old one is gone
        finally:
            stop.set()
            result = await load
        assert await backends_of(migrated, first["username"]) == 0
        after_swap = sum(1 for o in result.outcomes if o.started > swapped_at)
        print(  # the figures of the README (pytest -s shows them)
            f"\nagent re-rendered after {rerendered_at - rendered_at:.1f} s, service on it "
            f"{follow_s:.1f} s later; {result.summary()}; "
            f"{after_swap} requests after the swap"
        )
        assert result.errors == 0, result.failure_kinds()
        assert after_swap > 0
        status, health = service.healthz()
        assert (status, health["status"]) == (200, "ok")
        assert health["database"]["rotations"] >= 1
        now = json.loads(agent.creds.read_text())["data"]
        service.stop()  # SIGTERM: the service shuts down as in production
        output = service.output()
    token = agent.sink.read_text().strip()
    for secret in (first["password"], now["password"], token):
        assert secret not in output
    # The service is gone: the Agent's lease and token are still alive (nothing revoked them).
    assert await _role_exists(migrated, now["username"])
    looked_up = migrated.vault_call("POST", "auth/token/lookup", {"token": token})
    assert looked_up["data"]["ttl"] > 0
