"""docker-compose.yml against the Compose Specification's JSON schema.

The check is the command anyone can run from the repository:
``check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml`` (the schema as
the check-jsonschema package ships it; no network).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.compose import COMPOSE_FILE

Mutation = Callable[[dict[str, Any]], None]


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(path)],
        capture_output=True, text=True, timeout=120,
    )


def test_compose_file_matches_the_specification() -> None:
    result = check_compose(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validation done" in result.stdout


def _misspelt_key(doc: dict[str, Any]) -> None:
    doc["services"]["app"]["healtcheck"] = doc["services"]["app"].pop("healthcheck", {})


def _unknown_condition(doc: dict[str, Any]) -> None:
    doc["services"]["migrate"]["depends_on"]["vault-init"]["condition"] = "service_done"


def _ports_not_a_list(doc: dict[str, Any]) -> None:
    doc["services"]["openbao"]["ports"] = {"published": "127.0.0.1:8200"}


def _service_name_with_a_space(doc: dict[str, Any]) -> None:
    doc["services"]["vault init"] = doc["services"]["vault-init"]


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (_misspelt_key, "healtcheck"),
        (_unknown_condition, "service_done"),
        (_ports_not_a_list, "services.openbao.ports"),
        (_service_name_with_a_space, "vault init"),
    ],
)
def test_a_file_breaking_the_specification_is_rejected(
    tmp_path: Path, mutate: Mutation, named: str
) -> None:
    """The check can fail: a copy with one mistake is rejected, the mistake named."""
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    mutate(doc)
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = check_compose(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert named in result.stdout
