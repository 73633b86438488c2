"""A throw-away PostgreSQL cluster with scram-sha-256 password authentication on 127.0.0.1.

As root, PostgreSQL runs as another user (default `nobody`) that owns the cluster's work
directory: that user may rename anything in it, or the directory itself, and leave a
symbolic link behind. So this process never looks up a path inside it again: it keeps the
work directory open from before handing it over, and creates, replaces and removes its
files (password file, pg_hba.conf, postgres.log) by name relative to that descriptor (or to
one of `pgdata` opened without following links and checked to be that user's). Only the
servers, running as that user, are given paths.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

import asyncpg

from ._binaries import runnable_copy
from ._environ import child_environ
from ._errors import DevStackError
from ._private import (
    open_owned_dir,
    open_private_temp_dir,
    replace_private_file,
    same_directory,
    write_private_file,
)
from ._processes import RunAs, ServerProcess, port_accepts

SUPERUSER = "postgres"

# Settings for a disposable cluster: fast to start, nothing to keep.
_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "200",
    "password_encryption": "scram-sha-256",
    "log_min_messages": "warning",
}


class PostgresCluster:
    """initdb + postgres as an unprivileged user when we are root; stopped by PID."""

    def __init__(self, bindir: Path, port: int) -> None:
        self.run_as = RunAs.for_postgres()
        # A directory of its own, 0700 and owned by the user PostgreSQL runs as: nothing of the
        # stack's other files (OpenBao's token) needs opening up for that user to reach it.
        self.workdir, self._workdir_fd = open_private_temp_dir(
            "vault-async-devstack-pg-", self.run_as
        )
        self.bindir = bindir
        self.datadir = self.workdir / "pgdata"
        self.log_path = self.workdir / "postgres.log"
        self.port = port
        self.superuser = SUPERUSER
        self.superuser_password = secrets.token_urlsafe(24)
        self.process: ServerProcess | None = None
        self._binaries_copy: Path | None = None

    def init(self) -> None:
        """Run initdb with scram-sha-256 for every host and local connection."""
        if not self.run_as.can_run(self.bindir / "postgres"):
            self._binaries_copy, self.bindir = runnable_copy(self.bindir)
        self._check_workdir("run initdb")
        pwfile = self.workdir / "pwfile"
        write_private_file(
            pwfile.name, self.superuser_password + "\n", self.run_as, dir_fd=self._workdir_fd
        )
        argv = [
            str(self.bindir / "initdb"),
            "-D", str(self.datadir),
            "-U", self.superuser,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ]
        try:
            result = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=120,
                user=self.run_as.uid,
                group=self.run_as.gid,
                extra_groups=[] if self.run_as.uid is not None else None,
                cwd=self.workdir,
                env=child_environ(self.workdir, bindir=self.bindir),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DevStackError("initdb", str(exc)) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pwfile.name, dir_fd=self._workdir_fd)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise DevStackError("initdb", f"exited with code {result.returncode}", tail)
        datadir_fd = open_owned_dir(self.datadir.name, self._workdir_fd, self.run_as.owner_uid)
        try:
            replace_private_file(
                "pg_hba.conf",
                "# written by vault_async.devstack: passwords only, loopback only\n"
                "host all all 127.0.0.1/32 scram-sha-256\n",
                self.run_as,
                dir_fd=datadir_fd,
            )
        finally:
            os.close(datadir_fd)

    def _check_workdir(self, step: str) -> None:
        """Fail clearly when the work directory's path no longer leads to the directory made."""
        if self._workdir_fd < 0 or not same_directory(self.workdir, self._workdir_fd):
            raise DevStackError(step, f"{self.workdir} is no longer the cluster's work directory")

    def start(self, timeout: float = 30.0) -> None:
        """Start the postmaster and wait until it accepts TCP connections."""
        self._check_workdir("start PostgreSQL")
        argv = [str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port)]
        for key, value in _SERVER_SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        env = child_environ(self.workdir, bindir=self.bindir)
        self.process = ServerProcess(
            "postgres", argv, self.log_path, run_as=self.run_as, env=env,
            stop_signal=signal.SIGINT,  # fast shutdown: roll back sessions, exit
            log_dir_fd=self._workdir_fd,
        )
        self.process.wait_until(
            lambda: port_accepts(self.port), timeout=timeout, step="start PostgreSQL"
        )

    async def connect(self, database: str, timeout: float = 10.0) -> asyncpg.Connection:  # noqa: ASYNC109
        """A superuser connection over TCP on 127.0.0.1."""
        return await asyncpg.connect(
            host="127.0.0.1", port=self.port, user=self.superuser,
            password=self.superuser_password, database=database, timeout=timeout,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def remove(self) -> None:
        """Delete the data directory and this run's copy of the binaries. Safe to call twice."""
        if self._workdir_fd >= 0:
            self.stop()
            self.process = None  # its log is named through the descriptor closed below
            if same_directory(self.workdir, self._workdir_fd):
                shutil.rmtree(self.workdir, ignore_errors=True)
            os.close(self._workdir_fd)
            self._workdir_fd = -1
        if self._binaries_copy is not None:
            shutil.rmtree(self._binaries_copy, ignore_errors=True)

    def restart(self) -> None:
        """Fast shutdown, then start again on the same port and data."""
        self.stop()
        self.start()
