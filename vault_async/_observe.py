"""The seam a tracer plugs into: one record per logical request, filled in by the send path.

The client knows nothing of any tracing library. With no observer set (the default) it
pays one ``is None`` check per request; with one, :meth:`RequestObserver.request` wraps the
whole logical request (every retry and node switch inside it) and reads the
:class:`RequestRecord` when it ends. ``vault_async.otel`` is the observer this package ships.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

__all__ = ["RequestObserver", "RequestRecord"]


class RequestRecord:
    """What the send path tells about one logical request; never a token, body or header."""

    __slots__ = ("node", "retries", "status")

    def __init__(self) -> None:
        self.retries = 0
        """Retries made after the first attempt (a switch to an untried node is not one)."""
        self.status: int | None = None
        """The HTTP status of the last response (None when none came)."""
        self.node: str | None = None
        """The address of the node that gave the last response (None when none did)."""


class RequestObserver(Protocol):
    """Told about each logical request the client sends."""

    def request(self, method: str, path: str) -> AbstractContextManager[RequestRecord]:
        """A context around the request to ``path`` (quoted, no query string).

        The client fills the record in as the request goes; an exception leaving the
        context is the request's failure (a ``VaultError``, or a cancellation).
        """
        ...
