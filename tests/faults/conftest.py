"""Fault tests disturb their servers (SIGSTOP, restarts, revocations): each module gets its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.service import run_migrations
from vault_async.devstack import DevStack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every fault test needs the real stack and runs for tens of seconds."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def stack() -> Iterator[DevStack]:
    """A dev stack of this module's own, migrated."""
    with DevStack() as own:
        run_migrations(own.env())
        yield own
