"""deploy/postgres-init.sh and deploy/vault-init.sh, run with /bin/sh against real servers.

A fresh PostgreSQL (the dev stack's binaries, superuser ``postgres``) and a bare
``bao server -dev``, both on 127.0.0.1 and stopped by PID: what the compose file's init
containers do, outside containers. The settings come from docker-compose.yml's environment;
only the addresses and the secret_id directories point into the test's own places.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.compose import ROOT, healthcheck_argv, load_compose
from vault_async.devstack import DevStack
from vault_async.devstack._binaries import find_bao, find_pg_bindir
from vault_async.devstack._openbao import OpenBaoServer
from vault_async.devstack._postgres import PostgresCluster
from vault_async.devstack._private import private_temp_dir
from vault_async.devstack._processes import free_port, free_port_pair

pytestmark = pytest.mark.integration

DEPLOY = ROOT / "deploy"
COMPOSE = load_compose()
INIT_ENV: dict[str, str] = {
    k: str(v) for k, v in COMPOSE["services"]["vault-init"]["environment"].items()
}
VAULT_ADMIN_PASSWORD = "vault-admin-test-only"
LAYOUT_ROLES = ("app_owner", "app_rw", "vault_admin")


@contextmanager
def fresh_postgres() -> Iterator[PostgresCluster]:
    """A new cluster with nothing in it but the superuser, removed on exit."""
    pg = PostgresCluster(find_pg_bindir(), free_port())
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.stop()
        pg.remove()


def _base_env(extra_path: Path) -> dict[str, str]:
    """This process's environment without any server setting, with `extra_path` first on PATH."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PG", "VAULT_", "BAO_"))
    }
    env["PATH"] = f"{extra_path}{os.pathsep}{env.get('PATH', '')}"
    return env


def postgres_env(pg: PostgresCluster) -> dict[str, str]:
    """The postgres container's environment, reaching this cluster over TCP."""
    return _base_env(pg.bindir) | {
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


def test_postgres_healthcheck_waits_for_the_database_and_roles() -> None:
    """Healthy only once postgres-init.sh has made the database and the roles, not when it
    merely accepts connections: vault-init starts on this health."""
    with fresh_postgres() as pg:
        before = postgres_healthcheck(pg)
        assert before.returncode != 0, "healthy before the database and roles exist"
        init = postgres_init(pg)
        assert init.returncode == 0, init.stderr
        after = postgres_healthcheck(pg)
        assert after.returncode == 0, after.stdout + after.stderr


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

    def vault_init_env(self) -> dict[str, str]:
        return _base_env(find_bao().parent) | INIT_ENV | {
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

    def vault(self, method: str, path: str, token: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method, f"{self.bao.addr}/v1/{path}", json=body, timeout=10,
            headers={"X-Vault-Token": token},
        )


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
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


@pytest.fixture(scope="module")
def initialised(deployed: Deployed) -> Deployed:
    """vault-init.sh has run once."""
    result = deployed.vault_init()
    assert result.returncode == 0, result.stdout + result.stderr
    return deployed


_LAYOUT_SQL = {
    "roles": """
        SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
               rolreplication, rolbypassrls
        FROM pg_roles WHERE rolname = ANY($1::text[]) ORDER BY rolname""",
    "memberships": """
        SELECT r.rolname AS role, m.rolname AS member, g.rolname AS grantor,
               a.admin_option, a.inherit_option, a.set_option
        FROM pg_auth_members a
        JOIN pg_roles r ON r.oid = a.roleid
        JOIN pg_roles m ON m.oid = a.member
        JOIN pg_roles g ON g.oid = a.grantor
        WHERE r.rolname = ANY($1::text[]) AND m.rolname = ANY($1::text[])
        ORDER BY 1, 2""",
    "database": """
        SELECT pg_get_userbyid(datdba) AS owner,
               array(SELECT unnest(datacl::text[]) ORDER BY 1) AS acl
        FROM pg_database WHERE datname = 'app' AND $1::text[] IS NOT NULL""",
    "schema": """
        SELECT pg_get_userbyid(nspowner) AS owner,
               array(SELECT unnest(nspacl::text[]) ORDER BY 1) AS acl
        FROM pg_namespace WHERE nspname = 'public' AND $1::text[] IS NOT NULL""",
    "default_privileges": """
        SELECT pg_get_userbyid(defaclrole) AS role, defaclnamespace::regnamespace::text AS ns,
               defaclobjtype, array(SELECT unnest(defaclacl::text[]) ORDER BY 1) AS acl
        FROM pg_default_acl WHERE $1::text[] IS NOT NULL ORDER BY 1, 2, 3""",
}


async def _layout(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [dict(row) for row in await conn.fetch(sql, list(LAYOUT_ROLES))]
        for name, sql in _LAYOUT_SQL.items()
    }


async def test_postgres_init_makes_the_dev_stack_layout(
    deployed: Deployed, devstack: DevStack
) -> None:
    """Roles, memberships, ownership and grants equal what the dev stack's set-up makes."""
    conn = await deployed.pg.connect("app")
    try:
        deployed_layout = await _layout(conn)
    finally:
        await conn.close()
    async with devstack.admin_connection("app") as dev:
        dev_layout = await _layout(dev)
    assert [r["rolname"] for r in deployed_layout["roles"]] == sorted(LAYOUT_ROLES)
    assert deployed_layout["database"][0]["owner"] == "app_owner"
    assert deployed_layout == dev_layout
