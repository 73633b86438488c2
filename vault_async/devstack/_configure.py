"""Configure PostgreSQL and OpenBao the way an operator would for a service on dynamic credentials.

PostgreSQL:
- `app_owner` (NOLOGIN) owns the `app` database's schema; migrations `SET ROLE` to it.
- `app_rw` (NOLOGIN) is the group that dynamic users join; `app_owner`'s default privileges
  grant it read/write on every table and sequence migrations create, and nothing more.
- `vault_admin` is the login Vault uses: CREATEROLE, with ADMIN on the two groups above and on
  the static login user `app_static`, but neither superuser nor a member that inherits rights.

OpenBao:
- `database/`: connection `app`; dynamic roles `app` (joins app_rw) and `migrator` (may
  `SET ROLE app_owner`); static role `app-static` bound to `app_static`.
- Policies `app-service` (role `app`, `app-static`), `app-migrator` (role `migrator`): each
  reads its roles' credentials and renews/revokes those roles' leases only (`_policies`);
  `app-examples`: KV, transit, unwrapping. One AppRole per policy, none with `default`:
  `app` (the service), `app-migrator` (migrations), `app-examples` (the client's examples).
  The service's token lives 5 min unless renewed (`SERVICE_TOKEN_TTL`), the others' 1 h.
- KV v2 at `secret/`, transit at `transit/` with key `app`.

All of it can be made inside an OpenBao namespace instead (`_namespace`): the same calls,
sent with the namespace header.
"""

from __future__ import annotations

import asyncio
import secrets
import textwrap
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg

from ._errors import DevStackError
from ._namespace import AdminApi
from ._policies import grant_dynamic_role, service_policy
from ._postgres import PostgresCluster

T = TypeVar("T")

DATABASE = "app"
OWNER_ROLE = "app_owner"
GROUP_ROLE = "app_rw"
VAULT_ADMIN = "vault_admin"
STATIC_USER = "app_static"
DB_MOUNT = "database"
DB_CONNECTION = "app"
DYNAMIC_ROLE = "app"
MIGRATOR_ROLE = "migrator"
STATIC_ROLE = "app-static"
KV_MOUNT = "secret"
TRANSIT_MOUNT = "transit"
TRANSIT_KEY = "app"
APPROLE_MOUNT = "approle"
APPROLE_ROLE = "app"
MIGRATOR_APPROLE_ROLE = "app-migrator"
EXAMPLES_APPROLE_ROLE = "app-examples"
POLICY = "app-service"
MIGRATOR_POLICY = "app-migrator"
EXAMPLES_POLICY = "app-examples"
# The service's token, renewed by its lease engine while it runs. Its database leases are
# children of it: a replica killed without revoking them loses its login when the token
# expires, so this TTL (not the lease's) bounds how long a crashed replica's login lives.
SERVICE_TOKEN_TTL = "5m"

