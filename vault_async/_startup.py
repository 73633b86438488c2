"""Why a first credential did not come: one phrase, from the last error and Vault's words.

The runtime waits for its first token and database credential; when the wait ends, or
when retrying cannot help, :func:`diagnose` turns the handle's last error into a
:class:`Diagnosis`: a reason a caller can map to its own settings, and one line quoting
Vault's ``errors`` (already scrubbed of what was sent, see ``_translate``). No secret is
ever part of it: only the address, the secret's name and Vault's own messages.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import httpx

from ._exceptions import (
    Forbidden,
    InvalidConfig,
    InvalidPath,
    InvalidRequest,
    VaultConnectionError,
    VaultError,
    VaultTimeout,
    vault_messages,
)
from ._translate import HTTP_TO_HTTPS, node_list

__all__ = ["Diagnosis", "Reason", "diagnose"]

E = TypeVar("E", bound=BaseException)

Reason = Literal[
    "refused",  # Vault answered with an error retrying will not fix
    "invalid",  # an argument or credential file was wrong before anything was sent
    "plain_http",  # https:// to a server that answers plain HTTP
    "https_only",  # http:// to a server that speaks only HTTPS
    "untrusted",  # the server's TLS certificate was not accepted
    "unreachable",  # no connection, or no answer in time
    "failing",  # Vault answered, with an error that may pass (sealed, 5xx)
    "none",  # no error seen at all
]

FAIL_AT_ONCE: frozenset[Reason] = frozenset(
    {"refused", "invalid", "plain_http", "https_only", "untrusted"}
)
"""Reasons retrying will not fix: the wait for a first credential ends at once."""

_NOT_TLS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}
)
"""OpenSSL's reasons when the server's first bytes are not a TLS record (plain HTTP)."""


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A reason, and the line that says it (no setting names: the caller adds those)."""

    reason: Reason
    text: str

    @property
    def final(self) -> bool:
        """Retrying will not fix this."""
        return self.reason in FAIL_AT_ONCE


def vault_words(error: VaultError) -> str:
    """Vault's ``errors``, each quoted on one line; the status and class when Vault gave none."""
    messages = vault_messages(error.errors)
    if messages:
        return "; ".join(f'"{message}"' for message in messages)
    status = f"status {error.status}" if error.status is not None else type(error).__name__
    return f"{status} ({error.message})"


def diagnose(
    name: str, kind: str, error: BaseException | None, addr: str | Sequence[str]
) -> Diagnosis:
    """One line for ``name``'s (a token or a database credential) last error.

    ``addr``: Vault's address, or every node's; an unreachable cluster names them all.
    """
    addrs = (addr,) if isinstance(addr, str) else tuple(addr) or ("?",)
    addr = addrs[0]
    if error is None:
        return Diagnosis("none", f"{name}: no answer from Vault at {addr}")
    if isinstance(error, InvalidConfig):
        return Diagnosis("invalid", f"{name}: {error.message}")
    if isinstance(error, VaultConnectionError | VaultTimeout):
        return _no_answer(error, addrs)
    if isinstance(error, InvalidRequest) and HTTP_TO_HTTPS in error.errors:
        return Diagnosis("https_only", f"Vault at {addr} speaks HTTPS, not plain HTTP")
    if isinstance(error, VaultError):
        what = f"{name} login" if kind == "token" else name
        if isinstance(error, Forbidden | InvalidRequest | InvalidPath):
            return Diagnosis("refused", f"{what} refused by Vault: {vault_words(error)}")
        return Diagnosis("failing", f"{what} failed at Vault {addr}: {vault_words(error)}")
    return Diagnosis("failing", f"{name}: {type(error).__name__}")


def _no_answer(error: VaultError, addrs: tuple[str, ...]) -> Diagnosis:
    addr = addrs[0]
    tls = [e for e in _chain(error) if isinstance(e, ssl.SSLError)]
    untrusted = next((e for e in tls if isinstance(e, ssl.SSLCertVerificationError)), None)
    if untrusted is not None:
        detail = untrusted.verify_message or "certificate verification failed"
        return Diagnosis(
            "untrusted", f"Vault at {addr} has a TLS certificate this client rejects ({detail})"
        )
    reasons = [r for r in (getattr(e, "reason", None) for e in tls) if isinstance(r, str)]
    if any(r in _NOT_TLS for r in reasons):
        return Diagnosis("plain_http", f"Vault at {addr} answers plain HTTP, not TLS")
    if tls:
        reason = reasons[0] if reasons else type(tls[-1]).__name__
        return Diagnosis("untrusted", f"Vault at {addr} failed the TLS handshake ({reason})")
    if len(addrs) > 1:
        text = f"none of the {len(addrs)} Vault nodes is answering ({node_list(addrs)}; "
        return Diagnosis("unreachable", f"{text}{_why(error)})")
    return Diagnosis("unreachable", f"Vault at {addr} is not answering ({_why(error)})")


def _why(error: VaultError) -> str:
    """A few words for a failed connection: refused, name not found, timed out, ..."""
    if isinstance(error, VaultTimeout) or _find(error, httpx.TimeoutException) is not None:
        return "no answer in time"
    if _find(error, socket.gaierror) is not None:
        return "host name not found"
    os_error = _find(error, OSError)
    if isinstance(os_error, ConnectionRefusedError) or (
        os_error is not None and os_error.errno == errno.ECONNREFUSED
    ):
        return "connection refused"
    if os_error is not None and os_error.strerror:
        return os_error.strerror.lower()
    cause = _find(error, httpx.TransportError)
    text = str(cause).splitlines()[0] if cause is not None and str(cause) else ""
    if "refused" in text.lower():
        return "connection refused"
    return type(cause).__name__ if cause is not None else "no response"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and its causes, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        current = current.__cause__ or current.__context__


def _find(error: BaseException, cls: type[E]) -> E | None:
    """The first exception of ``cls`` in ``error``'s cause chain."""
    return next((e for e in _chain(error) if isinstance(e, cls)), None)
