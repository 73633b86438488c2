"""What the engine binding needs from a credential, and the credential of plain mode.

The lease engine's ``ManagedSecret`` satisfies :class:`CredentialSource`; a source that also
has ``track_use`` (:class:`UseTrackingSource`) is told which generations are in use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

__all__ = [
    "Credential",
    "CredentialSource",
    "StaticCredentials",
    "UseTrackingSource",
    "credential_of",
]


class _HasData(Protocol):
    @property
    def data(self) -> Mapping[str, Any]: ...


@runtime_checkable
class CredentialSource(Protocol):
    """What the engine needs from a credential: current value, generation, rotation."""

    @property
    def current(self) -> _HasData | None: ...

    @property
    def generation(self) -> int: ...

    async def force_rotate(self, reason: str, *, generation: int | None = None) -> Any:
        """Replace the credential; ``generation`` is the one that failed: once the source
        has moved past it, the current credential is returned without a rotation."""

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...


@runtime_checkable
class UseTrackingSource(CredentialSource, Protocol):
    """A :class:`CredentialSource` that also wants to know which generations are in use.

    ``track_use`` is optional: the binding checks for it once, when it attaches. It is
    called once with 0 at attach (the pool announces itself), then with +1 on checkout and
    exactly one -1 per +1. Calls come from the event loop's thread, except the -1 of a
    connection the garbage collector drops, which comes from wherever the collector runs;
    keep it a cheap, non-blocking update.
    """

    def track_use(self, generation: int, delta: int) -> None: ...


class Credential(NamedTuple):
    """The login a new connection uses, and the generation it belongs to."""

    username: str | None
    password: str | None
    generation: int

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, generation={self.generation})"


def credential_of(source: CredentialSource) -> Credential | None:
    """The source's credential in force, read in one go (None before the first one)."""
    generation = source.generation
    value = source.current
    if value is None:
        return None
    return Credential(value.data.get("username"), value.data.get("password"), generation)


@dataclass(frozen=True, slots=True)
class _StaticValue:
    data: Mapping[str, Any] = field(repr=False)


class StaticCredentials:
    """A credential that never changes (plain mode: user and password from the URL)."""

    def __init__(self, username: str | None, password: str | None) -> None:
        self._value = _StaticValue({"username": username, "password": password})

    def __repr__(self) -> str:
        return f"StaticCredentials(username={self._value.data['username']!r})"

    @property
    def current(self) -> _StaticValue:
        return self._value

    @property
    def generation(self) -> int:
        return 0

    async def force_rotate(self, reason: str, *, generation: int | None = None) -> _StaticValue:
        """Nothing to rotate; the same credential is returned."""
        return self._value

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        return lambda: None

    def track_use(self, generation: int, delta: int) -> None:
        """Nothing is ever revoked, so nothing is counted."""
