"""Run migrations with a short-lived login from Vault, as the owner role.

The login comes from ``VAULT_DB_MIGRATION_ROLE`` (default ``VAULT_DB_ROLE``); every
statement runs after ``SET ROLE <DB_OWNER_ROLE>``, so tables belong to the owner role and
never to a user Vault will drop. The lease and a token obtained by login are revoked at the
end. Without a Vault role the user and password in ``DATABASE_URL`` are used (plain mode).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from alembic import context
from app import models  # noqa: F401  (registers the tables on the metadata)
from app.db import Base, build_auth, build_client
from app.settings import Settings, load_settings
from vault_async.sqlalchemy import quote_role

target_metadata = Base.metadata


@asynccontextmanager
async def migration_url(settings: Settings) -> AsyncIterator[URL]:
    """The database URL with a migration login (revoked on exit in Vault mode)."""
    url = make_url(settings.database_url)
    if not settings.vault_mode:
        yield url
        return
    async with build_client(settings) as client:
        logged_in = settings.auth_method != "token"
        if logged_in:
            await client.login(build_auth(settings))
        database = client.secrets.database
        mount = settings.vault_db_mount
        if settings.migration_role:
            secret = await database.generate_credentials(
                settings.migration_role, mount_point=mount
            )
        else:
            secret = await database.get_static_credentials(
                settings.vault_db_static_role or "", mount_point=mount
            )
        try:
            yield url.set(username=secret.data["username"], password=secret.data["password"])
        finally:
            if secret.lease_id:
                await client.sys.leases.revoke(secret.lease_id)
            if logged_in:
                await client.auth.token.revoke_self()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    settings = load_settings()
    async with migration_url(settings) as url:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                if settings.db_owner_role:
                    role = quote_role(settings.db_owner_role, engine.dialect)
                    await connection.execute(text(f"SET ROLE {role}"))
                    await connection.commit()
                await connection.run_sync(_run)
                await connection.commit()
        finally:
            await engine.dispose()


def run_offline() -> None:
    settings = load_settings()
    context.configure(
        url=settings.database_url, target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        if settings.db_owner_role:
            role = quote_role(settings.db_owner_role, postgresql.dialect())  # type: ignore[no-untyped-call]
            context.execute(f"SET ROLE {role}")
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
