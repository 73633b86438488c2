"""docker-compose.yml as Compose reads it with no variable set; its healthchecks as argv."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?::-([^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose's ``${NAME:-default}`` with nothing set: the default; ``$$`` is a literal ``$``."""
    if isinstance(value, str):
        return INTERPOLATION.sub(
            lambda m: "$" if m.group(0) == "$$" else (m.group(2) or ""), value
        )
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file, anchors merged and variables at their defaults."""
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    result: dict[str, Any] = interpolate(loaded)
    return result


def healthcheck_argv(service: dict[str, Any]) -> list[str]:
    """A service's healthcheck ``test`` as an argv (``CMD-SHELL`` runs through ``/bin/sh -c``)."""
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["/bin/sh", "-c", test]
    kind, *rest = test
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(rest)]
    assert kind == "CMD", test
    return list(rest)


def app_healthcheck(compose: dict[str, Any], port: int) -> subprocess.CompletedProcess[str]:
    """The app service's healthcheck with this interpreter, aimed at `port` instead of 8000."""
    app = compose["services"]["app"]
    app_port = app["command"][app["command"].index("--port") + 1]
    argv = healthcheck_argv(app)
    assert argv[0] == "python", "the image has python, not curl"
    argv = [sys.executable, *(a.replace(f":{app_port}/", f":{port}/") for a in argv[1:])]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
