"""Without OpenTelemetry installed, the client, the lease engine and the runtime still work.

A subprocess where ``import opentelemetry`` fails (``sys.modules`` holds None for it) runs
a client and a lease manager against the dev stack and loads the service's settings.
(The service itself needs FastAPI, whose recent versions depend on the OpenTelemetry API.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, json, os, sys
sys.modules["opentelemetry"] = None  # import opentelemetry[.anything] raises ImportError

import vault_async.runtime, vault_async.sqlalchemy, vault_async.sync
from app.settings import SettingsError, load_settings
from vault_async import AsyncVaultClient
from vault_async.lifecycle import LeaseManager

async def main():
    async with AsyncVaultClient(os.environ["ADDR"], os.environ["TOKEN"], timeout=5.0) as client:
        async with LeaseManager(client) as manager:
            handle = manager.manage_database_credentials(role=os.environ["ROLE"])
            lease = await handle.wait_ready(timeout=15)
            return lease.lease_id != "" and client.request_observer is None

worked = asyncio.run(main())
try:
    load_settings({"DATABASE_URL": "postgresql+asyncpg://db/app", "OTEL_ENABLED": "true"})
    refused = ""
except SettingsError as exc:
    refused = str(exc)
try:
    import vault_async.otel
    otel = "imported"
except ImportError:
    otel = "ImportError"
loaded = sorted(m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v)
print(json.dumps({"worked": worked, "refused": refused, "otel": otel, "loaded": loaded}))
"""


def test_runs_without_opentelemetry(devstack: DevStack) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ADDR": devstack.vault_addr,
        "TOKEN": devstack.root_token,
        "ROLE": devstack.dynamic_role,
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome == {
        "worked": True,
        "refused": "OTEL_ENABLED is true but OpenTelemetry is not installed: "
        "pip install 'vault-async[otel]'",
        "otel": "ImportError",
        "loaded": [],
    }
