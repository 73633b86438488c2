"""`python -m app --help` lists every environment variable the service reads, from the one
table in app/settings.py; the README's table lists the same names."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from app.settings import ENVIRONMENT, Settings
from vault_async import ClientConfig

ROOT = Path(__file__).resolve().parents[2]
NAMES = [name for name, _ in ENVIRONMENT]


class Recording(Mapping[str, str]):
    """An empty environment that remembers which names were asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_the_table_covers_every_setting_and_client_variable(tmp_path: Path) -> None:
    assert len(NAMES) == len(set(NAMES))
    assert {name.upper() for name in Settings.model_fields} <= set(NAMES)
    environ = Recording()
    ClientConfig.from_env(environ, home=tmp_path)
    client_names = {name for name in environ.asked if name.startswith("VAULT_")}
    assert "VAULT_MAX_RESPONSE_BYTES" in client_names
    assert client_names <= set(NAMES), sorted(client_names - set(NAMES))
    assert all(meaning and "\n" not in meaning for _, meaning in ENVIRONMENT)


def test_help_lists_the_environment() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "--help"], cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name, meaning in ENVIRONMENT:
        [line] = [line for line in lines if line.split()[:1] == [name]]
        assert meaning.split()[0] in line


def readme_names() -> set[str]:
    """The names in the README's `| variable | meaning |` table."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| variable | meaning |"):]
    rows = []
    for line in table.splitlines():
        if not line.startswith("|"):
            break
        rows.append(line)
    return {
        match.split("=")[0]
        for row in rows
        for match in re.findall(r"`([^`]+)`", row)
        if re.fullmatch(r"[A-Z][A-Z0-9]*_[A-Z0-9_]+(=.*)?", match)
    }


def test_the_readme_table_lists_the_same_names() -> None:
    assert readme_names() == set(NAMES)
