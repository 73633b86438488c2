"""The README's "your own FastAPI service" snippet: every name defined, and it serves for real."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vault_async.devstack import DevStack

README = Path(__file__).resolve().parents[2] / "README.md"


def service_snippet() -> str:
    """The one README code block that builds a FastAPI app."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    found = [block for block in blocks if "app = FastAPI(" in block]
    assert len(found) == 1, "expected one FastAPI service snippet in the README"
    return str(found[0])


def test_the_snippet_defines_every_name_it_uses(tmp_path: Path) -> None:
    source = tmp_path / "service.py"
    source.write_text(service_snippet())
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated",
         "--select", "F", str(source)],
        capture_output=True, text=True, timeout=60,
    )
    assert lint.returncode == 0, lint.stdout


def test_the_snippet_serves_on_the_dev_stack(
    migrated: DevStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "secret-id"
    secret_file.write_text(migrated.secret_id)
    secret_file.chmod(0o600)
    source = (
        service_snippet()
        .replace("postgresql+asyncpg://db.internal:5432/app", migrated.database_url)
        .replace("https://vault.internal:8200", migrated.vault_addr)
        .replace("/run/secrets/secret-id", str(secret_file))
    )
    assert migrated.vault_addr in source
    assert str(secret_file) in source
    monkeypatch.setenv("VAULT_ROLE_ID", migrated.role_id)
    namespace: dict[str, object] = {"__name__": "readme_service"}
    exec(compile(source, "README.md", "exec"), namespace)
    with TestClient(namespace["app"]) as http:  # type: ignore[arg-type]
        answer = http.get("/count")
        assert answer.status_code == 200, answer.text
        assert isinstance(answer.json(), int)
        assert http.get("/healthz").json()["status"] == "ok"
