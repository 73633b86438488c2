"""deploy/postgres-init.sh and the postgres healthcheck, run with /bin/sh on a fresh cluster."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.deploy import (
    DEPLOY,
    VAULT_ADMIN_PASSWORD,
    fresh_postgres,
    postgres_env,
    postgres_healthcheck,
    postgres_init,
    run,
)
from vault_async.devstack import DevStack
from vault_async.devstack._postgres import PostgresCluster

pytestmark = pytest.mark.integration

LAYOUT_ROLES = ("app_owner", "app_rw", "vault_admin")


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


async def test_postgres_init_puts_no_password_on_a_command_line(tmp_path: Path) -> None:
    """Any local user reads /proc/<pid>/cmdline: a `psql` first on PATH logs each argv."""
    argv_log = tmp_path / "argv.log"
    shim = tmp_path / "bin" / "psql"
    shim.parent.mkdir()
    with fresh_postgres() as pg:
        shim.write_text(
            "#!/bin/sh\n"
            f"printf '%s\\n' \"$*\" >> {shlex.quote(str(argv_log))}\n"
            f"exec {shlex.quote(str(pg.bindir / 'psql'))} \"$@\"\n"
        )
        shim.chmod(0o700)
        env = postgres_env(pg)
        env["PATH"] = f"{shim.parent}:{env['PATH']}"
        init = run(["/bin/sh", str(DEPLOY / "postgres-init.sh")], env)
        assert init.returncode == 0, init.stderr
        command_lines = argv_log.read_text()
        assert "--dbname" in command_lines  # the shim saw the calls
        assert VAULT_ADMIN_PASSWORD not in command_lines
        conn = await asyncpg.connect(
            host="127.0.0.1", port=pg.port, user="vault_admin", password=VAULT_ADMIN_PASSWORD,
            database="app", timeout=10,
        )
        await conn.close()


@pytest.fixture(scope="module")
def initialised_pg() -> Iterator[PostgresCluster]:
    with fresh_postgres() as pg:
        init = postgres_init(pg)
        assert init.returncode == 0, init.stderr
        yield pg


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
    initialised_pg: PostgresCluster, devstack: DevStack
) -> None:
    """Roles, memberships, ownership and grants equal what the dev stack's set-up makes."""
    conn = await initialised_pg.connect("app")
    try:
        deployed_layout = await _layout(conn)
    finally:
        await conn.close()
    async with devstack.admin_connection("app") as dev:
        dev_layout = await _layout(dev)
    assert [r["rolname"] for r in deployed_layout["roles"]] == sorted(LAYOUT_ROLES)
    assert deployed_layout["database"][0]["owner"] == "app_owner"
    assert deployed_layout == dev_layout


# (role_id variable, secret_id directory, policy, own database role, the other login's role)
