"""Files and directories only their owner can read, private from the moment they exist."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

from ._errors import DevStackError
from ._users import RunAs

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# `dir_fd`: when given, `path` is a name inside that open directory, and nothing on the way to
# it is looked up again: the way root works inside a directory another user owns.


def private_temp_dir(prefix: str, owner: RunAs | None = None) -> Path:
    """A new directory in the temporary directory, created 0700, then handed to `owner`."""
    path, fd = open_private_temp_dir(prefix, owner)
    os.close(fd)
    return path


def open_private_temp_dir(prefix: str, owner: RunAs | None = None) -> tuple[Path, int]:
    """Like `private_temp_dir`, with a descriptor of the directory opened before it is handed on.

    Once `owner` owns it, that user may rename it and leave a symbolic link at its path: the
    descriptor still names the directory this process created.
    """
    from ._stale import mark_owned

    path = Path(tempfile.mkdtemp(prefix=prefix))  # mkdtemp creates it 0700 in one step
    try:
        fd = os.open(path, _DIRECTORY)
        try:
            mark_owned(path)  # who uses it: a later start removes it once that process is gone
            (owner or RunAs()).give_fd(fd)
        except BaseException:
            os.close(fd)
            raise
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path, fd


def open_owned_dir(name: str, dir_fd: int, owner_uid: int) -> int:
    """Open the directory `name` inside `dir_fd`, refusing a symbolic link or another owner."""
    try:
        fd = os.open(name, _DIRECTORY, dir_fd=dir_fd)
    except OSError as exc:
        raise DevStackError(f"open the directory {name}", str(exc)) from exc
    if os.fstat(fd).st_uid != owner_uid:
        os.close(fd)
        raise DevStackError(f"open the directory {name}", f"it is not owned by uid {owner_uid}")
    return fd


def same_directory(path: Path, dir_fd: int) -> bool:
    """True when `path` (not followed) is still the directory open as `dir_fd`."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    fst = os.fstat(dir_fd)
    return stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def make_private_dir(path: Path, owner: RunAs | None = None) -> None:
    """Create `path` 0700 (failing if anything is there already), owned by `owner`."""
    os.mkdir(path, 0o700)
    fd = os.open(path, _DIRECTORY)
    try:
        os.fchmod(fd, 0o700)  # exactly 0700, whatever the umask
        (owner or RunAs()).give_fd(fd)
    finally:
        os.close(fd)


def create_private_file(
    path: Path | str, owner: RunAs | None = None, *, dir_fd: int | None = None
) -> int:
    """Create `path` 0600 in one step and return it open for writing.

    Anything already at `path` (a file, a symbolic link) makes it fail: nothing is followed,
    nothing another user prepared is reused.
    """
    fd = os.open(path, _NEW_FILE, 0o600, dir_fd=dir_fd)
    try:
        os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
        (owner or RunAs()).give_fd(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private_file(
    path: Path | str, text: str, owner: RunAs | None = None, *, dir_fd: int | None = None
) -> os.stat_result:
    """Write `text` to a new file at `path` that only `owner` (default: this user) can read.

    Returns the new file's status (its device and inode name it from then on).
    """
    with os.fdopen(create_private_file(path, owner, dir_fd=dir_fd), "w") as handle:
        handle.write(text)
        handle.flush()
        return os.fstat(handle.fileno())


def replace_private_file(
    path: Path | str, text: str, owner: RunAs | None = None, *, dir_fd: int | None = None
) -> os.stat_result:
    """Write `text` to a new private file beside `path`, then rename it over `path`.

    Whatever sat at `path`, a symbolic link included, is replaced, never written through.
    Returns the new file's status.
    """
    path = Path(path)
    staged = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    written = write_private_file(staged, text, owner, dir_fd=dir_fd)
    try:
        os.replace(staged, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged, dir_fd=dir_fd)
        raise
    return written


def open_private_log(path: Path | str, *, dir_fd: int | None = None) -> int:
    """Open a log for appending: created 0600, or reopened only if it is this user's and private.

    A reopened log must have a single name: a hard link another user made to a file of this
    user's is refused, not appended to.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600, dir_fd=dir_fd)
    st = os.fstat(fd)
    if (
        not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077
        or st.st_nlink != 1
    ):
        os.close(fd)
        raise DevStackError(
            "open a log file", f"{path} is not a private regular file of this user"
        )
    os.fchmod(fd, 0o600)
    return fd


def read_text_nofollow(path: Path | str, *, dir_fd: int | None = None) -> str:
    """The text of a regular file at `path`, refusing a symbolic link, a FIFO or a device."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    with os.fdopen(fd, "r", errors="replace") as handle:
        return handle.read()
