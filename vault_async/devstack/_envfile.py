"""The dev stack's env file: 0600 by rename, never through a link, removed only while ours.

Its first line is a comment naming the process that wrote it (PID and start time). A file left
by a killed `vault-async devstack` is removed by the next dev stack to start (the work
directory's marker lists it), or replaced when the next one is given the same path; a file
whose writer still runs is refused, so two stacks never share one env file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._errors import EnvFileError
from ._private import replace_private_file
from ._stale import ENV_COMMENT, Owner

_ENV_COMMENT = re.compile(rf"^{re.escape(ENV_COMMENT)} pid=(\d+) start=(\S*): ")


def refusal(path: Path, st: os.stat_result | None, euid: int) -> str | None:
    """Why `path` (its lstat, None when nothing is there) must not be replaced; None if it may."""
    if st is None:
        return None
    if stat.S_ISDIR(st.st_mode):
        return "is a directory; give a file path"
    if st.st_uid != euid:
        return f"belongs to uid {st.st_uid}, not to this user (uid {euid}); choose another path"
    return None


def check_target(path: Path) -> None:
    """Refuse a path in a missing directory, a directory, or anything another user owns."""
    if not path.parent.is_dir():
        raise EnvFileError(path, f"directory {path.parent} does not exist")
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    reason = refusal(path, st, os.geteuid())
    if reason is not None:
        raise EnvFileError(path, reason)
    writer = _writer(path) if st is not None and stat.S_ISREG(st.st_mode) else None
    if writer is not None and writer.pid != os.getpid():
        if writer.alive():
            raise EnvFileError(
                path, f"is the env file of a running dev stack (pid {writer.pid}); "
                "stop it or choose another path",
            )
        path.unlink(missing_ok=True)  # a killed stack's: its secrets are dead, drop them now


def _writer(path: Path) -> Owner | None:
    """The process named on the first line of an env file of ours, if it has that line."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "r", errors="replace") as handle:
        first = handle.readline(512)
    match = _ENV_COMMENT.match(first)
    return Owner(int(match.group(1)), match.group(2)) if match else None


@dataclass(frozen=True, slots=True)
class EnvFile:
    """The file written at `path`, known by its device and inode."""

    path: Path
    device: int
    inode: int

    def remove(self) -> bool:
        """Unlink `path` only if it is still the file written here; True when it was removed."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return False
        if (st.st_dev, st.st_ino) != (self.device, self.inode):
            return False  # someone put another file there: not ours to delete
        self.path.unlink(missing_ok=True)
        return True


def write_env_file(path: Path, env: Mapping[str, str]) -> EnvFile:
    """Write KEY=value lines to a new 0600 file beside `path`, then rename it over `path`.

    Whatever sat at `path` (a file of this user's with wider permissions, a symbolic link) is
    replaced, never written through; a path another user owns is refused.
    """
    check_target(path)
    text = Owner.current().env_comment() + "\n" + "".join(f"{k}={v}\n" for k, v in env.items())
    try:
        written = replace_private_file(path, text)
    except OSError as exc:
        raise EnvFileError(path, exc.strerror or str(exc)) from exc
    return EnvFile(path, written.st_dev, written.st_ino)
