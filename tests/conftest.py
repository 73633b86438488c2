"""Fixtures shared by every test: the real dev stack, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.service import migrated_devstack, run_migrations
from vault_async.devstack import DevStack


@pytest.fixture(scope="session")
def devstack() -> Iterator[DevStack]:
    """A real OpenBao and PostgreSQL, configured with the database engine, AppRole, KV, transit."""
    with DevStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def migrated(devstack: DevStack) -> DevStack:
    """The session's dev stack with `alembic upgrade head` applied (idempotent)."""
    run_migrations(devstack.migration_env())
    return devstack


@pytest.fixture(scope="module")
def stack() -> Iterator[DevStack]:
    """A migrated dev stack of the module's own, for tests that disturb it."""
    with migrated_devstack() as own:
        yield own
