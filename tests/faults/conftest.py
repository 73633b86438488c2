"""Fault tests disturb their servers (SIGSTOP, restarts, revocations): each module gets its own
migrated dev stack from the module-scoped `stack` fixture (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every fault test needs the real stack and runs for tens of seconds."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.slow)
