"""Start, watch and stop the dev stack's server processes, always by PID."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ._errors import DevStackError
from ._private import open_private_log, read_text_nofollow
from ._users import UNPRIVILEGED_USER_ENV, RunAs

__all__ = [
    "UNPRIVILEGED_USER_ENV",
    "RunAs",
    "ServerProcess",
    "free_port",
    "free_port_pair",
    "log_tail",
    "port_accepts",
]

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_pair() -> int:
    """A free port p on 127.0.0.1 whose neighbour p+1 is free too (OpenBao's cluster port)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise DevStackError("pick ports", "found no two adjacent free ports on 127.0.0.1")


def port_accepts(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def log_tail(
    path: Path, lines: int = 20, redact: Sequence[str] = (), *, dir_fd: int | None = None
) -> str:
    """The last lines of a log file, without any line holding one of `redact`.

    With `dir_fd`, the log is the file named `path.name` in that open directory.
    """
    try:
        text = read_text_nofollow(path if dir_fd is None else path.name, dir_fd=dir_fd)
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if not any(s in line for s in redact)]
    return "\n".join(kept[-lines:])


def _die_with_parent() -> None:
    """In the child: ask the kernel to SIGTERM us if the parent dies (no orphans on SIGKILL)."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class ServerProcess:
    """One server child: its PID, its log file, and how to stop it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        run_as: RunAs | None = None,
        env: dict[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        redact: Sequence[str] = (),
        log_dir_fd: int | None = None,
    ) -> None:
        self.name = name
        self._log_dir_fd = log_dir_fd  # the open directory the log is in, kept by the caller
        self._redact = tuple(redact)
        self.log_path = log_path
        self._stop_signal = stop_signal
        run_as = run_as or RunAs()
        # Created 0600 in one step: a server's log may print its secrets (OpenBao's root token).
        try:
            log_fd = open_private_log(
                log_path if log_dir_fd is None else log_path.name, dir_fd=log_dir_fd
            )
        except OSError as exc:
            raise DevStackError(f"start {name}", f"open its log {log_path}: {exc}") from exc
        with os.fdopen(log_fd, "ab") as log:
            try:
                self._popen = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    user=run_as.uid,
                    group=run_as.gid,
                    extra_groups=[] if run_as.uid is not None else None,
                    preexec_fn=_die_with_parent,
                    start_new_session=True,
                )
            except OSError as exc:
                raise DevStackError(f"start {name}", str(exc)) from exc

    @property
    def pid(self) -> int:
        return self._popen.pid

    def running(self) -> bool:
        return self._popen.poll() is None

    def tail(self) -> str:
        return log_tail(self.log_path, redact=self._redact, dir_fd=self._log_dir_fd)

    def wait_until(self, ready: Callable[[], bool], *, timeout: float, step: str) -> None:
        """Poll `ready` until true; fail with the log tail if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise DevStackError(
                    step, f"{self.name} exited with code {self._popen.returncode}", self.tail()
                )
            if ready():
                return
            time.sleep(0.05)
        raise DevStackError(step, f"{self.name} not ready after {timeout:.0f} s", self.tail())

    def signal(self, sig: signal.Signals) -> None:
        if self.running():
            os.kill(self.pid, sig)

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL by PID and reap: the process gets no chance to clean up."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self._popen.wait(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop by PID: the polite signal first, SIGKILL when it does not exit in time."""
        if not self.running():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)  # a paused process cannot act on the stop signal
            os.kill(self.pid, self._stop_signal)
        try:
            self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._popen.wait(timeout=5)
