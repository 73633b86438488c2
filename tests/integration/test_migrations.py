"""Alembic under the owner role: app_owner owns the tables; the service user may only use them."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.postgres import connected_as
from tests.support.service import run_migrations
from vault_async.devstack import DevStack

from .conftest import vault_creds

pytestmark = pytest.mark.integration


async def test_users_table_is_owned_by_the_owner_role(migrated: DevStack) -> None:
    async with migrated.admin_connection() as conn:
        owners = dict(
            await conn.fetch(
                "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
            )
        )
        sequences = await conn.fetch(
            "SELECT sequenceowner FROM pg_sequences WHERE schemaname = 'public'"
        )
        version = await conn.fetchval("SELECT version_num FROM alembic_version")
    assert owners["users"] == migrated.owner_role
    assert owners["alembic_version"] == migrated.owner_role
    assert {row["sequenceowner"] for row in sequences} == {migrated.owner_role}
    assert version == "0001_users"


async def test_migration_leaves_no_vault_user_behind(migrated: DevStack) -> None:
    before = set(await migrated.v_roles())
    run_migrations(migrated.migration_env())  # already at head: logs in, revokes, changes nothing
    assert set(await migrated.v_roles()) <= before


async def test_service_user_reads_and_writes_but_cannot_create(migrated: DevStack) -> None:
    username, password, lease_id = vault_creds(migrated)
    async with connected_as(migrated, username, password) as conn:
        new_id = await conn.fetchval(
            "INSERT INTO users (username, email) VALUES ($1, $2) RETURNING id",
            f"mig-{username[-12:]}", "m@x.test",
        )
        assert await conn.fetchval("SELECT count(*) FROM users WHERE id = $1", new_id) == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE intruder (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DROP TABLE users")
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease_id})
