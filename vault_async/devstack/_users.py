"""The system user a dev-stack server runs as (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from ._errors import DevStackError

UNPRIVILEGED_USER_ENV = "VAULT_ASYNC_DEVSTACK_USER"


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

    @property
    def owner_uid(self) -> int:
        """The uid files for this user should belong to."""
        return os.geteuid() if self.uid is None else self.uid

    def give(self, path: Path) -> None:
        """Hand a file or directory to this user (never through a symbolic link)."""
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)

    def give_fd(self, fd: int) -> None:
        """Hand an open file or directory to this user."""
        if self.uid is not None and self.gid is not None:
            os.fchown(fd, self.uid, self.gid)

    def can_run(self, binary: Path) -> bool:
        """True when this user may traverse to and execute `binary` (by the world bits)."""
        if self.uid is None:
            return True
        return all(part.stat().st_mode & stat.S_IXOTH for part in [binary, *binary.parents])
