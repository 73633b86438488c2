"""As root, PostgreSQL runs as an unprivileged user, who may not reach the venv's binaries."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from vault_async.devstack import DevStack, DevStackError, _stack
from vault_async.devstack._binaries import find_pg_bindir, runnable_copy
from vault_async.devstack._processes import RunAs

STRANGER = 54321  # a uid no process of the stack runs as


def _private_install(into: Path) -> Path:
    """A copy of the PostgreSQL install inside a 0700 directory; returns its bin directory."""
    bindir = find_pg_bindir()
    install, package = bindir.parent, bindir.parent.parent
    into.mkdir(mode=0o700)
    shutil.copytree(install, into / package.name / install.name, symlinks=True)
    for libs in package.parent.glob(f"{package.name}.libs"):
        shutil.copytree(libs, into / libs.name, symlinks=True)
    return into / package.name / install.name / bindir.name


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to another user")
def test_binaries_behind_a_private_directory_are_copied_where_they_run(tmp_path: Path) -> None:
    # A venv inside a 0700 directory (mktemp -d, /root) is out of the unprivileged user's reach.
    hidden = _private_install(tmp_path / "private")
    run_as = RunAs.for_postgres()
    assert not run_as.can_run(hidden / "initdb")

    top, usable = runnable_copy(hidden)
    try:
        assert run_as.can_run(usable / "initdb")
        result = subprocess.run(
            [str(usable / "initdb"), "--version"], user=run_as.uid, group=run_as.gid,
            extra_groups=[], capture_output=True, text=True, timeout=30,
        )
        assert result.returncode == 0, result.stderr  # its vendored libraries were found too
        assert "PostgreSQL" in result.stdout
        # This run's own copy: ours, and nobody else may change a byte of it.
        changeable = [
            str(path) for path in [top, *top.rglob("*")]
            if not path.is_symlink()
            and (path.lstat().st_uid != os.geteuid() or path.lstat().st_mode & 0o022)
        ]
        assert changeable == []
    finally:
        shutil.rmtree(top)


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to another user")
def test_planted_binaries_at_a_shared_path_never_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hidden = _private_install(tmp_path / "private")
    install, package = hidden.parent, hidden.parent.parent
    shared = Path(tempfile.mkdtemp(prefix="vault-async-plant-"))
    try:
        shared.chmod(0o1777)  # like /tmp: any local user may create entries
        monkeypatch.setattr(tempfile, "tempdir", str(shared))
        marker = shared / "planted-binary-ran"
        # What another local user could create in /tmp before the stack starts: the path a
        # shared copy of the install would have, marked complete, holding their own initdb.
        planted = shared / f"vault-async-pg-{os.stat(install).st_ino}"
        planted_bin = planted / package.name / install.name / hidden.name
        planted_bin.mkdir(parents=True)
        for name in ("initdb", "postgres"):
            script = planted_bin / name
            script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
            script.chmod(0o755)
        (planted / ".complete").touch()
        subprocess.run(["chown", "-R", f"{STRANGER}:{STRANGER}", str(planted)], check=True)
        monkeypatch.setattr(_stack, "find_pg_bindir", lambda: hidden)

        error: DevStackError | None = None
        try:
            with DevStack() as stack:
                assert stack.pg_pid > 0
        except DevStackError as exc:
            error = exc
        assert not marker.exists(), "the planted initdb ran"
        assert error is None
        # The stack's own copy of the binaries went away with it.
        assert sorted(os.listdir(shared)) == [planted.name]
    finally:
        shutil.rmtree(shared, ignore_errors=True)
