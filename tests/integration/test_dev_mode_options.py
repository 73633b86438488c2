"""`python -m app --dev` shows the product working: short leases, where Vault is, a clean Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil
import pytest

from tests.support.processes import stop_process
from tests.support.service import ROOT, service_environ
from vault_async.devstack._processes import free_port

pytestmark = pytest.mark.integration

_TOKEN_FILE = re.compile(r"root token in (\S+)")


class DevCommand:
    """`python -m app --dev ARGS` on a free port, stdout and stderr in files, stopped by PID."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "app", "--dev", "--port", str(self.port), *args]
        self._dir = Path(tempfile.mkdtemp(prefix="vault-async-dev-test-"))
        self._out = self._dir / "stdout"
        self._err = self._dir / "stderr"
        with open(self._out, "wb") as out, open(self._err, "wb") as err:
            self.popen = subprocess.Popen(
                argv, cwd=ROOT, env=service_environ({}), stdin=subprocess.DEVNULL,
                stdout=out, stderr=err,
            )

    def stdout(self) -> str:
        return self._out.read_text(errors="replace")

    def stderr(self) -> str:
        return self._err.read_text(errors="replace")

    def wait_for_line(self, needle: str, timeout: float = 90) -> list[str]:
        """Stdout's lines up to the first holding `needle`; fails if it exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.stdout().splitlines()
            for index, line in enumerate(lines):
                if needle in line:
                    return lines[: index + 1]
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"exited {self.popen.returncode} before {needle!r}:\n"
                    f"{self.stdout()}\n{self.stderr()[-3000:]}"
                )
            time.sleep(0.02)
        raise AssertionError(f"no {needle!r} after {timeout} s:\n{self.stdout()}")

    def wait_serving(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(f"exited {self.popen.returncode}:\n{self.stderr()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not serving after {timeout} s:\n{self.stderr()[-3000:]}")

    def healthz(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.base_url}/healthz", timeout=5).json()
        return body

    def children(self) -> list[int]:
        return [p.pid for p in psutil.Process(self.popen.pid).children(recursive=True)]

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 60) -> int:
        return stop_process(self.popen, sig, timeout)

    def __enter__(self) -> DevCommand:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(signal.SIGKILL, timeout=10)
        for path in (self._out, self._err):
            path.unlink(missing_ok=True)
        self._dir.rmdir()


def _gone(pids: list[int], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [
            p for p in pids
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        if not alive:
            return True
        time.sleep(0.1)
    return False


def test_banner_names_ttls_vault_and_a_private_token_file_then_leases_turn_over() -> None:
    with DevCommand("--db-ttl", "4s", "--db-max-ttl", "10s") as dev:
        first = dev.wait_for_line("root token in")
        dev.wait_serving()
        assert len(first) <= 4, first  # said up front, not after pages of logs
        banner = "\n".join(first)
        assert "4s" in first[0], first[0]
        assert "10s" in first[0], first[0]
        addr = re.search(r"http://127\.0\.0\.1:\d+", banner)
        assert addr is not None, banner
        match = _TOKEN_FILE.search(banner)
        assert match is not None, banner
        token_file = Path(match.group(1))
        st = os.lstat(token_file)
        assert stat.S_ISREG(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_uid == os.geteuid()
        token = token_file.read_text().strip()
        looked_up = httpx.get(
            f"{addr.group(0)}/v1/auth/token/lookup-self",
            headers={"X-Vault-Token": token}, timeout=5,
        )
        assert looked_up.status_code == 200
        assert "root" in looked_up.json()["data"]["policies"]

        first_generation = dev.healthz()["database"]["generation"]
        seen: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = dev.healthz()["database"]
            if seen["renewals"] >= 1 and seen["generation"] > first_generation:
                break
            time.sleep(0.25)
        assert seen["renewals"] >= 1, seen
        assert seen["generation"] > first_generation, seen
        assert seen["ttl_remaining"] <= 10, seen

        code = dev.stop(signal.SIGINT)
        output = dev.stdout() + dev.stderr()
        assert token not in output
        assert code == 0
        assert "Traceback" not in output
        assert not token_file.exists()  # removed with the dev stack


def test_default_leases_are_short_and_said_first() -> None:
    with DevCommand() as dev:
        first = dev.wait_for_line("root token in")
        assert "30s" in first[0], first[0]
        assert "2m" in first[0], first[0]
        dev.wait_serving()
        names = [psutil.Process(pid).name() for pid in dev.children()]
        assert names.count("bao") == 1, names  # one dev stack, started once
        database = dev.healthz()["database"]
        assert 0 < database["ttl_remaining"] <= 30, database
        assert dev.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize(
    ("after", "sig"),
    [
        ("credentials", signal.SIGINT),  # the dev stack is starting
        ("root token in", signal.SIGINT),  # migrations and the runtime are starting
        ("credentials", signal.SIGTERM),
    ],
)
def test_interrupt_during_start_up_exits_cleanly(after: str, sig: signal.Signals) -> None:
    with DevCommand() as dev:
        dev.wait_for_line(after)
        children = dev.children()
        code = dev.stop(sig)
        stderr = dev.stderr()
        assert "Traceback" not in stderr, stderr
        assert code == 0, stderr
        assert _gone(children)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--db-ttl", "soon"], "--db-ttl"),
        (["--db-max-ttl", "-5s"], "--db-max-ttl"),
        (["--db-ttl", "5m", "--db-max-ttl", "1m"], "--db-max-ttl"),
    ],
)
def test_bad_ttl_fails_before_anything_starts(args: list[str], needle: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "--dev", "--port", str(free_port()), *args],
        cwd=ROOT, env=service_environ({}), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert needle in line
    assert "Traceback" not in result.stderr
    assert "credentials" not in result.stdout  # nothing was started


def test_ttl_options_need_dev() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "--db-ttl", "30s"],
        cwd=ROOT, env=service_environ({}), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "--dev" in result.stderr.strip().splitlines()[-1]
