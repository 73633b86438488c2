"""schemathesis against the running service's OpenAPI document: no input gives a 500."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.service import ServiceProcess
from vault_async.devstack import DevStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_schemathesis_finds_no_server_error(migrated: DevStack) -> None:
    st = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    with ServiceProcess(migrated.env()) as service:
        result = await asyncio.to_thread(
            subprocess.run,
            [
                st, "run", f"{service.base_url}/openapi.json",
                "--checks", "not_a_server_error",
                "--max-examples", "40", "--seed", "20261123",
            ],
            capture_output=True, text=True, timeout=240,
        )
    summary = "\n".join(result.stdout.splitlines()[-40:])
    assert result.returncode == 0, summary
    assert "Tested: 3" in summary, summary  # every operation was exercised
