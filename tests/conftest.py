"""Fixtures shared by every test: the real dev stack, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vault_async.devstack import DevStack


@pytest.fixture(scope="session")
def devstack() -> Iterator[DevStack]:
    """A real OpenBao and PostgreSQL, configured with the database engine, AppRole, KV, transit."""
    with DevStack() as stack:
        yield stack
