"""``python -m app`` on Agent files that are not there: one line naming the setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.service import ROOT, service_environ
from vault_async.devstack._processes import free_port

DATABASE_URL = "postgresql+asyncpg://127.0.0.1:9/app"  # never reached: the files fail first


def _run_app(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(free_port())]
    return subprocess.run(
        argv, cwd=ROOT, env=service_environ(env), capture_output=True, text=True, timeout=60
    )


def _the_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if "error" in line or "failed" in line]
    return lines[-1]


def test_missing_files_are_one_line_naming_the_setting(tmp_path: Path) -> None:
    creds = tmp_path / "db.json"
    sink = tmp_path / "sink"
    result = _run_app({
        "DATABASE_URL": DATABASE_URL,
        "VAULT_DB_CREDS_FILE": str(creds),
        "VAULT_STARTUP_TIMEOUT": "0.3",
    })
    assert result.returncode == 2, result.stderr
    assert _the_line(result) == (
        f"configuration error: no database credential in {creds} after 0.3 s: cannot read "
        f"{creds}: No such file or directory (check VAULT_DB_CREDS_FILE and that the Agent "
        "renders it; VAULT_STARTUP_TIMEOUT sets how long to wait)"
    )

    sink.write_text("")
    result = _run_app({
        "DATABASE_URL": DATABASE_URL,
        "VAULT_DB_CREDS_FILE": str(creds),
        "VAULT_ADDR": "http://127.0.0.1:9",
        "VAULT_TOKEN_FILE": str(sink),
    })
    assert result.returncode == 2, result.stderr
    assert _the_line(result) == f"configuration error: VAULT_TOKEN_FILE '{sink}' is empty"
