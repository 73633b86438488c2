"""Files and directories only their owner can read, private from the moment they exist."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

from ._errors import DevStackError
from ._users import RunAs

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def private_temp_dir(prefix: str, owner: RunAs | None = None) -> Path:
    """A new directory in the temporary directory, created 0700, then handed to `owner`."""
    from ._stale import mark_owned

    path = Path(tempfile.mkdtemp(prefix=prefix))  # mkdtemp creates it 0700 in one step
    try:
        mark_owned(path)  # who uses it: a later start removes it once that process is gone
        (owner or RunAs()).give(path)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path


def make_private_dir(path: Path, owner: RunAs | None = None) -> None:
    """Create `path` 0700 (failing if anything is there already), owned by `owner`."""
    os.mkdir(path, 0o700)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, 0o700)  # exactly 0700, whatever the umask
        (owner or RunAs()).give_fd(fd)
    finally:
        os.close(fd)


def create_private_file(path: Path, owner: RunAs | None = None) -> int:
    """Create `path` 0600 in one step and return it open for writing.

    Anything already at `path` (a file, a symbolic link) makes it fail: nothing is followed,
    nothing another user prepared is reused.
    """
    fd = os.open(path, _NEW_FILE, 0o600)
    try:
        os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
        (owner or RunAs()).give_fd(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private_file(path: Path, text: str, owner: RunAs | None = None) -> None:
    """Write `text` to a new file at `path` that only `owner` (default: this user) can read."""
    with os.fdopen(create_private_file(path, owner), "w") as handle:
        handle.write(text)


def replace_private_file(path: Path, text: str, owner: RunAs | None = None) -> None:
    """Write `text` to a new private file beside `path`, then rename it over `path`."""
    staged = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    write_private_file(staged, text, owner)
    try:
        os.replace(staged, path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def open_private_log(path: Path) -> int:
    """Open a log for appending: created 0600, or reopened only if it is this user's and private."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        raise DevStackError(
            "open a log file", f"{path} is not a private regular file of this user"
        )
    os.fchmod(fd, 0o600)
    return fd


def read_text_nofollow(path: Path) -> str:
    """The text of a regular file at `path`, refusing a symbolic link, a FIFO or a device."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    with os.fdopen(fd, "r", errors="replace") as handle:
        return handle.read()
