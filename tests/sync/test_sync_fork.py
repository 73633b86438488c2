"""A process forked from one running the sync engine (a pre-loading server's worker) exits
without touching the parent's engine thread, which does not exist in the child."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD_EXITS = textwrap.dedent(
    """
    import os, signal, sys, time
    from contextlib import asynccontextmanager
    from vault_async import sync
    from vault_async.auth import TokenAuth
    from vault_async._config import ClientConfig

    @asynccontextmanager
    async def engine(*args, **kwargs):
        yield ("credentials", "manager")

    sync._engine = engine  # what start() runs, minus Vault
    runtime = sync.start(ClientConfig(addr="http://127.0.0.1:1"), TokenAuth("t"), db_role="app")
    pid = os.fork()
    if pid == 0:
        assert runtime.closed, "the child sees the parent's runtime as its own"
        sys.exit(0)  # atexit runs in the child
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child status", os.waitstatus_to_exitcode(status))
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print("child hung at exit")
    assert not runtime.closed
    runtime.close()
    print("parent closed")
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_exits_without_closing_the_parents_runtime(tmp_path: Path) -> None:
    script = tmp_path / "fork_exit.py"
    script.write_text(CHILD_EXITS)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["child status 0", "parent closed"], done.stderr
