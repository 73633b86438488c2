"""Role names from the environment are data: quoted as identifiers, never spliced into SQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from tests.support.service import ROOT, ServiceProcess, service_environ
from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration

INJECTED_OWNER = 'app_owner"; CREATE TABLE pwned (x int); --'
INJECTED_ASSUME = 'app_rw"; SET search_path TO pg_catalog; --'


async def table_exists(stack: DevStack, name: str) -> bool:
    async with stack.admin_connection() as conn:
        found: bool = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE tablename = $1)", name
        )
    return found


async def test_injected_owner_role_never_runs_as_sql(stack: DevStack) -> None:
    env = service_environ(stack.migration_env() | {"DB_OWNER_ROLE": INJECTED_OWNER})
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "alembic", "downgrade", "base"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert not await table_exists(stack, "pwned")
    assert await table_exists(stack, "users")  # the downgrade never ran either


async def test_injected_assume_role_stops_startup_with_a_clear_error(stack: DevStack) -> None:
    service = ServiceProcess(stack.env() | {"DB_ASSUME_ROLE": INJECTED_ASSUME})
    with pytest.raises(RuntimeError) as info:
        service.start(timeout=30)
    output = str(info.value)
    assert "does not exist" in output or "DB_ASSUME_ROLE" in output, output
    assert "Traceback" not in output, output
    assert service.returncode not in (None, 0)
