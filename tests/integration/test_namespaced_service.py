"""The reference service with VAULT_NAMESPACE: everything it asks Vault happens in ``team-a``.

Its role exists only in the namespace's database mount (the root has no role of that name),
so serving requests proves the credentials came from there; its leases are listed, rotated
and, at shutdown, revoked inside the namespace.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.integration.test_startup_errors import command_env, run_app, the_line
from tests.support.service import ServiceProcess
from vault_async.devstack import DevNamespace, DevStack, DevStackError

pytestmark = pytest.mark.integration

ROLE = "nsapp"  # at most 8 characters: Vault truncates it in the login name


def namespace_leases(stack: DevStack, namespace: str | None) -> list[str]:
    """Ids (suffixes) of the leases of ``database/creds/<ROLE>`` in ``namespace``."""
    try:
        body = stack.vault_call(
            "LIST", f"sys/leases/lookup/{stack.db_mount}/creds/{ROLE}/", namespace=namespace
        )
    except DevStackError as exc:  # 404: none, or no such prefix
        if "404" in str(exc):
            return []
        raise
    keys: list[str] = body["data"]["keys"]
    return keys


async def wait_for_rotation(
    service: ServiceProcess, stack: DevStack, seen: set[str], within: float
) -> dict[str, Any]:
    """Serve /users meanwhile, noting the Vault-made logins in ``seen``; the /healthz body
    once the database login was rotated."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=service.base_url, timeout=5) as client:
        while True:
            assert (await client.get("/users", params={"limit": 1})).status_code == 200
            seen.update(await stack.v_roles())
            health: dict[str, Any] = (await client.get("/healthz")).json()
            if health["database"]["rotations"] >= 1:
                return health
            assert time.monotonic() < deadline, health
            await asyncio.sleep(0.25)


async def test_service_runs_rotates_and_revokes_inside_its_namespace(
    migrated: DevStack, team_namespace: DevNamespace
) -> None:
    ns = team_namespace.path
    # 4 s leases that cannot outlive 6 s: the service must replace its login within seconds.
    migrated.create_dynamic_role(ROLE, "4s", "6s", namespace=ns)
    with pytest.raises(DevStackError, match="400"):
        migrated.vault_call("GET", f"{migrated.db_mount}/creds/{ROLE}")  # not at the root
    env = migrated.env(team_namespace) | {"VAULT_DB_ROLE": ROLE}
    assert env["VAULT_NAMESPACE"] == ns
    before = set(await migrated.v_roles())
    service = ServiceProcess(env)
    await asyncio.to_thread(service.start, 60)
    seen: set[str] = set()
    try:
        health = await wait_for_rotation(service, migrated, seen, within=20)
        assert health["status"] == "ok", health
        assert namespace_leases(migrated, ns), "the service's leases live in team-a"
        seen.update(await migrated.v_roles())
        during = {role for role in seen - before if f"-{ROLE}-" in role}
        assert len(during) >= 2, during  # the first login and its replacement
    finally:
        await asyncio.to_thread(service.stop)
    assert service.returncode in (0, -15), service.output()[-2000:]
    assert namespace_leases(migrated, ns) == [], "revoked at shutdown, inside team-a"
    assert not (set(await migrated.v_roles()) & during)


@pytest.mark.parametrize(
    ("namespace", "code", "words"),
    [
        ("team a/../x", 2, "configuration error: namespace (VAULT_NAMESPACE) must be"),
        ("no-such-team", 1, '"namespace not found" (check VAULT_NAMESPACE)'),
    ],
)
def test_a_wrong_namespace_is_one_line_naming_vault_namespace(
    devstack: DevStack, namespace: str, code: int, words: str
) -> None:
    result = run_app(command_env(devstack, VAULT_NAMESPACE=namespace))
    assert result.returncode == code
    line = the_line(result, devstack.secret_id, devstack.root_token)
    assert words in line, line
