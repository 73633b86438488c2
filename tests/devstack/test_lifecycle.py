"""The dev stack starts fast enough, fails clearly, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vault_async.devstack import DevStack, DevStackError

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: list[int], timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def test_stop_leaves_no_process_and_no_directory() -> None:
    with DevStack() as stack:
        pids = [stack.bao_pid, stack.pg_pid]
        workdir, pg_workdir = stack.workdir, stack.pg_workdir
        assert workdir is not None
        assert all(alive(p) for p in pids)
        assert workdir.is_dir()
        assert pg_workdir.is_dir()
    assert wait_gone(pids) == []
    assert not workdir.exists()
    assert not pg_workdir.exists()


def test_exception_inside_the_block_still_cleans_up() -> None:
    seen: list[tuple[DevStack, list[int]]] = []

    def fail_inside() -> None:
        with DevStack() as stack:
            seen.append((stack, [stack.bao_pid, stack.pg_pid]))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    ((stack, pids),) = seen
    assert stack.workdir is not None
    assert wait_gone(pids) == []
    assert not stack.workdir.exists()


def test_configuration_failure_names_the_step_and_cleans_up() -> None:
    stack = DevStack(db_ttl="not-a-duration")
    with pytest.raises(DevStackError) as info:
        stack.start()
    assert "create database role 'app'" in str(info.value)
    assert stack.workdir is not None
    assert not stack.workdir.exists()
    # Nothing of the secrets it generated appears in the message.
    assert stack._bao is not None
    assert stack._bao.root_token not in str(info.value)


def test_killed_owner_takes_its_servers_along() -> None:
    """Even SIGKILL of the process that started the stack leaves no server running."""
    script = (
        "import sys\n"
        "from vault_async.devstack import DevStack\n"
        "s = DevStack().start()\n"
        "print(s.bao_pid, s.pg_pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        pids = [int(x) for x in line.split()]
        assert len(pids) == 2, line
        assert all(alive(p) for p in pids)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert wait_gone(pids) == []


def test_tls_mode_serves_https_signed_by_its_own_ca() -> None:
    import httpx

    with DevStack(tls=True) as stack:
        assert stack.vault_addr.startswith("https://127.0.0.1:")
        assert stack.ca_cert is not None
        assert stack.env()["VAULT_CACERT"] == str(stack.ca_cert)
        verify = ssl.create_default_context(cafile=stack.ca_cert)
        health = httpx.get(f"{stack.vault_addr}/v1/sys/health", verify=verify)
        assert health.status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{stack.vault_addr}/v1/sys/health")  # system CAs do not know it


def test_raw_audit_log_records_issued_secrets() -> None:
    import httpx

    with DevStack(audit_log=True) as stack:
        assert stack.audit_log is not None
        creds = httpx.get(
            f"{stack.vault_addr}/v1/database/creds/app",
            headers={"X-Vault-Token": stack.root_token},
        ).json()["data"]
        text = stack.audit_log.read_text()
        assert creds["password"] in text  # raw mode: the test can learn every issued secret
