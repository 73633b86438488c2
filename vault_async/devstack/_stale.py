"""What a killed dev stack left behind: its directories and env files, marked with its owner.

Each work directory gets a marker file at creation: the PID of the process that owns the
stack, that process's start time (so a reused PID is not mistaken for it) and the env files
written for it. On the next start, a directory is removed only when it is a real directory
(not a link) named like ours, owned by this user (or by the user PostgreSQL runs as), holding
a private marker written by this user, and the process named in it is gone. An env file it
lists goes with it only while its first line still names that same process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._private import replace_private_file

PREFIX = "vault-async-devstack-"
MARKER = ".vault-async-devstack-owner"
ENV_COMMENT = "# vault-async devstack"

logger = logging.getLogger("vault_async.devstack")


def process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ""  # no /proc to read: alive as far as we can tell
    fields = text.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie does not use anything
        return None
    return fields[19]  # field 22 of proc(5); fields[0] is field 3


@dataclass(frozen=True, slots=True)
class Owner:
    """A process, by PID and start time."""

    pid: int
    start: str

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(pid, process_start(pid) or "")

    def alive(self) -> bool:
        """True while this very process runs (not another one given the same PID)."""
        if not Path("/proc/self/stat").exists():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        start = process_start(self.pid)
        return start is not None and (not self.start or start == self.start)

    def dump(self, files: Sequence[Path] = ()) -> str:
        return json.dumps({"pid": self.pid, "start": self.start, "files": [str(f) for f in files]})

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["start"]))
        except (ValueError, TypeError, KeyError):
            return None

    def env_comment(self) -> str:
        """The first line of an env file written for this owner's stack."""
        return f"{ENV_COMMENT} pid={self.pid} start={self.start}: removed when it stops"


def mark_owned(directory: Path, owner: Owner | None = None, files: Sequence[Path] = ()) -> None:
    """Write (or rewrite) the marker of a new work directory: its owner, its env files."""
    replace_private_file(directory / MARKER, (owner or Owner.current()).dump(files))


def is_stale(
    dir_st: os.stat_result, marker_st: os.stat_result | None, owner: Owner | None, *,
    euid: int, owner_uids: Collection[int], alive: Callable[[Owner], bool],
) -> bool:
    """Whether a directory (its lstat) with this marker (its fstat, its owner) may be removed."""
    if not stat.S_ISDIR(dir_st.st_mode) or dir_st.st_uid not in owner_uids:
        return False
    if marker_st is None or owner is None:
        return False
    if not stat.S_ISREG(marker_st.st_mode) or marker_st.st_uid != euid:
        return False
    if marker_st.st_mode & 0o077:
        return False
    return not alive(owner)


def _read_marker(directory: Path) -> tuple[os.stat_result | None, str]:
    try:
        fd = os.open(directory / MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None, ""
    with os.fdopen(fd, "r", errors="replace") as handle:
        st = os.fstat(fd)
        return st, handle.read(65536) if stat.S_ISREG(st.st_mode) else ""


def _remove_env_file(path: Path, owner: Owner) -> None:
    """Unlink an env file of the dead owner's, if it is still that file (first line says so)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    with os.fdopen(fd, "r", errors="replace") as handle:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return
        first = handle.readline().rstrip("\n")
    if first == owner.env_comment():
        path.unlink(missing_ok=True)


def _remove_if_stale(path: Path, euid: int, uids: Collection[int]) -> Owner | None:
    """Remove `path` (and the env files it lists) if it is a stale dir of ours; its owner."""
    dir_st = os.lstat(path)
    if not stat.S_ISDIR(dir_st.st_mode):
        return None
    marker_st, text = _read_marker(path)
    owner = Owner.parse(text) if text else None
    if owner is None or not is_stale(
        dir_st, marker_st, owner, euid=euid, owner_uids=uids, alive=Owner.alive
    ):
        return None
    files = json.loads(text).get("files", [])
    for name in files if isinstance(files, list) else []:
        _remove_env_file(Path(str(name)), owner)
    shutil.rmtree(path, ignore_errors=True)  # never follows links, even inside
    return owner


def remove_stale(parent: Path | None = None, owner_uids: Collection[int] = ()) -> list[Path]:
    """Remove what dead dev stacks left in `parent` (the temporary directory); what went."""
    root = Path(parent or tempfile.gettempdir())
    euid = os.geteuid()
    uids = {euid, *owner_uids}
    removed: list[Path] = []
    try:
        names = sorted(e.name for e in os.scandir(root) if e.name.startswith(PREFIX))
    except OSError:
        return removed
    for name in names:
        path = root / name
        try:
            owner = _remove_if_stale(path, euid, uids)
        except OSError:
            continue  # gone meanwhile, or not ours to read: leave it
        if owner is not None:
            logger.info("devstack.stale_removed", extra={"path": str(path), "pid": owner.pid})
            removed.append(path)
    return removed
