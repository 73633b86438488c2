"""Fixtures for the integration tests of the SQLAlchemy/FastAPI layer and the service."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from vault_async.devstack import DevStack


class FakeSource:
    """A CredentialSource the test drives by hand: set new credentials, emit `rotated`."""

    def __init__(self, username: str, password: str) -> None:
        self.current: Any = _Value({"username": username, "password": password})
        self.generation = 1
        self.rotate_calls = 0
        self.forced_generations: list[int | None] = []
        """The failed generation each ``force_rotate`` named."""
        self.on_force: Callable[[], tuple[str, str]] | None = None
        self._subscribers: list[Callable[[Any], None]] = []

    def set(self, username: str, password: str, *, emit: bool = True) -> None:
        self.current = _Value({"username": username, "password": password})
        self.generation += 1
        if emit:
            for callback in list(self._subscribers):
                callback(_Event("rotated", self.generation))

    async def force_rotate(self, reason: str, *, generation: int | None = None) -> Any:
        self.rotate_calls += 1
        self.forced_generations.append(generation)
        assert self.on_force is not None
        username, password = await asyncio.to_thread(self.on_force)
        self.set(username, password)
        return self.current

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)


class TrackingSource(FakeSource):
    """A FakeSource that counts connections in use per generation, as the lease engine does."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__(username, password)
        self.in_use: Counter[int] = Counter()
        self.calls: list[tuple[int, int]] = []
        self.dropped: set[int] = set()
        """Rotated-away generations whose count reached 0: the engine revokes their lease."""
        self.counted_after_drop: list[int] = []
        """Generations counted again after that (a session of a revoked login)."""

    def track_use(self, generation: int, delta: int) -> None:
        self.calls.append((generation, delta))
        if delta > 0 and generation in self.dropped:
            self.counted_after_drop.append(generation)
        self.in_use[generation] += delta
        assert self.in_use[generation] >= 0, f"generation {generation} returned more than out"
        if self.in_use[generation] == 0 and generation != self.generation:
            self.dropped.add(generation)

    def outstanding(self) -> dict[int, int]:
        return {g: n for g, n in self.in_use.items() if n}


class _Value:
    def __init__(self, data: dict[str, str]) -> None:
        self.data = data


class _Event:
    def __init__(self, kind: str, generation: int) -> None:
        self.kind = kind
        self.generation = generation


def vault_creds(stack: DevStack, role: str = "app") -> tuple[str, str, str]:
    """(username, password, lease_id) for a dynamic role, read with the root token."""
    body = stack.vault_call("GET", f"{stack.db_mount}/creds/{role}")
    return body["data"]["username"], body["data"]["password"], body["lease_id"]


def vault_refreshed_source(
    stack: DevStack, username: str, password: str
) -> tuple[FakeSource, list[str]]:
    """A FakeSource whose ``force_rotate`` reads new credentials from Vault.

    Returns the source and the list of lease ids those rotations obtained (to revoke).
    """
    leases: list[str] = []

    def fresh() -> tuple[str, str]:
        new_user, new_password, lease = vault_creds(stack)
        leases.append(lease)
        return new_user, new_password

    source = FakeSource(username, password)
    source.on_force = fresh
    return source, leases


def login(stack: DevStack, leases: list[str]) -> tuple[str, str]:
    """(username, password) for the ``app`` role; the lease goes to ``leases`` (revoked at the
    end of the test by the ``leases`` fixture)."""
    username, password, lease = vault_creds(stack)
    leases.append(lease)
    return username, password


async def backends_of(stack: DevStack, username: str) -> int:
    """PostgreSQL sessions open for ``username``."""
    async with stack.admin_connection() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", username
        )
    return count


async def wait_for_backends(stack: DevStack, username: str, expected: int) -> int:
    """Backends close asynchronously on the server side: poll briefly, bounded."""
    count = -1
    for _ in range(50):
        count = await backends_of(stack, username)
        if count == expected:
            break
        await asyncio.sleep(0.05)
    return count


ASYNC_DIALECTS = ("asyncpg", "psycopg")
"""The async drivers the SQLAlchemy binding supports; engine fixtures run once per driver."""


def dialect_url(stack: DevStack, driver: str) -> str:
    """The stack's DATABASE_URL with ``driver`` (``postgresql+<driver>://...``)."""
    return stack.database_url.replace("postgresql+asyncpg://", f"postgresql+{driver}://", 1)


class FakeSyncSource:
    """A SyncCredentialSource the test drives by hand (``set`` rotates and calls back)."""

    def __init__(self, username: str, password: str) -> None:
        from vault_async.sync import SyncCredential

        self._make = SyncCredential
        self._current = SyncCredential(username, password, 1)
        self.rotate_calls = 0
        self.forced_generations: list[int | None] = []
        self.on_force: Callable[[], tuple[str, str]] | None = None
        self.in_use: Counter[int] = Counter()
        self._subscribers: list[Callable[[Any], None]] = []

    def current(self) -> Any:
        return self._current

    def set(self, username: str, password: str) -> None:
        self._current = self._make(username, password, self._current.generation + 1)
        for callback in list(self._subscribers):
            callback(self._current)

    def force_rotate(
        self, reason: str, timeout: float = 30.0, *, generation: int | None = None
    ) -> Any:
        self.rotate_calls += 1
        self.forced_generations.append(generation)
        assert self.on_force is not None
        self.set(*self.on_force())
        return self._current

    def track_use(self, generation: int, delta: int) -> None:
        self.in_use[generation] += delta
        assert self.in_use[generation] >= 0, f"generation {generation} returned more than out"

    def outstanding(self) -> dict[int, int]:
        return {g: n for g, n in self.in_use.items() if n}

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)
