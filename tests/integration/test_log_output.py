"""What `python -m app` prints: quiet start-up at INFO, fields shown, JSON on request."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest

from tests.support.service import ROOT, ServiceProcess, service_environ
from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration


async def test_dev_start_up_is_quiet_at_info_and_shows_the_lease_fields() -> None:
    service = ServiceProcess({}, argv=[sys.executable, "-m", "app", "--dev"])
    await asyncio.to_thread(service.start, 90)
    try:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
            assert (await http.get("/healthz")).status_code == 200
    finally:
        await asyncio.to_thread(service.stop)
    lines = service.output().splitlines()
    assert not [line for line in lines if " httpx " in line or " alembic" in line]
    assert [line for line in lines if "app.serving url=http://127.0.0.1:" in line]
    acquired = [line for line in lines if " lease.acquired " in line]
    assert any("secret=database/creds/app " in line for line in acquired), acquired
    assert all(" ttl=" in line and " generation=1" in line for line in acquired), acquired


async def test_json_format_writes_one_object_per_line(migrated: DevStack) -> None:
    service = ServiceProcess(migrated.env() | {"LOG_FORMAT": "json"})
    await asyncio.to_thread(service.start, 60)
    try:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
            assert (await http.get("/users/987654")).status_code == 404
    finally:
        await asyncio.to_thread(service.stop)
    records = [json.loads(line) for line in service.output().splitlines() if line.strip()]
    assert all(isinstance(r, dict) and {"time", "level", "logger", "message"} <= set(r)
               for r in records)
    acquired = [r for r in records if r["message"] == "lease.acquired"]
    creds = [r for r in acquired if r["secret"] == "database/creds/app"]
    assert creds
    assert isinstance(creds[0]["ttl"], int)
    assert creds[0]["generation"] == 1
    assert [r for r in records if r["message"] == "app.serving" and r["url"].startswith("http://")]
    assert [r for r in records if r["logger"] == "uvicorn.access" and "404" in r["message"]]


def test_an_unknown_log_format_is_a_settings_error(migrated: DevStack) -> None:
    env = service_environ(migrated.env() | {"LOG_FORMAT": "yaml"})
    result = subprocess.run(
        [sys.executable, "-m", "app", "--port", "9"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "LOG_FORMAT" in line
    assert "'text' or 'json'" in line
