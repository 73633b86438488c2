"""Secret files of the dev stack are private from the moment they exist, not only afterwards.

An audit hook (`sys.addaudithook`) inspects the stack's temporary tree at every file-system
step this process takes while the stack starts (open, chmod, chown, mkdir, rename, spawn):
what a local reader racing the stack could have seen between two steps is what it records.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vault_async.devstack import DevStack
from vault_async.devstack._processes import RunAs, log_tail

pytestmark = pytest.mark.integration

# A uid no process of the stack runs as: a stranger on the same machine.
STRANGER_UID = 54321

_STEPS = frozenset({
    "open", "os.chmod", "os.chown", "os.mkdir", "os.rename", "os.remove", "os.link",
    "os.symlink", "subprocess.Popen", "tempfile.mkdtemp", "tempfile.mkstemp",
})


def is_secret_file(name: str) -> bool:
    """Files the stack writes that hold (or may hold) a secret: the password file, the logs."""
    return name == "pwfile" or name.endswith(".log")


def private_problems(path: Path, base: Path, owners: set[int]) -> list[str]:
    """What is wrong with a secret file and each directory between it and `base`."""
    problems: list[str] = []
    st = os.lstat(path)
    where = path.relative_to(base)
    if not stat.S_ISREG(st.st_mode):
        problems.append(f"{where}: not a regular file")
    if st.st_mode & 0o077:
        problems.append(f"{where}: mode {stat.S_IMODE(st.st_mode):04o}")
    if st.st_uid not in owners:
        problems.append(f"{where}: owned by uid {st.st_uid}")
    for parent in path.parents:
        if parent == base:
            break
        pst = os.lstat(parent)
        if not stat.S_ISDIR(pst.st_mode) or pst.st_mode & 0o077 or pst.st_uid not in owners:
            problems.append(
                f"{parent.relative_to(base)}/: mode {stat.S_IMODE(pst.st_mode):04o} "
                f"uid {pst.st_uid}"
            )
    return problems


@dataclass
class Recorder:
    """Problems seen at each audited step, and which secret files it saw at all."""

    base: Path
    owners: set[int]
    problems: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    _busy: threading.local = field(default_factory=threading.local)

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if event not in _STEPS or getattr(self._busy, "on", False):
            return
        self._busy.on = True
        try:
            self.scan()
        finally:
            self._busy.on = False

    def scan(self) -> None:
        for dirpath, dirnames, filenames in os.walk(self.base):
            if "pgdata" in dirnames:
                dirnames.remove("pgdata")  # PostgreSQL keeps its data directory 0700 itself
            for name in filenames:
                if not is_secret_file(name):
                    continue
                path = Path(dirpath, name)
                try:
                    self.problems.update(private_problems(path, self.base, self.owners))
                except (OSError, ValueError):
                    continue  # removed meanwhile
                self.seen.add(name)


_active: Recorder | None = None


def _hook(event: str, args: tuple[object, ...]) -> None:
    recorder = _active
    if recorder is not None:
        recorder(event, args)


sys.addaudithook(_hook)


def allowed_owners() -> set[int]:
    """This user, and the user PostgreSQL runs as when that is another one."""
    pg_uid = RunAs.for_postgres().uid
    return {os.geteuid()} | ({pg_uid} if pg_uid is not None else set())


@dataclass
class Observed:
    stack: DevStack
    base: Path
    recorder: Recorder


@pytest.fixture(scope="module")
def observed() -> Iterator[Observed]:
    """A real dev stack started under the recorder, its temporary files inside `base`."""
    global _active
    # A directory like /tmp (any user may create entries) that holds only this stack's files.
    base = Path(tempfile.mkdtemp(prefix="vault-async-filesec-"))
    base.chmod(0o1777)
    patch = pytest.MonkeyPatch()
    patch.setattr(tempfile, "tempdir", str(base))
    recorder = Recorder(base, allowed_owners())
    try:
        _active = recorder
        with DevStack() as stack:
            _active = None
            yield Observed(stack, base, recorder)
    finally:
        _active = None
        patch.undo()
        shutil.rmtree(base, ignore_errors=True)


def test_password_file_is_private_from_creation(observed: Observed) -> None:
    assert "pwfile" in observed.recorder.seen  # the check did look at it
    assert sorted(p for p in observed.recorder.problems if "pwfile" in p) == []
    assert sorted(p for p in observed.recorder.problems if p.endswith("/")) == []


def test_logs_are_private_from_creation(observed: Observed) -> None:
    assert {"openbao.log", "postgres.log"} <= observed.recorder.seen
    assert sorted(observed.recorder.problems) == []


def _secret_holders(observed: Observed) -> dict[Path, list[str]]:
    stack = observed.stack
    secrets = {
        "root token": stack.root_token,
        "superuser password": stack.pg_superuser_password,
        "secret_id": stack.secret_id,
    }
    found: dict[Path, list[str]] = {}
    for dirpath, _, filenames in os.walk(observed.base):
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            held = [what for what, value in secrets.items() if value.encode() in data]
            if held or name.endswith(".log"):
                found[path] = held
    return found


def test_files_holding_secrets_are_private_at_rest(observed: Observed) -> None:
    holders = _secret_holders(observed)
    assert any("root token" in held for held in holders.values())  # OpenBao's log prints it
    problems = [
        problem
        for path in holders
        for problem in private_problems(path, observed.base, observed.recorder.owners)
    ]
    assert problems == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can read as other users")
def test_other_users_cannot_read_any_secret(observed: Observed) -> None:
    pg = RunAs.for_postgres()
    readers = {"a stranger": STRANGER_UID, "the PostgreSQL user": pg.uid}
    readable: list[str] = []
    for path, held in _secret_holders(observed).items():
        for who, uid in readers.items():
            if uid == pg.uid and not {"root token", "secret_id"} & set(held):
                continue  # PostgreSQL's own files are its user's to read
            result = subprocess.run(
                ["cat", str(path)], user=uid, group=uid, extra_groups=[],
                capture_output=True, timeout=10,
            )
            if result.returncode == 0:
                readable.append(f"{who} read {path.relative_to(observed.base)}")
    assert readable == []


def test_log_tail_does_not_block_on_a_fifo_put_in_place_of_a_log(tmp_path: Path) -> None:
    # PostgreSQL's log sits in a directory its user owns: that user may swap in a FIFO.
    fifo = tmp_path / "postgres.log"
    os.mkfifo(fifo)
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(log_tail(fifo)), daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "reading the log blocked on a FIFO"
    assert result == [""]
