"""`vault-async devstack`: a private env file, nothing secret on stdout, its own file removed."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.processes import pump_lines, stop_process
from vault_async import cli
from vault_async.devstack import DevStack
from vault_async.devstack._envfile import refusal

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STRANGER = 54321  # a uid no process here runs as


def run_cli(
    monkeypatch: pytest.MonkeyPatch, stack: DevStack, argv: list[str],
    while_up: Callable[[], None] = lambda: None,
) -> int:
    """`main(argv)` on the session's running stack; `while_up` runs while it would wait."""

    @contextlib.contextmanager
    def shared(**_: Any) -> Iterator[DevStack]:
        yield stack

    class Event:
        def wait(self) -> None:
            while_up()
            raise KeyboardInterrupt

    monkeypatch.setattr(cli, "DevStack", shared)
    monkeypatch.setattr(cli, "threading", SimpleNamespace(Event=Event))
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # leave pytest's handlers alone
    return cli.main(argv)


def env_lines(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if not line.startswith("#"))


def test_existing_readable_env_file_becomes_private_and_ours(
    devstack: DevStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "dev.env"
    target.write_text("OLD=1\n")
    target.chmod(0o644)
    seen: list[os.stat_result] = []
    code = run_cli(
        monkeypatch, devstack, ["devstack", "--env-file", str(target)],
        while_up=lambda: seen.append(os.lstat(target)),
    )
    assert code == 0
    (st,) = seen
    assert oct(st.st_mode & 0o777) == oct(0o600)
    assert st.st_uid == os.geteuid()


def test_symlink_at_env_file_path_is_not_written_through(
    devstack: DevStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    target = tmp_path / "dev.env"
    target.symlink_to(victim)
    written: list[dict[str, str]] = []

    def look() -> None:
        if target.exists() and not target.is_symlink():
            written.append(env_lines(target))

    code = run_cli(monkeypatch, devstack, ["devstack", "--env-file", str(target)], look)
    assert victim.read_text() == "untouched\n"
    if code == 0:  # replaced the link by a file of its own
        assert written
        assert written[0]["VAULT_TOKEN"] == devstack.root_token
    else:
        assert code == 2


def test_env_file_owned_by_another_user_is_refused(
    devstack: DevStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can make a file owned by another user")
    target = tmp_path / "dev.env"
    target.write_text("THEIRS=1\n")
    os.chown(target, STRANGER, STRANGER)
    code = run_cli(monkeypatch, devstack, ["devstack", "--env-file", str(target)])
    err = capsys.readouterr().err
    assert code == 2
    assert target.read_text() == "THEIRS=1\n"
    assert os.lstat(target).st_uid == STRANGER
    (line,) = err.strip().splitlines()
    assert str(target) in line


def _lstat(mode: int, uid: int) -> os.stat_result:
    return os.stat_result((mode, 1, 1, 1, uid, uid, 0, 0, 0, 0))


def test_refusal_of_another_users_path() -> None:
    path = Path("/srv/dev.env")
    theirs = refusal(path, _lstat(stat.S_IFREG | 0o600, 1000), euid=2000)
    assert theirs is not None
    assert "uid 1000" in theirs
    assert refusal(path, _lstat(stat.S_IFLNK | 0o777, 1000), euid=2000) is not None
    assert refusal(path, _lstat(stat.S_IFDIR | 0o700, 2000), euid=2000) is not None
    assert refusal(path, _lstat(stat.S_IFREG | 0o644, 2000), euid=2000) is None  # replaced
    assert refusal(path, None, euid=2000) is None


def test_env_file_in_a_missing_directory_fails_before_the_stack_starts(
    devstack: DevStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "missing" / "dev.env"
    ran: list[bool] = []
    code = run_cli(
        monkeypatch, devstack, ["devstack", "--env-file", str(target)], lambda: ran.append(True)
    )
    assert code == 2
    assert ran == []
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(target) in line


def test_a_file_put_in_its_place_is_not_removed_at_exit(
    devstack: DevStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "dev.env"
    other = tmp_path / "other"

    def replace() -> None:
        other.write_text("SOMEONE_ELSES=1\n")
        os.replace(other, target)

    assert run_cli(monkeypatch, devstack, ["devstack", "--env-file", str(target)], replace) == 0
    assert target.read_text() == "SOMEONE_ELSES=1\n"


def test_its_own_env_file_is_removed_at_exit(
    devstack: DevStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "dev.env"
    seen: list[dict[str, str]] = []
    code = run_cli(
        monkeypatch, devstack, ["devstack", "--env-file", str(target)],
        while_up=lambda: seen.append(env_lines(target)),
    )
    assert code == 0
    assert seen[0]["VAULT_SECRET_ID"] == devstack.secret_id
    assert not target.exists()
    assert sorted(os.listdir(tmp_path)) == []  # no temporary file left either


def test_migrations_get_a_private_env_file_of_their_own(
    devstack: DevStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`PATH` is the service's environment; `PATH.migrate` the migrations' own AppRole login."""
    target = tmp_path / "dev.env"
    migrate = tmp_path / "dev.env.migrate"
    seen: list[tuple[dict[str, str], dict[str, str], os.stat_result]] = []
    code = run_cli(
        monkeypatch, devstack, ["devstack", "--env-file", str(target)],
        while_up=lambda: seen.append((env_lines(target), env_lines(migrate), os.lstat(migrate))),
    )
    assert code == 0
    ((service, migration, st),) = seen
    assert oct(st.st_mode & 0o777) == oct(0o600)
    assert st.st_uid == os.geteuid()
    assert migration == devstack.migration_env()
    assert service["VAULT_SECRET_ID"] == devstack.secret_id
    assert migration["VAULT_ROLE_ID"] != service["VAULT_ROLE_ID"]
    assert devstack.migrator_login.secret_id not in "".join(service.values())
    assert "VAULT_DB_MIGRATION_ROLE" not in service
    out = capsys.readouterr().out
    assert devstack.migrator_login.secret_id not in out
    assert str(migrate) in out
    assert sorted(os.listdir(tmp_path)) == []  # both removed at exit


def test_migration_env_file_owned_by_another_user_is_refused(
    devstack: DevStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can make a file owned by another user")
    target = tmp_path / "dev.env"
    migrate = tmp_path / "dev.env.migrate"
    migrate.write_text("THEIRS=1\n")
    os.chown(migrate, STRANGER, STRANGER)
    ran: list[bool] = []
    code = run_cli(
        monkeypatch, devstack, ["devstack", "--env-file", str(target)], lambda: ran.append(True)
    )
    assert code == 2
    assert ran == []
    assert migrate.read_text() == "THEIRS=1\n"
    assert not target.exists()
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(migrate) in line


def test_stdout_names_the_env_file_but_shows_no_secret(
    devstack: DevStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "dev.env"
    assert run_cli(monkeypatch, devstack, ["devstack", "--env-file", str(target)]) == 0
    out = capsys.readouterr().out
    assert devstack.root_token not in out
    assert devstack.secret_id not in out
    assert str(target) in out
    assert f"VAULT_ADDR={devstack.vault_addr}" in out
    assert f"VAULT_ROLE_ID={devstack.role_id}" in out


def test_without_env_file_stdout_says_how_to_get_the_secrets(
    devstack: DevStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli(monkeypatch, devstack, ["devstack"]) == 0
    out = capsys.readouterr().out
    assert devstack.root_token not in out
    assert devstack.secret_id not in out
    hints = [line for line in out.splitlines() if "--show-secrets" in line]
    assert len(hints) == 1
    assert "--env-file" in hints[0]


def test_show_secrets_prints_them(
    devstack: DevStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli(monkeypatch, devstack, ["devstack", "--show-secrets"]) == 0
    out = capsys.readouterr().out
    assert f"VAULT_TOKEN={devstack.root_token}" in out
    assert f"VAULT_SECRET_ID={devstack.secret_id}" in out



def test_real_command_keeps_secrets_off_stdout(tmp_path: Path) -> None:
    """The installed entry point, as a user runs it: started, read, stopped by PID."""
    target = tmp_path / "dev.env"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vault_async.cli", "devstack", "--env-file", str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=pump_lines, args=(proc.stdout, lines), daemon=True).start()
    out: list[str] = []
    try:
        while not any("dev stack is up" in line for line in out):
            line = lines.get(timeout=90)
            assert line, f"exited early with code {proc.wait(timeout=30)}"
            out.append(line)
        written = env_lines(target)
    finally:
        stop_process(proc)
    while (line := lines.get(timeout=10)) != "":
        out.append(line)
    stdout = "".join(out)
    assert written["VAULT_TOKEN"]
    assert written["VAULT_SECRET_ID"]
    assert written["VAULT_TOKEN"] not in stdout
    assert written["VAULT_SECRET_ID"] not in stdout
    assert f"VAULT_ADDR={written['VAULT_ADDR']}" in stdout
    assert proc.returncode == 0
    assert not target.exists()
