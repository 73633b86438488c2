"""The one place where a failed request becomes a VaultError, whatever the transport.

Two kinds of failure: no response (an ``httpx.TransportError``, which every transport
raises, see ``_transport``) and an error status. Messages name the error class or Vault's
reason, never the token or the body; Vault's ``errors`` are kept with every string we sent
(token, body values and body keys) replaced by ``<redacted>``, since Vault may echo them.
Only the request field names this client itself sends (``data``, ``custom_metadata``, ...)
are left readable. At most MAX_ERRORS errors of MAX_ERROR_CHARS characters are kept (only
those are scrubbed), with a note of how much was cut; the HTTP reason phrase is scrubbed and
cut to MAX_REASON_CHARS.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Mapping, Sequence

import httpx

from ._exceptions import (
    RateLimited,
    VaultConnectionError,
    VaultError,
    VaultTimeout,
    error_for_status,
)
from ._json import JSONObject
from ._parse import decode_body, error_messages
from ._retry import parse_retry_after
from ._transport import RawResponse

__all__ = [
    "HTTP_TO_HTTPS",
    "TransportFailure",
    "node_list",
    "status_error",
    "transport_failure",
]

_MIN_SCRUB_LEN = 4
MAX_ERROR_CHARS = 500  # per error kept in an exception
MAX_ERRORS = 5  # errors kept in an exception
MAX_REASON_CHARS = 100  # of the HTTP reason phrase kept in an exception
MAX_LISTED_NODES = 5  # node addresses named in one message
MAX_ADDR_CHARS = 80  # of each node address named
# The field names of the client's own request bodies: API vocabulary, never secret.
_FIELD_NAMES = frozenset(
    {
        "accessor", "batch_input", "bits", "cas", "cas_required", "ciphertext", "context",
        "custom_metadata", "data", "delete_version_after", "derived", "display_name",
        "explicit_max_ttl", "exportable", "increment", "jwt", "key_version", "lease_id",
        "max_versions", "meta", "options", "password", "plaintext", "policies", "renewable",
        "reset", "role", "role_id", "secret_id", "token", "ttl", "type", "user", "versions",
    }
)
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
HTTP_TO_HTTPS = "Client sent an HTTP request to an HTTPS server"
"""A TLS listener's fixed answer (400, plain text) to plain HTTP: kept, it names the cause."""


class TransportFailure:
    """A translated transport error and whether the request surely never reached Vault."""

    __slots__ = ("error", "unsent")

    def __init__(self, error: VaultError, unsent: bool) -> None:
        self.error = error
        self.unsent = unsent


def transport_failure(
    exc: httpx.TransportError, *, method: str, path: str, nodes: Sequence[str] = ()
) -> TransportFailure:
    """Translate a transport error; the message names httpx's error class, no payload.

    ``nodes``: the addresses that gave no response, named when the client has several
    (one address keeps the message it always had). Only a failed connect is "certainly
    unsent"; a reset or timeout after connecting may have reached Vault, so requests
    that create things are not retried then.
    """
    kind = type(exc).__name__ + _tls_detail(exc)
    timed_out = isinstance(exc, httpx.TimeoutException)
    if len(nodes) > 1:
        text = (
            f"no response from any of {len(nodes)} Vault nodes ({node_list(nodes)}; last: {kind})"
        )
    elif nodes:
        at = node_list(nodes)
        text = (
            f"request timed out at {at} ({kind})"
            if timed_out
            else (f"no response from Vault at {at} ({kind})")
        )
    else:
        text = f"request timed out ({kind})" if timed_out else f"no response from Vault ({kind})"
    error: VaultError
    if timed_out:
        error = VaultTimeout(text, method=method, path=path)
    else:
        error = VaultConnectionError(text, method=method, path=path)
    return TransportFailure(error, isinstance(exc, _UNSENT))


