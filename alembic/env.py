"""Run migrations with a short-lived login from Vault, as the owner role.

The login comes from ``VAULT_DB_MIGRATION_ROLE`` (default ``VAULT_DB_ROLE``); every
statement runs after ``SET ROLE <DB_OWNER_ROLE>``, so tables belong to the owner role and
never to a user Vault will drop. The lease and a token obtained by login are revoked at the
end, as the service's own runtime does. Without a Vault role the user and password in
``DATABASE_URL`` are used (plain mode).

A failed start prints one line naming the setting to fix and exits like the service
(1: Vault or the database refused or did not answer, 2: a setting is wrong); a successful
run says which login was used, which role owns the objects and which revisions ran.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from contextlib import AbstractAsyncContextManager

from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from alembic import context
from app import models  # noqa: F401  (registers the tables on the metadata)
from app._migration_report import Report, describe_step
from app._startup_errors import explain
from app.db import Base, build_auth, build_client
from app.logging_setup import configure_logging
from app.settings import Settings, SettingsError, check_credential_files, load_settings
from vault_async import InvalidConfig
from vault_async.runtime import StartupError, VaultRuntime, open_runtime
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
        ready_timeout_name="VAULT_STARTUP_TIMEOUT",
        engine_options=options,
    )


def _run(connection: Connection, report: Report) -> None:
    report.login, report.owner = connection.execute(
        text("SELECT session_user, current_user")
    ).one()

    def applied(
        ctx: MigrationContext, step: MigrationInfo, heads: object, run_args: object
    ) -> None:
        report.ran.append(describe_step(step))

    context.configure(
        connection=connection, target_metadata=target_metadata, on_version_apply=applied
    )
    with context.begin_transaction():
        context.run_migrations()
    report.now_at = tuple(sorted(context.get_context().get_current_heads()))
    report.heads = tuple(sorted(context.script.get_heads()))


async def run_online(settings: Settings) -> Report:
    report = Report()
    async with (
        open_migration_runtime(settings) as runtime,
        runtime.engine.connect() as connection,
    ):
        await connection.run_sync(_run, report)
        await connection.commit()
    return report


def run_offline(settings: Settings) -> None:
    context.configure(
        url=settings.database_url, target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        if settings.db_owner_role:
            role = quote_role(settings.db_owner_role, postgresql.dialect())  # type: ignore[no-untyped-call]
            context.execute(f"SET ROLE {role}")
        context.run_migrations()


FAILED_START = (SettingsError, InvalidConfig, StartupError, DBAPIError, OSError)
"""Failures of the setting, Vault or the database: one line, not a traceback."""


def main() -> None:
    """Run the migrations; a failed start is one line on stderr and the service's exit code."""
    if not logging.getLogger().handlers:  # run by `alembic`, not by `python -m app --dev`
        configure_logging({"LOG_LEVEL": "WARNING", **os.environ})
    settings: Settings | None = None
    try:
        settings = load_settings()
        if context.is_offline_mode():
            run_offline(settings)
            return
        check_credential_files(settings)
        report = asyncio.run(run_online(settings))
    except FAILED_START as error:
        role = "VAULT_DB_MIGRATION_ROLE"
        if settings is None or not settings.vault_db_migration_role:
            role = "VAULT_DB_ROLE"
        failure = explain(error, settings, what="migration failed", db_role_setting=role)
        print(failure.line, file=sys.stderr)
        raise SystemExit(failure.code) from None
    for line in report.lines():
        print(line)


main()
