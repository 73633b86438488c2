"""What a SIGKILLed dev stack left behind goes on the next start; nothing else does."""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from tests.devstack.test_lifecycle import wait_gone
from tests.support.processes import pump_lines
from vault_async.devstack import DevStack
from vault_async.devstack._envfile import check_target
from vault_async.devstack._errors import EnvFileError
from vault_async.devstack._stale import (
    MARKER,
    Owner,
    is_stale,
    mark_owned,
    process_start,
    remove_stale,
)

ROOT = Path(__file__).resolve().parents[2]
STRANGER = 54321  # a uid no process here runs as
EUID = 1000
PG_UID = 65534


def _st(mode: int, uid: int) -> os.stat_result:
    return os.stat_result((mode, 1, 1, 1, uid, uid, 0, 0, 0, 0))


DIR = _st(stat.S_IFDIR | 0o700, EUID)
MARK = _st(stat.S_IFREG | 0o600, EUID)
DEAD = Owner(pid=4242, start="99")


def _decide(
    dir_st: os.stat_result = DIR, marker_st: os.stat_result | None = MARK,
    owner: Owner | None = DEAD, alive: bool = False,
) -> bool:
    return is_stale(
        dir_st, marker_st, owner, euid=EUID, owner_uids={EUID, PG_UID},
        alive=lambda _: alive,
    )


def test_decision_removes_only_our_marked_directories_whose_owner_is_gone() -> None:
    assert _decide() is True
    assert _decide(dir_st=_st(stat.S_IFDIR | 0o700, PG_UID)) is True  # PostgreSQL's own
    assert _decide(alive=True) is False  # still in use
    assert _decide(dir_st=_st(stat.S_IFLNK | 0o777, EUID)) is False  # a symbolic link
    assert _decide(dir_st=_st(stat.S_IFDIR | 0o700, STRANGER)) is False  # another user's
    assert _decide(marker_st=None, owner=None) is False  # no marker: not provably ours
    assert _decide(marker_st=_st(stat.S_IFREG | 0o600, PG_UID)) is False  # marker not by us
    assert _decide(marker_st=_st(stat.S_IFLNK | 0o777, EUID)) is False
    assert _decide(marker_st=_st(stat.S_IFREG | 0o666, EUID)) is False  # others could write
    assert _decide(owner=None) is False  # unreadable marker


def test_owner_of_this_process_is_alive_and_a_reused_pid_is_not() -> None:
    me = Owner.current()
    assert me.pid == os.getpid()
    assert me.alive()
    assert not Owner(pid=os.getpid(), start=str(int(me.start or "0") + 1)).alive()
    assert Owner.parse(me.dump()) == me
    assert Owner.parse("not json") is None
    assert process_start(2**22 + 12345) is None  # beyond pid_max: no such process


def _dead_owner() -> Owner:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    start = process_start(child.pid)
    child.wait(timeout=30)
    return Owner(pid=child.pid, start=start or "")


def _marked_dir(parent: Path, name: str, owner: Owner) -> Path:
    path = parent / name
    path.mkdir(mode=0o700)
    mark_owned(path, owner)
    (path / "data").write_text("x")
    return path


def test_remove_stale_keeps_live_foreign_linked_and_unmarked(tmp_path: Path) -> None:
    dead, me = _dead_owner(), Owner.current()
    stale = _marked_dir(tmp_path, "vault-async-devstack-stale", dead)
    live = _marked_dir(tmp_path, "vault-async-devstack-live", me)
    unmarked = tmp_path / "vault-async-devstack-unmarked"
    unmarked.mkdir()
    other_name = _marked_dir(tmp_path, "somebody-else-stale", dead)
    target = _marked_dir(tmp_path, "target", dead)
    link = tmp_path / "vault-async-devstack-link"
    link.symlink_to(target)
    removed = remove_stale(tmp_path)
    assert removed == [stale]
    assert not stale.exists()
    for kept in (live, unmarked, other_name, target):
        assert kept.is_dir(), kept
    assert link.is_symlink()
    assert (target / "data").read_text() == "x"


def test_remove_stale_leaves_another_users_directory(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can make a directory owned by another user")
    theirs = _marked_dir(tmp_path, "vault-async-devstack-theirs", _dead_owner())
    os.chown(theirs, STRANGER, STRANGER)
    assert remove_stale(tmp_path) == []
    assert (theirs / "data").exists()


def test_env_file_of_a_stale_stack_goes_with_its_directory(tmp_path: Path) -> None:
    dead = _dead_owner()
    workdir = _marked_dir(tmp_path, "vault-async-devstack-envs", dead)
    ours, replaced = tmp_path / "dev.env", tmp_path / "other.env"
    ours.write_text(f"{dead.env_comment()}\nVAULT_TOKEN=x\n")
    replaced.write_text("# someone else's\nA=1\n")
    mark_owned(workdir, dead, files=[ours, replaced])
    assert remove_stale(tmp_path) == [workdir]
    assert not ours.exists()
    assert replaced.read_text() == "# someone else's\nA=1\n"



@pytest.mark.integration
def test_sigkilled_cli_leaves_nothing_after_the_next_start(tmp_path: Path) -> None:
    """`vault-async devstack --env-file` killed with SIGKILL; a new dev stack cleans up after it."""
    env_file = tmp_path / "dev.env"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vault_async.cli", "devstack", "--env-file", str(env_file)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=pump_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        while "dev stack is up" not in (line := lines.get(timeout=90)):
            assert line, f"exited early with code {proc.wait(timeout=30)}"
        children = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
                    .read_text().split()]
        left = [
            Path(e.path) for e in os.scandir(tempfile.gettempdir())
            if e.name.startswith("vault-async-devstack-") and _owned_by(Path(e.path), proc.pid)
        ]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert wait_gone(children) == []
    assert len(left) >= 2, left  # OpenBao's and PostgreSQL's directories
    assert all(path.exists() for path in left)
    assert env_file.exists()
    with DevStack() as stack:
        assert stack.workdir is not None
        assert stack.workdir.is_dir()
        assert [path for path in left if path.exists()] == []
        assert not env_file.exists()


def _owned_by(path: Path, pid: int) -> bool:
    try:
        return json.loads((path / MARKER).read_text())["pid"] == pid
    except (OSError, ValueError, KeyError):
        return False


def test_env_file_of_a_killed_stack_is_dropped_before_the_next_start(tmp_path: Path) -> None:
    target = tmp_path / "dev.env"
    target.write_text(f"{_dead_owner().env_comment()}\nVAULT_TOKEN=old\n")
    check_target(target)
    assert not target.exists()


def test_env_file_of_a_running_stack_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "dev.env"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = process_start(child.pid)
        assert start
        target.write_text(f"{Owner(child.pid, start).env_comment()}\nVAULT_TOKEN=live\n")
        with pytest.raises(EnvFileError, match=f"pid {child.pid}"):
            check_target(target)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert "VAULT_TOKEN=live" in target.read_text()
