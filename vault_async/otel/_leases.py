"""Spans of the lease engine's events: acquire, renew, rotate, re-login, revoke, expiring.

One subscriber on the engine's event bus turns each :class:`LeaseEvent` into a short span
named ``vault_async.lease.<operation>``. A token's new login is ``login`` the first time
and ``relogin`` after; a failure is a span of the operation that failed, with an ERROR
status and ``error.type``. Attributes name the secret as the engine does
(``database/creds/app``), its kind, generation and reason; never a lease id or a value.

The event comes once the step is done, so the span marks the moment, not the duration; the
Vault requests the step made have spans of their own.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.trace import Status, StatusCode, Tracer

from ..lifecycle import LeaseEvent, SecretKind

__all__ = ["LeaseSpans", "operation"]

SPAN_PREFIX = "vault_async.lease."


def operation(event: LeaseEvent, kind: SecretKind | None) -> str:
    """What the engine did (or failed to do) that ``event`` tells of."""
    token = kind == "token"
    if event.kind == "acquired":
        return "login" if token else "acquire"
    if event.kind == "renewed":
        return "renew"
    if event.kind == "rotated":
        return "relogin" if token else "rotate"
    if event.kind == "revoked":
        return "revoke"
    if event.kind == "failed":
        if event.reason == "renew":
            return "renew"
        return "relogin" if token else "rotate"
    return "expiring"


class LeaseSpans:
    """An event-bus subscriber: each lease event becomes one span."""

    __slots__ = ("_kind_of", "_tracer")

    def __init__(self, tracer: Tracer, kind_of: Callable[[str], SecretKind | None]) -> None:
        self._tracer = tracer
        self._kind_of = kind_of

    def __call__(self, event: LeaseEvent) -> None:
        kind = self._kind_of(event.name)
        attributes: dict[str, str | int] = {
            "vault.secret": event.name,
            "vault.lease.event": event.kind,
            "vault.lease.generation": event.generation,
        }
        if kind is not None:
            attributes["vault.secret.kind"] = kind
        if event.reason:
            attributes["vault.lease.reason"] = event.reason
        span = self._tracer.start_span(
            SPAN_PREFIX + operation(event, kind), attributes=attributes
        )
        if event.kind == "failed":
            span.set_attribute("error.type", event.error_class or "Exception")
            span.set_status(Status(StatusCode.ERROR))
        span.end()
