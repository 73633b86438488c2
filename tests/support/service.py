"""Run the reference service as a real subprocess: a free loopback port, stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests.support.processes import stop_process
from vault_async.devstack import DevStack
from vault_async.devstack._processes import free_port

ROOT = Path(__file__).resolve().parents[2]
_SERVICE_PREFIXES = ("VAULT_", "BAO_", "DB_", "DATABASE_URL")


def service_environ(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without any service setting, plus exactly `env`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_SERVICE_PREFIXES)}
    return inherited | env


def run_migrations(env: dict[str, str], timeout: float = 60) -> None:
    """`alembic upgrade head` with `env` (a stack's `migration_env()`), as an operator runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT, env=service_environ(env), capture_output=True, text=True, timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"alembic upgrade head failed:\n{result.stdout}\n{result.stderr}")


@contextmanager
def migrated_devstack(**options: Any) -> Iterator[DevStack]:
    """A dev stack of its own (``DevStack(**options)``) with the migrations applied."""
    with DevStack(**options) as stack:
        run_migrations(stack.migration_env())
        yield stack


class ServiceProcess:
    """`python -m app` (or any argv) under uvicorn on 127.0.0.1, its output kept in a file."""

    def __init__(
        self, env: dict[str, str], *, argv: list[str] | None = None, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._argv = argv or [sys.executable, "-m", "app"]
        self._argv = [*self._argv, "--host", "127.0.0.1", "--port", str(self.port)]
        self._env = service_environ(env)
        # A file without a name (gone as soon as it is closed): nothing is left in the
        # temporary directory, however the test ends.
        self._log = tempfile.TemporaryFile(  # noqa: SIM115 -- lives as long as this runner
            prefix="vault-async-service-", suffix=".log"
        )
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._popen is not None
        return self._popen.pid

    def start(self, timeout: float = 60) -> ServiceProcess:
        self._popen = subprocess.Popen(
            self._argv, cwd=ROOT, env=self._env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._popen.poll() is not None:
                raise RuntimeError(
                    f"service exited with {self._popen.returncode}:\n{self._tail(40)}"
                )
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code in (200, 503):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"service not up after {timeout} s:\n{self._tail(40)}")

    def healthz(self) -> tuple[int, dict[str, Any]]:
        response = httpx.get(f"{self.base_url}/healthz", timeout=5)
        body: dict[str, Any] = response.json()
        return response.status_code, body

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15) -> float:
        """Send `sig`, wait for the exit (SIGKILL after `timeout`); return seconds it took."""
        if self._popen is None or self._popen.poll() is not None:
            return 0.0
        started = time.monotonic()
        stop_process(self._popen, sig, timeout)
        return time.monotonic() - started

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def output(self) -> str:
        """Everything the process wrote so far (read at offsets: the process shares the file)."""
        chunks: list[bytes] = []
        offset = 0
        while chunk := os.pread(self._log.fileno(), 1 << 16, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks).decode(errors="replace")

    def _tail(self, lines: int) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._log.close()