# The service's own roles only: its dynamic role and its static role, and the token itself.
POLICY_HCL = service_policy(DB_MOUNT, [DYNAMIC_ROLE], [STATIC_ROLE])
# Migrations: the owner-level role.
MIGRATOR_POLICY_HCL = service_policy(DB_MOUNT, [MIGRATOR_ROLE])
# KV, transit and unwrapping, for the client's examples; the service uses none of them.
EXAMPLES_POLICY_HCL = textwrap.dedent(
    f"""
    path "{KV_MOUNT}/*" {{ capabilities = ["create", "read", "update", "patch", "delete", "list"] }}
    path "{TRANSIT_MOUNT}/encrypt/*" {{ capabilities = ["update"] }}
    path "{TRANSIT_MOUNT}/decrypt/*" {{ capabilities = ["update"] }}
    path "{TRANSIT_MOUNT}/rewrap/*" {{ capabilities = ["update"] }}
    path "{TRANSIT_MOUNT}/datakey/*" {{ capabilities = ["update"] }}
    path "sys/wrapping/unwrap" {{ capabilities = ["update"] }}
    """
)


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop in a worker thread.

    The dev stack is a synchronous context manager that may be entered while an event loop is
    already running in this thread (pytest, an application's start-up), so it never uses it.
    """

    async def main() -> T:
        return await factory()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def dynamic_creation_statements(group: str) -> list[str]:
    """SQL Vault runs to create a dynamic user that joins `group` and expires with its lease."""
    return [
        'CREATE ROLE "{{name}}" WITH LOGIN PASSWORD \'{{password}}\' '
        f"VALID UNTIL '{{{{expiration}}}}' IN ROLE {_quote_ident(group)};"
    ]


REVOCATION_STATEMENTS = ['DROP ROLE IF EXISTS "{{name}}";']


@dataclass(frozen=True, slots=True)
class AppRoleCredentials:
    role_id: str
    secret_id: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class DevLogins:
    """The dev stack's AppRole logins: one per job, each with its own policy only."""

    service: AppRoleCredentials
    migrator: AppRoleCredentials
    examples: AppRoleCredentials


@dataclass(frozen=True, slots=True)
class DevNamespace:
    """A namespace `DevStack.add_namespace` configured: its path and its AppRole logins."""

    path: str
    logins: DevLogins


async def _connect(pg: PostgresCluster, database: str) -> asyncpg.Connection:
    """Connect as the superuser, retrying while the server is still starting up."""
    last: Exception | None = None
    for _ in range(100):
        try:
            return await pg.connect(database, timeout=5)
        except (OSError, asyncpg.CannotConnectNowError) as exc:
            last = exc
            await asyncio.sleep(0.1)
    raise DevStackError("connect to PostgreSQL", repr(last))


async def _configure_postgres(pg: PostgresCluster, vault_admin_password: str) -> None:
    conn = await _connect(pg, "postgres")
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
        # PostgreSQL 16+ lets us grant ADMIN without the member inheriting the role's rights.
        admin = "WITH ADMIN TRUE, INHERIT FALSE, SET FALSE" if major >= 16 else "WITH ADMIN OPTION"
        static_password = secrets.token_urlsafe(24)
        await conn.execute(f"CREATE ROLE {OWNER_ROLE} NOLOGIN")
        await conn.execute(f"CREATE ROLE {GROUP_ROLE} NOLOGIN")
        await conn.execute(
            f"CREATE ROLE {VAULT_ADMIN} LOGIN CREATEROLE PASSWORD $pw${vault_admin_password}$pw$"
        )
        await conn.execute(
            f"CREATE ROLE {STATIC_USER} LOGIN PASSWORD $pw${static_password}$pw$ "
            f"IN ROLE {GROUP_ROLE}"
        )
        for role in (OWNER_ROLE, GROUP_ROLE, STATIC_USER):
            await conn.execute(f"GRANT {role} TO {VAULT_ADMIN} {admin}")
        await conn.execute(f"CREATE DATABASE {DATABASE} OWNER {OWNER_ROLE}")
    finally:
        await conn.close()
    conn = await _connect(pg, DATABASE)
    try:
        for sql in (
            f"REVOKE ALL ON DATABASE {DATABASE} FROM PUBLIC",
            f"GRANT CONNECT, TEMPORARY ON DATABASE {DATABASE} TO {GROUP_ROLE}, {OWNER_ROLE}",
            f"GRANT CONNECT ON DATABASE {DATABASE} TO {VAULT_ADMIN}",
            f"ALTER SCHEMA public OWNER TO {OWNER_ROLE}",
            "REVOKE ALL ON SCHEMA public FROM PUBLIC",
            f"GRANT USAGE ON SCHEMA public TO {GROUP_ROLE}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {GROUP_ROLE}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public "
            f"GRANT USAGE, SELECT ON SEQUENCES TO {GROUP_ROLE}",
        ):
            await conn.execute(sql)
    finally:
        await conn.close()


def configure_postgres(pg: PostgresCluster) -> str:
    """Create the roles and the database; return the password of Vault's admin login."""
    password = secrets.token_urlsafe(24)
    run_async(lambda: _configure_postgres(pg, password))
    return password


def write_dynamic_role(
    bao: AdminApi, name: str, default_ttl: str, max_ttl: str, *, migrator: bool = False,
    granted: bool = True,
) -> None:
    """Create or replace a dynamic database role; ``granted`` adds it to the AppRole's policy.

    The service policy gets a plain role, the migrator policy a ``migrator`` one.
    """
    bao.call(
        "POST", f"{DB_MOUNT}/roles/{name}", f"create database role {name!r}",
        {
            "db_name": DB_CONNECTION,
            "creation_statements": dynamic_creation_statements(
                OWNER_ROLE if migrator else GROUP_ROLE
            ),
            "revocation_statements": REVOCATION_STATEMENTS,
            "default_ttl": default_ttl,
            "max_ttl": max_ttl,
        },
    )
    if granted:
        grant_dynamic_role(bao, MIGRATOR_POLICY if migrator else POLICY, DB_MOUNT, name)


def configure_openbao(
    bao: AdminApi, pg: PostgresCluster, vault_admin_password: str,
    *, db_ttl: str, db_max_ttl: str, static_role: bool = True,
) -> DevLogins:
    """Mount and configure every engine the service and the tests use; the AppRole logins.

    ``bao`` is the root namespace or a namespace (``NamespacedApi``): the same steps either
    way. ``static_role=False`` leaves out the static role, for a second configuration on the
    same PostgreSQL: two mounts managing one login would each rotate its password away.
    """
    bao.call("POST", f"sys/mounts/{DB_MOUNT}", "mount the database engine", {"type": "database"})
    bao.call(
        "POST", f"{DB_MOUNT}/config/{DB_CONNECTION}", "configure the database connection",
        {
            "plugin_name": "postgresql-database-plugin",
            "connection_url": (
                f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{pg.port}/{DATABASE}"
                "?sslmode=disable"
            ),
            "username": VAULT_ADMIN,
            "password": vault_admin_password,
            "allowed_roles": "*",
            "verify_connection": True,
        },
    )
    for policy, text in (
        (POLICY, POLICY_HCL), (MIGRATOR_POLICY, MIGRATOR_POLICY_HCL),
        (EXAMPLES_POLICY, EXAMPLES_POLICY_HCL),
    ):
        bao.call("PUT", f"sys/policies/acl/{policy}", f"write policy {policy!r}", {"policy": text})
    write_dynamic_role(bao, DYNAMIC_ROLE, db_ttl, db_max_ttl, granted=False)
    write_dynamic_role(bao, MIGRATOR_ROLE, db_ttl, db_max_ttl, migrator=True, granted=False)
    if static_role:
        bao.call(
            "POST", f"{DB_MOUNT}/static-roles/{STATIC_ROLE}", "create the static role",
            {"db_name": DB_CONNECTION, "username": STATIC_USER, "rotation_period": "24h"},
        )
    mounts = bao.call("GET", "sys/mounts", "list secrets engines")
    if f"{KV_MOUNT}/" not in mounts.get("data", mounts):
        bao.call(
            "POST", f"sys/mounts/{KV_MOUNT}", "mount KV v2",
            {"type": "kv", "options": {"version": "2"}},
        )
    bao.call("POST", f"sys/mounts/{TRANSIT_MOUNT}", "mount transit", {"type": "transit"})
    bao.call("POST", f"{TRANSIT_MOUNT}/keys/{TRANSIT_KEY}", "create the transit key", {})
    bao.call("POST", f"sys/auth/{APPROLE_MOUNT}", "enable AppRole", {"type": "approle"})
    ttls = {"token_ttl": "1h", "token_max_ttl": "4h"}
    return DevLogins(
        service=write_approle_role(
            bao, APPROLE_ROLE, [POLICY], token_ttl=SERVICE_TOKEN_TTL, token_max_ttl="4h"
        ),
        migrator=write_approle_role(bao, MIGRATOR_APPROLE_ROLE, [MIGRATOR_POLICY], **ttls),
        examples=write_approle_role(bao, EXAMPLES_APPROLE_ROLE, [EXAMPLES_POLICY], **ttls),
    )


def write_approle_role(
    bao: AdminApi, name: str, policies: Sequence[str], *, token_ttl: str, token_max_ttl: str
) -> AppRoleCredentials:
    """Create (or replace) an AppRole role whose tokens carry `policies`; issue its credentials.

    No token gets Vault's ``default`` policy (it renews and looks up any lease by id).
    """
    base = f"auth/{APPROLE_MOUNT}/role/{name}"
    bao.call(
        "POST", base, f"create AppRole role {name!r}",
        {
            "token_policies": list(policies),
            "token_no_default_policy": True,
            "token_ttl": token_ttl,
            "token_max_ttl": token_max_ttl,
        },
    )
    role_id = bao.call("GET", f"{base}/role-id", f"read the role_id of {name!r}")
    secret_id = bao.call("POST", f"{base}/secret-id", f"issue a secret_id for {name!r}")
    return AppRoleCredentials(
        role_id=role_id["data"]["role_id"], secret_id=secret_id["data"]["secret_id"]
    )
