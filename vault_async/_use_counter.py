"""Connections of each generation in use, reported to the credential source as +1 / -1.

SQLAlchemy's pool ends a checkout in one of two events: ``checkin`` (returned, invalidated,
or refused by a checkout listener) or ``detach`` (detached by hand, or an asyncio connection
finalised by the garbage collector, which cannot be checked in). ``checkin`` also fires for
records that were never handed out (a failed connect), and a record refused on checkout is
reconnected and checked out again: keeping the counted generation per record is what makes
every +1 meet exactly one -1.

A pool's idle connections are not counted, yet they are sessions of their generation's login
until the pool swap closes them, and that swap runs after the rotation (in a task, after the
``rotated`` event). :class:`GenerationHold` is the pool's own count on the generation it serves:
moved to the new generation at a rotation, and given back for the old one only once the swap
has closed the idle connections, so the old lease is never revoked under them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

__all__ = ["GenerationHold", "UseCounter"]


class UseCounter:
    """Calls ``track(generation, +1)`` per checkout and ``track(generation, -1)`` per return."""

    def __init__(self, track: Callable[[int, int], None]) -> None:
        self._track = track
        self._out: dict[Hashable, int] = {}
        """The generation counted for each checked-out connection record."""

    def out(self, record: Hashable, generation: int) -> None:
        """``record`` was checked out with a connection made with ``generation``."""
        self.back(record)  # checked out again after a refusal: its first connection is gone
        self._out[record] = generation
        self._track(generation, 1)

    def counted(self, record: Hashable) -> bool:
        """Whether ``record`` is counted out now."""
        return record in self._out

    def back(self, record: Hashable) -> None:
        """``record``'s checkout ended, however it ended (a no-op if it was not counted)."""
        generation = self._out.pop(record, None)
        if generation is not None:
            self._track(generation, -1)

    def release_all(self) -> None:
        """Report every counted connection returned (the binding stops watching)."""
        for record in list(self._out):
            self.back(record)


class GenerationHold:
    """One count the pool itself holds on the generation it serves (see the module's doc)."""

    def __init__(self, track: Callable[[int, int], None]) -> None:
        self._track = track
        self._held: int | None = None

    @property
    def generation(self) -> int | None:
        """The generation held now (None before the first :meth:`move_to` and after
        :meth:`drop`)."""
        return self._held

    def move_to(self, generation: int) -> int | None:
        """Hold ``generation`` (+1 at once); returns the generation held before, whose
        count the caller gives back with :meth:`give_back` once its connections are closed."""
        previous = self._held
        if previous == generation:
            return None
        self._held = generation
        self._track(generation, 1)
        return previous

    def give_back(self, generation: int | None) -> None:
        """The idle connections of ``generation`` (from :meth:`move_to`) are closed: -1."""
        if generation is not None:
            self._track(generation, -1)

    def drop(self) -> None:
        """The pool stops reporting: give back the generation held now."""
        held, self._held = self._held, None
        self.give_back(held)
