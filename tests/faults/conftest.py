"""Fault tests disturb their servers (SIGSTOP, restarts, revocations): each module gets its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.service import run_migrations
from vault_async.devstack import DevStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack() -> Iterator[DevStack]:
    """A dev stack of this module's own, migrated."""
    with DevStack() as own:
        run_migrations(own.env())
        yield own
