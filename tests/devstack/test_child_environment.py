"""The dev stack's servers and initdb get a minimal environment, not this process's.

PostgreSQL runs as another user when the stack runs as root, and that user can read its own
processes' `/proc/<pid>/environ`: a token in the parent's environment must not reach it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration

CANARY = "VAULT_ASYNC_TEST_CANARY"
CANARY_VALUE = "canary-4f1d0c2e9b"
SECRET_NAMES = ("VAULT_TOKEN", "VAULT_SECRET_ID", "PGPASSWORD")


def environ_of(pid: int) -> dict[str, str]:
    """The environment a running process started with, from /proc."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(): v.decode(errors="replace") for k, _, v in pairs}


def leaked(env: dict[str, str]) -> list[str]:
    """Names of variables that came from this process's environment and hold a secret."""
    return sorted(
        name for name, value in env.items() if name in (CANARY, *SECRET_NAMES)
        or CANARY_VALUE in value
    )


class Started:
    def __init__(self, stack: DevStack, initdb_envs: list[dict[str, str] | None]) -> None:
        self.stack = stack
        self.initdb_envs = initdb_envs


@pytest.fixture(scope="module")
def started() -> Iterator[Started]:
    patch = pytest.MonkeyPatch()
    patch.setenv(CANARY, CANARY_VALUE)
    patch.setenv("VAULT_TOKEN", CANARY_VALUE)
    patch.setenv("VAULT_SECRET_ID", CANARY_VALUE)
    patch.setenv("PGPASSWORD", CANARY_VALUE)
    real_run = subprocess.run
    initdb_envs: list[dict[str, str] | None] = []

    def recording_run(argv: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(str(argv[0])).name == "initdb":
            env = kwargs.get("env")
            initdb_envs.append(None if env is None else dict(env))
        return real_run(argv, *args, **kwargs)

    patch.setattr(subprocess, "run", recording_run)
    try:
        with DevStack() as stack:
            yield Started(stack, initdb_envs)
    finally:
        patch.undo()


def test_postgres_environment_holds_nothing_of_the_parent(started: Started) -> None:
    pg = started.stack._started_pg()
    assert pg.process is not None
    env = environ_of(pg.process.pid)
    assert "PATH" in env  # the read worked
    assert leaked(env) == []


def test_initdb_environment_holds_nothing_of_the_parent(started: Started) -> None:
    assert len(started.initdb_envs) == 1
    env = started.initdb_envs[0]
    assert env is not None, "initdb inherits the whole environment"
    assert leaked(env) == []


def test_openbao_environment_holds_nothing_of_the_parent(started: Started) -> None:
    bao = started.stack._started_bao()
    assert bao.process is not None
    env = environ_of(bao.process.pid)
    assert "HOME" in env
    assert leaked(env) == []
    allowed = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "BAO_DEV_ROOT_TOKEN_ID"}
    assert sorted(set(env) - allowed) == []
