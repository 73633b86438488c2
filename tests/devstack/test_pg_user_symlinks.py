"""Root never follows a path the PostgreSQL user can change.

As root the stack hands PostgreSQL's work directory to another user (default `nobody`). That
user may rename anything inside it, or the directory itself, and leave a symbolic link in its
place: the stack's own file steps there (password file, pg_hba.conf, the log) must not land
where the link points.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vault_async.devstack._binaries import find_pg_bindir
from vault_async.devstack._errors import DevStackError
from vault_async.devstack._postgres import PostgresCluster
from vault_async.devstack._processes import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run commands as the PG user"),
]


def as_pg_user(pg: PostgresCluster, script: str) -> None:
    """Run a shell script as the user PostgreSQL runs as."""
    assert pg.run_as.uid is not None
    assert pg.run_as.gid is not None
    subprocess.run(
        ["/bin/sh", "-c", script], user=pg.run_as.uid, group=pg.run_as.gid, extra_groups=[],
        check=True, timeout=30, capture_output=True,
    )


def swap_for_link(path: Path, target: Path) -> str:
    """The PG user's commands: move `path` aside and put a link to `target` in its place."""
    return f"mv {shlex.quote(str(path))} {shlex.quote(str(path))}.real && " \
        f"ln -s {shlex.quote(str(target))} {shlex.quote(str(path))}"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A directory of root's that the PG user's links point at."""
    target = tmp_path / "victim"
    target.mkdir(mode=0o755)
    return target


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    pg = PostgresCluster(find_pg_bindir(), free_port())
    try:
        yield pg
    finally:
        pg.stop()
        pg.remove()
        real = Path(f"{pg.workdir}.real")
        if real.is_dir() and not real.is_symlink():
            subprocess.run(["rm", "-rf", "--", str(real)], check=False, timeout=30)


def test_data_directory_swapped_after_initdb(
    cluster: PostgresCluster, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = subprocess.run

    def initdb_then_swap(argv: Any, *args: Any, **kwargs: Any) -> Any:
        result = real_run(argv, *args, **kwargs)
        if Path(str(argv[0])).name == "initdb":
            as_pg_user(cluster, swap_for_link(cluster.datadir, victim))
        return result

    monkeypatch.setattr(subprocess, "run", initdb_then_swap)
    with pytest.raises(DevStackError):
        cluster.init()
    assert sorted(p.name for p in victim.iterdir()) == []


def test_work_directory_swapped_before_initdb(
    cluster: PostgresCluster, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = subprocess.run
    seen_while_initdb_ran: list[str] = []

    def recording_run(argv: Any, *args: Any, **kwargs: Any) -> Any:
        seen_while_initdb_ran.extend(p.name for p in victim.iterdir())
        return real_run(argv, *args, **kwargs)

    as_pg_user(cluster, swap_for_link(cluster.workdir, victim))
    monkeypatch.setattr(subprocess, "run", recording_run)
    with pytest.raises(DevStackError):
        cluster.init()
    assert seen_while_initdb_ran == []  # the password file was not written through the link
    assert sorted(p.name for p in victim.iterdir()) == []


def test_work_directory_swapped_before_a_restart(cluster: PostgresCluster, victim: Path) -> None:
    cluster.init()
    cluster.start()
    cluster.stop()
    as_pg_user(cluster, swap_for_link(cluster.workdir, victim))
    with pytest.raises(DevStackError):
        cluster.start(timeout=10)
    assert sorted(p.name for p in victim.iterdir()) == []


def test_log_swapped_for_a_link_before_a_restart(cluster: PostgresCluster, victim: Path) -> None:
    cluster.init()
    cluster.start()
    cluster.stop()
    as_pg_user(cluster, swap_for_link(cluster.log_path, victim / "postgres.log"))
    with pytest.raises(DevStackError):
        cluster.start(timeout=10)
    assert sorted(p.name for p in victim.iterdir()) == []
