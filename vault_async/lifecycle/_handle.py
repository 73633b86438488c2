"""``ManagedSecret``: the handle a caller holds for one credential the engine keeps fresh.

The handle owns its state: the credential in force, its counters, its timing draws,
and how many pooled connections of each generation are checked out. The engine
changes that state only through the methods below, which is why the module runs past
300 lines: every transition of a secret's state is here, and nowhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import anyio

from . import _policy as policy
from ._clock import Clock
from ._events import EventBus, EventCallback
from ._models import Grant, Lease, SecretKind
from ._sources import SecretSource

__all__ = ["Engine", "ManagedSecret"]


class Engine(Protocol):
    """What a handle asks of the engine that manages it (``LeaseManager`` is one)."""

    @property
    def clock(self) -> Clock: ...

    @property
    def events(self) -> EventBus: ...

    async def wait_ready(self, handle: ManagedSecret) -> None: ...

    async def force_rotate(
        self, handle: ManagedSecret, reason: str, generation: int | None = None
    ) -> Lease: ...

    def released(self, handle: ManagedSecret, generation: int) -> None: ...


class ManagedSecret:
    """One secret kept valid by a :class:`LeaseManager`.

    Read :attr:`current` for the credential in force and :attr:`generation` to
    notice rotations; :meth:`subscribe` to be told about them as they happen. A
    connection pool reports with :meth:`track_use` how many of its connections of
    each generation are checked out, so a replaced lease is revoked as soon as the
    last one is returned.
    """

    __slots__ = (
        "_closed",
        "_expiring_generation",
        "_failed_at",
        "_in_use",
        "_last_error",
        "_lock",
        "_manager",
        "_retired",
        "_retry_at",
        "capped",
        "consecutive_failures",
        "current",
        "generation",
        "grace",
        "last_error_class",
        "last_login_at",
        "last_renewal",
        "last_rotation",
        "name",
        "natural",
        "parent",
        "read_at",
        "renewals",
        "rotations",
        "source",
        "total_failures",
    )

    def __init__(self, manager: Engine, source: SecretSource, name: str) -> None:
        self._manager = manager
        self.source = source
        self.name = name
        self.current: Lease | None = None
        self.generation = 0
        self.renewals = 0
        self.rotations = 0
        self.consecutive_failures = 0
        self.total_failures = 0
        self.last_error_class: str | None = None
        self.last_renewal: float | None = None
        self.last_rotation: float | None = None
        self.last_login_at: float | None = None
        self.read_at = -math.inf  # when the credential was last obtained or read again
        self.parent: ManagedSecret | None = None
        self.natural = 0.0
        self.grace = 0.0
        self.capped = False
        self._expiring_generation = -1
        # After a failed attempt: the error, and the instant before which
        # force_rotate answers with it instead of calling Vault again.
        self._last_error: Exception | None = None
        self._retry_at: float | None = None
        self._failed_at: float | None = None
        self._closed = False
        # Created when first needed: most handles have no pool and no replaced token.
        self._in_use: dict[int, int] | None = None
        self._retired: dict[int, Lease] | None = None
        self._lock: anyio.Lock | None = None

    # -- what callers read -----------------------------------------------------------

    @property
    def kind(self) -> SecretKind:
        """What sort of secret this is."""
        return self.source.kind

    @property
    def ready(self) -> bool:
        """True once a first credential has been obtained."""
        return self.current is not None

    @property
    def last_error(self) -> Exception | None:
        """The last attempt's error while the secret is failing; None after a success."""
        return self._last_error

    @property
    def closed(self) -> bool:
        """True once the manager has shut down."""
        return self._closed

    def degraded(self, now: float) -> bool:
        """True when the last attempt failed, or the credential is missing or expired."""
        if self.consecutive_failures > 0 or self.current is None:
            return True
        return self.current.expires_at <= now

    async def wait_ready(self, timeout: float = 30.0) -> Lease:  # noqa: ASYNC109
        """Wait for a valid credential; raises ``TimeoutError`` after ``timeout`` seconds."""
        with anyio.move_on_after(timeout):
            await self._manager.wait_ready(self)
        if self.current is None or self.current.expires_at < self._manager.clock.now():
            raise TimeoutError(
                f"{self.name}: no valid credential after {timeout:g}s "
                f"(last error: {self.last_error_class or 'none'})"
            )
        return self.current

    async def force_rotate(self, reason: str, *, generation: int | None = None) -> Lease:
        """Replace the credential now (e.g. the database refused it) and return the new one.

        ``generation`` is the one that failed (the generation the rejected login used): if
        the credential has been replaced since, the current one is returned without a new
        rotation. Callers racing each other share one rotation; a caller that is cancelled
        (a request timeout) does not cancel it, and what Vault issued is kept. After
        a failed attempt, calls made before the backoff delay has passed raise that
        attempt's error without asking Vault again.
        """
        return await self._manager.force_rotate(self, reason, generation)

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback`` with every event of this secret; returns an unsubscribe function."""
        return self._manager.events.subscribe(callback, self.name)

    def track_use(self, generation: int, delta: int) -> None:
        """A pool checked out (+1) or returned (-1) a connection made with ``generation``.

        Any call, ``delta`` 0 included, tells the engine a pool reports here, so a
        replaced lease waits for its connections rather than a fixed drain period.
        """
        in_use = self._in_use
        if in_use is None:
            in_use = self._in_use = {}
        count = in_use.get(generation, 0) + delta
        if count > 0:
            in_use[generation] = count
            return
        in_use.pop(generation, None)
        if delta < 0:
            self._manager.released(self, generation)

    @property
    def tracked(self) -> bool:
        """True when a connection pool reports its connections through :meth:`track_use`."""
        return self._in_use is not None

    def in_use(self, generation: int) -> int:
        """Connections made with ``generation`` that are checked out now."""
        return 0 if self._in_use is None else self._in_use.get(generation, 0)

    def __repr__(self) -> str:
        return (
            f"ManagedSecret(name={self.name!r}, kind={self.kind!r}, "
            f"generation={self.generation}, ready={self.ready})"
        )

    # -- what the engine changes -------------------------------------------------------

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Serialise the engine's operations on this secret.

        The lock exists only while someone holds or awaits it, so an idle handle
        costs no synchronisation object.
        """
        lock = self._lock
        if lock is None:
            lock = self._lock = anyio.Lock()
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._lock = None

    def install(
        self, grant: Grant, *, now: float, owner: int, rng: random.Random
    ) -> tuple[Lease, Lease | None]:
        """Make ``grant`` the credential in force; returns it and the lease it replaced, if any.

        A grant with the same identity as the credential in force (a token looked up
        again, a static role's unchanged password) updates its timing and is no rotation.
        """
        old = self.current
        self.read_at = now
        new = self.current = Lease(
            grant.lease_id,
            grant.lease_duration,
            grant.renewable,
            grant.data,
            obtained_at=now,
            expires_at=now + grant.lease_duration if grant.expires else math.inf,
            identity=grant.identity,
            revocable=grant.revocable,
            owner=owner,
        )
        self.natural = grant.lease_duration
        self.grace = policy.grace_period(grant.lease_duration, rng)
        self.capped = False
        self.succeeded()
        if old is not None and grant.identity and old.identity == grant.identity:
            new = self.current = dataclasses.replace(new, obtained_at=old.obtained_at)
            return new, None
        self.generation += 1
        if old is None:
            return new, None
        self.rotations += 1
        self.last_rotation = now
        return new, old

    def extend(self, grant: Grant, *, now: float, rng: random.Random) -> bool:
        """Record a renewal of the credential in force; returns True when it is capped."""
        lease = self.current
        assert lease is not None
        expires = now + grant.lease_duration if grant.expires else math.inf
        capped = (
            not grant.renewable
            or policy.is_capped(grant.lease_duration, self.natural)
            or expires <= lease.expires_at
        )
        self.current = dataclasses.replace(
            lease,
            lease_duration=grant.lease_duration,
            renewable=grant.renewable,
            data=grant.data or lease.data,
            expires_at=expires,
        )
        self.renewals += 1
        self.last_renewal = now
        self.capped = capped
        self.succeeded()
        if not capped:
            # Vault's watcher draws a fresh grace while the lease keeps extending.
            self.grace = policy.grace_period(self.natural, rng)
        return capped

    def invalidate(self, now: float) -> None:
        """Vault refused the credential in force: it is as good as expired."""
        lease = self.current
        if lease is not None and lease.expires_at > now:
            self.current = dataclasses.replace(lease, expires_at=now)

    def succeeded(self) -> None:
        """The last attempt worked: clear the failure state."""
        self.consecutive_failures = 0
        self._last_error = None
        self._retry_at = None
        self._failed_at = None

    def failed(self, error: Exception, retry_at: float, now: float | None = None) -> None:
        """Count a failed attempt (made at ``now``); the next one is planned for ``retry_at``."""
        self.consecutive_failures += 1
        self.total_failures += 1
        self.last_error_class = type(error).__name__
        self._last_error = error
        self._retry_at = retry_at
        self._failed_at = now

    @property
    def retry_at(self) -> float | None:
        """When the engine retries after the last failed attempt; None after a success."""
        return self._retry_at

    @property
    def failed_at(self) -> float | None:
        """When the last failed attempt failed, if known; None after a success."""
        return self._failed_at

    def backoff_error(self, now: float) -> Exception | None:
        """The last attempt's error while its backoff delay runs (do not call Vault), else None."""
        if self._retry_at is not None and now < self._retry_at:
            return self._last_error
        return None

    def announce_expiring(self) -> bool:
        """True the first time per generation: the credential in force will not be renewed."""
        if self._expiring_generation == self.generation:
            return False
        self._expiring_generation = self.generation
        return True

    def close(self) -> None:
        """The manager shut down: no more operations on this secret."""
        self._closed = True

    # -- token handles: the tokens they replaced -----------------------------------------

    def retire(self, generation: int, lease: Lease) -> None:
        """Remember the replaced token of ``generation`` until nothing depends on it."""
        if self._retired is None:
            self._retired = {}
        self._retired[generation] = lease

    def retired(self) -> list[tuple[int, Lease]]:
        """The replaced tokens still remembered, by generation."""
        return [] if self._retired is None else list(self._retired.items())

    def forget(self, generation: int) -> None:
        """The replaced token of ``generation`` is revoked or expired."""
        if self._retired is not None:
            self._retired.pop(generation, None)

    def owner_expires_at(self, generation: int) -> float:
        """Until when a lease obtained with this token's ``generation`` can live.

        Infinity for the token in force (the engine keeps it alive); a replaced
        token's expiry otherwise.
        """
        if generation == self.generation and self.current is not None:
            if self.current.expires_at > self._manager.clock.now():
                return math.inf
            return self.current.expires_at
        retired = None if self._retired is None else self._retired.get(generation)
        return -math.inf if retired is None else retired.expires_at
