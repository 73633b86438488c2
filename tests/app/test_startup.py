"""Start-up failures end with one clear line and a non-zero exit, not a traceback wall."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.service import ROOT
from vault_async.devstack import DevStack
from vault_async.devstack._processes import free_port


def run_app(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "DB_"))}
    base.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", "1"],
        cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=timeout,
    )


def test_missing_setting_names_it() -> None:
    result = run_app({"VAULT_DB_ROLE": "app", "VAULT_ADDR": "http://127.0.0.1:1"})
    assert result.returncode == 2
    assert result.stderr.strip() == "configuration error: DATABASE_URL is required"


def test_unreachable_vault_fails_with_one_line() -> None:
    env = {
        "VAULT_ADDR": f"http://127.0.0.1:{free_port()}",
        "VAULT_AUTH_METHOD": "approle",
        "VAULT_ROLE_ID": "r",
        "VAULT_SECRET_ID": "not-a-real-secret-id",
        "DATABASE_URL": "postgresql+asyncpg://127.0.0.1:1/app",
        "VAULT_DB_ROLE": "app",
        "VAULT_STARTUP_TIMEOUT": "2",
        "VAULT_MAX_RETRIES": "0",
    }
    result = run_app(env)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("start-up failed")]
    assert len(lines) == 1
    assert lines[0].startswith(f"start-up failed: Vault at {env['VAULT_ADDR']} is not answering")
    assert "VAULT_ADDR" in lines[0]
    assert "Traceback" not in result.stderr
    assert "not-a-real-secret-id" not in result.stderr + result.stdout


@pytest.mark.integration
def test_wrong_secret_id_fails_fast_with_one_line(devstack: DevStack) -> None:
    env = devstack.env() | {"VAULT_SECRET_ID": "00000000-0000-0000-0000-000000000000"}
    result = run_app(env, timeout=30)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("start-up failed")]
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("start-up failed: auth/approle login refused by Vault: ")
    assert "invalid role or secret id" in lines[0].lower()
    assert "Traceback" not in result.stderr
