"""As root, PostgreSQL runs as an unprivileged user, who may not reach the venv's binaries."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vault_async.devstack._binaries import find_pg_bindir
from vault_async.devstack._processes import RunAs, world_readable_copy


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to another user")
def test_binaries_behind_a_private_directory_are_copied_where_they_run(tmp_path: Path) -> None:
    # A venv inside a 0700 directory (mktemp -d, /root) is out of the unprivileged user's reach.
    bindir = find_pg_bindir()
    install, package = bindir.parent, bindir.parent.parent
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    shutil.copytree(install, private / package.name / install.name, symlinks=True)
    for libs in package.parent.glob(f"{package.name}.libs"):
        shutil.copytree(libs, private / libs.name, symlinks=True)
    hidden = private / package.name / install.name / bindir.name
    run_as = RunAs.for_postgres()
    assert not run_as.can_run(hidden / "initdb")

    usable = world_readable_copy(hidden)
    assert run_as.can_run(usable / "initdb")
    result = subprocess.run(
        [str(usable / "initdb"), "--version"], user=run_as.uid, group=run_as.gid,
        extra_groups=[], capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr  # its vendored libraries were found too
    assert "PostgreSQL" in result.stdout
