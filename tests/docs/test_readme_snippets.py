"""The README's binding snippets: each defines every name it uses and runs on the dev stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MARK = "# Runs as it is in the dev stack's environment"


def runnable_snippets() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [str(block) for block in blocks if block.startswith(MARK)]


SNIPPETS = runnable_snippets()


def snippet_id(source: str) -> str:
    imported = re.search(r"^from vault_async\.(\w+) import", source, re.M)
    return imported.group(1) if imported else source.splitlines()[1]


def test_the_readme_has_runnable_snippets() -> None:
    assert len(SNIPPETS) >= 1


@pytest.mark.parametrize("source", SNIPPETS, ids=[snippet_id(s) for s in SNIPPETS])
def test_snippet_logs_in_with_a_vault_credential(
    source: str, devstack: DevStack, tmp_path: Path
) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(source)
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated",
         "--select", "F", str(script)],
        capture_output=True, text=True, timeout=60,
    )
    assert lint.returncode == 0, lint.stdout
    env = devstack.env() | {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    printed = run.stdout.split()
    assert printed, run.stderr[-2000:]
    assert printed[-1].startswith("v-"), run.stdout  # a Vault-issued login
