"""Run deploy/*.sh as the compose file's containers would, against servers on 127.0.0.1.

A fresh PostgreSQL (the dev stack's binaries, superuser ``postgres``) and a bare
``bao server -dev``, stopped by PID. The settings come from docker-compose.yml's environment;
only addresses and the secret_id directories point into the test's own places.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.compose import ROOT, healthcheck_argv, load_compose
from vault_async.devstack._binaries import find_bao, find_pg_bindir
from vault_async.devstack._openbao import OpenBaoServer
from vault_async.devstack._postgres import PostgresCluster
from vault_async.devstack._private import private_temp_dir
from vault_async.devstack._processes import free_port, free_port_pair

DEPLOY = ROOT / "deploy"
COMPOSE = load_compose()
INIT_ENV: dict[str, str] = {
    k: str(v) for k, v in COMPOSE["services"]["vault-init"]["environment"].items()
}
VAULT_ADMIN_PASSWORD = "vault-admin-test-only"


@contextmanager
def fresh_postgres() -> Iterator[PostgresCluster]:
    """A new cluster with nothing in it but the superuser, removed on exit."""
    pg = PostgresCluster(find_pg_bindir(), free_port())
    try:
        pg.init()
        pg.start()
        _wait_accepting(pg)
        yield pg
    finally:
        pg.stop()
        pg.remove()


def _wait_accepting(pg: PostgresCluster, timeout: float = 30) -> None:
    """Until the server takes logins (the port opens while it still starts up)."""
    argv = [str(pg.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(pg.port), "-t", "2"]
    deadline = time.monotonic() + timeout
    while subprocess.run(argv, capture_output=True, timeout=10).returncode != 0:
        assert time.monotonic() < deadline, "PostgreSQL did not accept connections"
        time.sleep(0.1)


def base_env(extra_path: Path) -> dict[str, str]:
    """This process's environment without any server setting, with `extra_path` first on PATH."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PG", "VAULT_", "BAO_"))
    }
    env["PATH"] = f"{extra_path}{os.pathsep}{env.get('PATH', '')}"
    return env


def postgres_env(pg: PostgresCluster) -> dict[str, str]:
    """The postgres container's environment, reaching this cluster over TCP."""
    return base_env(pg.bindir) | {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "POSTGRES_USER": pg.superuser,
        "POSTGRES_PASSWORD": pg.superuser_password,
        "PGPASSWORD": pg.superuser_password,  # set by the image's entrypoint for init scripts
        "VAULT_ADMIN_PASSWORD": VAULT_ADMIN_PASSWORD,
    }


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


def postgres_init(pg: PostgresCluster) -> subprocess.CompletedProcess[str]:
    return run(["/bin/sh", str(DEPLOY / "postgres-init.sh")], postgres_env(pg))


def postgres_healthcheck(pg: PostgresCluster) -> subprocess.CompletedProcess[str]:
    return run(healthcheck_argv(COMPOSE["services"]["postgres"]), postgres_env(pg))


@dataclass
class Deployed:
    """A cluster after postgres-init.sh and a bare OpenBao; vault-init.sh runs on demand."""

    pg: PostgresCluster
    bao: OpenBaoServer
    home: Path
    service_dir: Path
    migrator_dir: Path
    uid: int
    gid: int
    first_run: subprocess.CompletedProcess[str] | None = None

    def vault_init_env(self) -> dict[str, str]:
        return base_env(find_bao().parent) | INIT_ENV | {
            "HOME": str(self.home),
            "BAO_ADDR": self.bao.addr,
            "BAO_TOKEN": self.bao.root_token,
            "PG_HOST": "127.0.0.1",
            "PG_PORT": str(self.pg.port),
            "VAULT_ADMIN_PASSWORD": VAULT_ADMIN_PASSWORD,
            "SECRET_ID_DIR": str(self.service_dir),
            "MIGRATOR_SECRET_ID_DIR": str(self.migrator_dir),
            "APP_UID": str(self.uid),
            "APP_GID": str(self.gid),
        }

    def vault_init(self, **changes: str) -> subprocess.CompletedProcess[str]:
        env = self.vault_init_env() | changes
        return run(["/bin/sh", str(DEPLOY / "vault-init.sh")], env)

    def service_env(self, service: str) -> dict[str, str]:
        """A compose service's environment with this Vault, cluster and secret_id directory."""
        spec = COMPOSE["services"][service]
        env = {k: str(v) for k, v in spec["environment"].items()}
        assert env["VAULT_ADDR"] == "http://openbao:8200"
        env["VAULT_ADDR"] = self.bao.addr
        url = env["DATABASE_URL"]
        env["DATABASE_URL"] = url.replace("//postgres:5432/", f"//127.0.0.1:{self.pg.port}/")
        assert env["DATABASE_URL"] != url
        volume_dirs = {"approle": self.service_dir, "approle-migrator": self.migrator_dir}
        [(volume, target)] = [tuple(v.split(":")[:2]) for v in spec["volumes"]]
        secret_file = Path(env["VAULT_SECRET_ID_FILE"])
        env["VAULT_SECRET_ID_FILE"] = str(
            volume_dirs[volume] / secret_file.relative_to(target)
        )
        return env

    def vault(self, method: str, path: str, token: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method, f"{self.bao.addr}/v1/{path}", json=body, timeout=10,
            headers={"X-Vault-Token": token},
        )


@contextmanager
def deployed_stack() -> Iterator[Deployed]:
    """PostgreSQL after postgres-init.sh and a bare OpenBao; vault-init.sh not run yet."""
    workdir = private_temp_dir("vault-async-deploy-")
    bao = OpenBaoServer(find_bao(), workdir, free_port_pair())
    try:
        bao.spawn()
        with fresh_postgres() as pg:
            init = postgres_init(pg)
            assert init.returncode == 0, init.stderr
            bao.wait_ready()
            dirs = {}
            for name in ("home", "approle", "approle-migrator"):
                dirs[name] = workdir / name
                dirs[name].mkdir(mode=0o755)  # as a fresh named volume: its creator's, 0755
            # As root, hand the files to the image's uid (no such user needed); else to us.
            uid, gid = (
                (int(INIT_ENV["APP_UID"]), int(INIT_ENV["APP_GID"]))
                if os.geteuid() == 0 else (os.getuid(), os.getgid())
            )
            yield Deployed(
                pg, bao, dirs["home"], dirs["approle"], dirs["approle-migrator"], uid, gid
            )
    finally:
        bao.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# (role_id variable, secret_id directory, policy, own database role, the other login's role)
LOGINS = [
    ("APPROLE_ROLE_ID", "service_dir", "app-service", "app", "migrator"),
    ("MIGRATOR_APPROLE_ROLE_ID", "migrator_dir", "app-migrator", "migrator", "app"),
]


def secret_id_file(deployed: Deployed, directory: str) -> Path:
    path: Path = getattr(deployed, directory) / "secret_id"
    return path