def node_list(addrs: Sequence[str]) -> str:
    """Node addresses for a one-line message: at most MAX_LISTED_NODES, each cut short."""
    shown = [
        addr if len(addr) <= MAX_ADDR_CHARS else addr[: MAX_ADDR_CHARS - 3] + "..."
        for addr in addrs[:MAX_LISTED_NODES]
    ]
    more = len(addrs) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def _tls_detail(exc: BaseException) -> str:
    """Name a TLS failure, found in the cause chain (aiohttp's and httpcore's alike)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return ", TLS certificate verification failed"
        if isinstance(cause, ssl.SSLError):
            return ", TLS/SSL handshake failed"
        cause = cause.__cause__ or cause.__context__
    return ""


def status_error(
    response: RawResponse,
    *,
    method: str,
    path: str,
    sent: JSONObject | None,
    token: str | None,
) -> VaultError:
    """The error for an error status: one class per status, Vault's errors scrubbed."""
    status = response.status
    try:
        errors = error_messages(decode_body(response.content))
    except VaultError:
        plain_to_tls = HTTP_TO_HTTPS.encode() in response.content[:200]
        errors = (HTTP_TO_HTTPS,) if plain_to_tls else ("<non-JSON error body>",)
    # Only the errors kept are scrubbed (a hostile body may hold millions), then cut.
    secrets = _secret_strings(sent, token)
    errors = _cut(_scrub(errors[:MAX_ERRORS], secrets), total=len(errors))
    cls = error_for_status(status)
    if cls is RateLimited:
        return RateLimited(
            "rate limited",
            status=status,
            method=method,
            path=path,
            errors=errors,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    reason = _cut_text(_scrub((response.reason,), secrets)[0], MAX_REASON_CHARS)
    return cls(reason or "error", status=status, method=method, path=path, errors=errors)


def _secret_strings(body: JSONObject | None, token: str | None) -> list[str]:
    """Every string we sent (token, body keys and values): none may show up in an error."""
    found: list[str] = [token] if token else []

    def walk(value: object) -> None:
        if isinstance(value, str):
            if len(value) >= _MIN_SCRUB_LEN:
                found.append(value)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                if isinstance(k, str) and k not in _FIELD_NAMES and len(k) >= _MIN_SCRUB_LEN:
                    found.append(k)
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk(body)
    return _with_escaped_forms(found)


# A secret that may come back escaped: a quote, backslash, <, >, & or anything but printable
# ASCII (the full forms are only built for these).
_MAY_BE_ESCAPED = re.compile(r'[^ -~]|["\\<>&]')
_GO_SHORT = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def _go_quoted(text: str) -> str:
    """The body of Go's ``strconv.Quote(text)``: how OpenBao's %q echoes a key."""
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch in _GO_SHORT:
            out.append(_GO_SHORT[ch])
        elif ch.isprintable():  # Go's unicode.IsPrint: letters, marks, numbers, P, S, ' '
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def _json_quoted(text: str) -> str:
    """The body of Go's ``json.Marshal(text)`` (HTML-safe, U+2028/9 escaped)."""
    body = json.dumps(text, ensure_ascii=False)[1:-1]
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        body = body.replace(raw, escaped)
    return body


def _with_escaped_forms(secrets: list[str]) -> list[str]:
    """Each secret, plus the forms Vault may echo it in (Go-quoted, JSON-escaped)."""
    found = list(secrets)
    for secret in secrets:
        if _MAY_BE_ESCAPED.search(secret):
            for form in (_go_quoted(secret), _json_quoted(secret)):
                if form != secret and form not in found:
                    found.append(form)
    return found


def _scrub(errors: tuple[str, ...], secrets: list[str]) -> tuple[str, ...]:
    if not secrets:
        return errors
    out = []
    for message in errors:
        for secret in secrets:
            if secret in message:
                message = message.replace(secret, "<redacted>")
        out.append(message)
    return tuple(out)


def _cut(errors: tuple[str, ...], total: int) -> tuple[str, ...]:
    """The (at most MAX_ERRORS) errors kept out of ``total``, cut to MAX_ERROR_CHARS each."""
    kept = [_cut_text(e, MAX_ERROR_CHARS) for e in errors[:MAX_ERRORS]]
    if total > MAX_ERRORS:
        kept.append(f"[{total - MAX_ERRORS} more errors]")
    return tuple(kept)


def _cut_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"
