"""Run migrations with a short-lived login from Vault, as the owner role.

The login comes from ``VAULT_DB_MIGRATION_ROLE`` (default ``VAULT_DB_ROLE``); every
statement runs after ``SET ROLE <DB_OWNER_ROLE>``, so tables belong to the owner role and
never to a user Vault will drop. The lease and a token obtained by login are revoked at the
end, as the service's own runtime does. Without a Vault role the user and password in
``DATABASE_URL`` are used (plain mode).
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from alembic import context
from app import models  # noqa: F401  (registers the tables on the metadata)
from app.db import Base, build_auth, build_client
from app.settings import Settings, load_settings
from vault_async.runtime import VaultRuntime, open_runtime
from vault_async.sqlalchemy import quote_role

target_metadata = Base.metadata


def open_migration_runtime(settings: Settings) -> AbstractAsyncContextManager[VaultRuntime]:
    """The service's runtime, with the migration login and ``SET ROLE`` to the owner role.

    Vault mode: the lease engine holds the migration credential (renewed if the migration
    runs long) and revokes it, and a token it logged in for, on exit.
    """
    options = {"poolclass": NullPool}
    if not settings.vault_mode:
        return open_runtime(
            settings.database_url, assume_role=settings.db_owner_role, engine_options=options
        )
    migration_role = settings.migration_role
    return open_runtime(
        settings.database_url,
        client=build_client(settings),
        auth=build_auth(settings),
        db_role=migration_role,
        db_static_role=None if migration_role else settings.vault_db_static_role,
        db_mount=settings.vault_db_mount,
        assume_role=settings.db_owner_role,
        ready_timeout=settings.vault_startup_timeout,
        engine_options=options,
    )


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    async with (
        open_migration_runtime(load_settings()) as runtime,
        runtime.engine.connect() as connection,
    ):
        await connection.run_sync(_run)
        await connection.commit()


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
