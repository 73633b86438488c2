"""What docker-compose.yml and deploy/Dockerfile promise that can be checked without Docker.

Image versions are the ones the tests run; the secret_id files go to the uid the service runs
as; the app's healthcheck tells a 200 from a 503; the build context holds the package only.
"""

from __future__ import annotations

import http.server
import re
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.compose import ROOT, app_healthcheck, load_compose
from vault_async.devstack._binaries import find_bao, find_pg_bindir
from vault_async.devstack._processes import free_port

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def _version(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    found = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
    assert found is not None, out
    return found.group(1)


def test_postgres_image_is_the_version_the_tests_run(compose: dict[str, Any]) -> None:
    version = _version([str(find_pg_bindir() / "postgres"), "--version"])  # e.g. 18.6
    assert compose["services"]["postgres"]["image"] == f"postgres:{version}"


def test_openbao_image_is_the_version_the_tests_run(compose: dict[str, Any]) -> None:
    version = _version([str(find_bao()), "version"])
    for name in ("openbao", "vault-init"):
        assert compose["services"][name]["image"] == f"openbao/openbao:{version}"


def _dockerfile_user() -> str:
    users = [line.split()[1] for line in DOCKERFILE.read_text().splitlines()
             if line.startswith("USER ")]
    assert len(users) == 1, users
    return users[0]


def test_secret_id_files_go_to_the_uid_the_service_runs_as(compose: dict[str, Any]) -> None:
    """A fresh named volume belongs to root: vault-init writes as root, then hands each file over.

    The openbao image runs as its own non-root user, which could not write there; the app and
    migrate containers (deploy/Dockerfile) read the file as a fixed numeric uid:gid.
    """
    user = _dockerfile_user()
    assert re.fullmatch(r"\d+:\d+", user), f"USER {user}: give a numeric uid:gid"
    assert user != "0:0"
    init = compose["services"]["vault-init"]
    assert init["user"] == "0:0"
    env = init["environment"]
    assert f"{env['APP_UID']}:{env['APP_GID']}" == user
    for name in ("app", "migrate"):
        assert compose["services"][name].get("user", user) == user


class _Status(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(type(self).status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[tuple[int, type[_Status]]]:
    handler = type("Handler", (_Status,), {"status": 200, "paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (500, False)])
def test_app_healthcheck_follows_healthz(
    compose: dict[str, Any], status_server: tuple[int, type[_Status]], status: int, healthy: bool
) -> None:
    port, handler = status_server
    handler.status = status
    result = app_healthcheck(compose, port)
    assert (result.returncode == 0) is healthy, result.stderr
    assert handler.paths == ["/healthz"]


def test_app_healthcheck_fails_when_nothing_listens(compose: dict[str, Any]) -> None:
    result = app_healthcheck(compose, free_port())
    assert result.returncode != 0
    check = compose["services"]["app"]["healthcheck"]
    assert "start_period" in check  # the first login to Vault is not a failure


def _dockerignore() -> list[str]:
    text = (ROOT / ".dockerignore").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _pattern_regex(pattern: str) -> str:
    """Docker's pattern syntax: `*` and `?` stay within a level, `**` spans levels."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def _pattern_matches(pattern: str, path: str) -> bool:
    """A pattern matches a path or any directory above it."""
    regex = re.compile(_pattern_regex(pattern.strip("/")))
    parts = path.split("/")
    return any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1))


def excluded(path: str, patterns: list[str]) -> bool:
    """The last pattern that matches decides; `!` re-includes."""
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _pattern_matches(pattern.lstrip("!"), path):
            verdict = not negated
    return verdict


def _copied_sources() -> list[str]:
    sources: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            sources += [s for s in line.split()[1:-1] if not s.startswith("--")]
    return sources


def test_dockerignore_sends_what_the_dockerfile_copies() -> None:
    patterns = _dockerignore()
    tracked = subprocess.run(
        ["git", "ls-files", *_copied_sources()], cwd=ROOT, capture_output=True, text=True,
        timeout=30, check=True,
    ).stdout.split()
    assert tracked
    assert [path for path in tracked if excluded(path, patterns)] == []


@pytest.mark.parametrize(
    "path",
    [
        ".git/config", ".venv/bin/python", "venv/bin/python",
        "app/__pycache__/main.cpython-311.pyc", ".pytest_cache/v/cache", ".mypy_cache/x.json",
        ".ruff_cache/x", ".hypothesis/examples/x", ".env", "vault-async.env", "deploy/prod.env",
        "app/.env", "app/local.env", "vault_async/devstack/dev.env", "tests/conftest.py",
        "benchmarks/soak.py", "root-token", "build/lib/x.py", "vault_async.egg-info/PKG-INFO",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert excluded(path, _dockerignore())
