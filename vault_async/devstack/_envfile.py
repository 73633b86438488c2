"""The dev stack's env file: 0600 by rename, never through a link, removed only while ours."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._errors import EnvFileError


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
    try:
        # mkstemp: O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, in the target's own directory.
        fd, staged = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise EnvFileError(path, exc.strerror or str(exc)) from exc
    try:
        with os.fdopen(fd, "w") as handle:
            handle.writelines(f"{key}={value}\n" for key, value in env.items())
            handle.flush()
            st = os.fstat(handle.fileno())
        os.replace(staged, path)
    except OSError as exc:
        _discard(staged)
        raise EnvFileError(path, exc.strerror or str(exc)) from exc
    except BaseException:
        _discard(staged)
        raise
    return EnvFile(path, st.st_dev, st.st_ino)


def _discard(staged: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(staged)
