"""Fixtures shared by every test: the real dev stack, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.service import migrated_devstack, run_migrations
from vault_async.devstack import DevNamespace, DevStack


@pytest.fixture(scope="session")
def devstack() -> Iterator[DevStack]:
    """A real OpenBao and PostgreSQL, configured with the database engine, AppRole, KV, transit."""
    with DevStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def team_namespace(devstack: DevStack) -> DevNamespace:
    """OpenBao namespace ``team-a`` on the session's stack, configured as the root is (the
    database engine on the same PostgreSQL, AppRole, KV), its static role aside."""
    return devstack.add_namespace("team-a")


@pytest.fixture(scope="session")
def migrated(devstack: DevStack) -> DevStack:
    """The session's dev stack with `alembic upgrade head` applied (idempotent)."""
    run_migrations(devstack.migration_env())
    return devstack


@pytest.fixture
def leases(migrated: DevStack) -> Iterator[list[str]]:
    """Lease ids a test obtained (``tests.integration.conftest.login``), revoked at its end."""
    issued: list[str] = []
    yield issued
    for lease in issued:
        migrated.vault_call("PUT", "sys/leases/revoke", {"lease_id": lease})


@pytest.fixture(scope="module")
def stack() -> Iterator[DevStack]:
    """A migrated dev stack of the module's own, for tests that disturb it."""
    with migrated_devstack() as own:
        yield own
