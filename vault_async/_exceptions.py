"""Every error the client raises.

The tree::

    VaultError                      base; carries .status, .method, .path, .errors
    ├── InvalidRequest              400: Vault rejected the request's contents
    ├── Forbidden                   401/403: missing, expired or under-privileged token
    ├── InvalidPath                 404: nothing at that path (or no permission to know)
    ├── PreconditionFailed          412: check-and-set conflict, or a standby not caught up
    ├── RateLimited                 429: a rate-limit quota was hit; .retry_after in seconds
    ├── InternalServerError         500: Vault failed while handling the request
    ├── BadGateway                  502: an upstream (e.g. the database) failed
    ├── VaultUnavailable            503: sealed, standby or in maintenance
    ├── UnexpectedStatus            any other non-2xx status
    ├── VaultConnectionError        no HTTP response at all (refused, reset, DNS, TLS)
    ├── VaultTimeout                the request ran out of time
    ├── MalformedResponse           a 2xx body that is not the JSON Vault sends
    ├── ResponseTooLarge            a body over max_response_bytes (VAULT_MAX_RESPONSE_BYTES)
    └── InvalidConfig               bad configuration or argument, raised before sending
                                    (also ValueError)

Errors keep the method, the path and Vault's ``errors`` list. They never keep the
token, the request body or the raw response body: those can hold secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = [
    "BadGateway",
    "Forbidden",
    "InternalServerError",
    "InvalidConfig",
    "InvalidPath",
    "InvalidRequest",
    "MalformedResponse",
    "PreconditionFailed",
    "RateLimited",
    "ResponseTooLarge",
    "UnexpectedStatus",
    "VaultConnectionError",
    "VaultError",
    "VaultTimeout",
    "VaultUnavailable",
    "error_for_status",
]


_MULTIERROR_HEAD = re.compile(r"\d+ errors? occurred:")


def vault_messages(errors: Iterable[str]) -> list[str]:
    """Vault's errors as single lines: Go's "2 errors occurred:" head and its bullets dropped."""
    lines: list[str] = []
    for error in errors:
        for line in error.splitlines():
            line = line.strip().removeprefix("* ").strip()
            if line and not _MULTIERROR_HEAD.fullmatch(line):
                lines.append(line)
    return lines


class VaultError(Exception):
    """Base class of every error raised by vault_async."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        errors: Sequence[str] = (),
    ) -> None:
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.errors: tuple[str, ...] = tuple(errors)
        super().__init__(self._render())

    def _render(self) -> str:
        parts: list[str] = []
        if self.method and self.path:
            parts.append(f"{self.method} {self.path}")
        if self.status is not None:
            parts.append(f"status {self.status}")
        head = ": ".join([", ".join(parts), self.message]) if parts else self.message
        if self.errors:
            head += " (" + "; ".join(self.errors) + ")"
        return head

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, method={self.method!r}, "
            f"path={self.path!r}, errors={list(self.errors)!r})"
        )


class InvalidRequest(VaultError):
    """Vault answered 400: the request's contents were rejected."""


class Forbidden(VaultError):
    """Vault answered 401 or 403: the token is missing, expired or lacks a policy."""


class InvalidPath(VaultError):
    """Vault answered 404: nothing is mounted or stored at that path."""


class PreconditionFailed(VaultError):
    """Vault answered 412: a check-and-set conflict or a standby that is behind."""


class RateLimited(VaultError):
    """Vault answered 429: a rate-limit quota was exceeded."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        errors: Sequence[str] = (),
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, method=method, path=path, errors=errors)


class InternalServerError(VaultError):
    """Vault answered 500: it failed while handling the request."""


class BadGateway(VaultError):
    """Vault answered 502: a backend it talks to (e.g. the database) failed."""


class VaultUnavailable(VaultError):
    """Vault answered 503: sealed, a standby, or in maintenance."""


class UnexpectedStatus(VaultError):
    """Vault answered with a status code this client has no class for."""


class VaultConnectionError(VaultError):
    """No HTTP response: the connection was refused, reset, or TLS failed."""


class VaultTimeout(VaultError):
    """The request did not complete within the configured timeout."""


class MalformedResponse(VaultError):
    """A successful status came with a body that is not the JSON object Vault sends."""


class ResponseTooLarge(VaultError):
    """The response body passed ``max_response_bytes``; reading stopped there."""

    def __init__(
        self, limit: int, *, method: str | None = None, path: str | None = None
    ) -> None:
        self.limit = limit
        super().__init__(
            f"response body exceeds {limit} bytes (max_response_bytes= or "
            "VAULT_MAX_RESPONSE_BYTES); reading stopped",
            method=method,
            path=path,
        )


class InvalidConfig(VaultError, ValueError):
    """A setting, environment variable or argument (e.g. a path segment) is malformed.

    Raised before anything is sent; the message names what to fix.
    """


_BY_STATUS: dict[int, type[VaultError]] = {
    400: InvalidRequest,
    401: Forbidden,
    403: Forbidden,
    404: InvalidPath,
    412: PreconditionFailed,
    429: RateLimited,
    500: InternalServerError,
    502: BadGateway,
    503: VaultUnavailable,
}


def error_for_status(status: int) -> type[VaultError]:
    """The error class for a non-2xx status code (the one table of the mapping)."""
    return _BY_STATUS.get(status, UnexpectedStatus)
