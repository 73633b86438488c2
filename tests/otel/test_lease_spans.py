"""Lease events to spans: the operation named, a failure marked as one."""

from __future__ import annotations

import pytest

from tests.otel.conftest import Telemetry
from vault_async.lifecycle import EventKind, LeaseEvent, SecretKind
from vault_async.otel._leases import LeaseSpans


@pytest.mark.parametrize(
    ("kind", "reason", "secret_kind", "span"),
    [
        ("acquired", None, "database_dynamic", "acquire"),
        ("acquired", None, "token", "login"),
        ("renewed", None, "token", "renew"),
        ("rotated", "rotate", "database_static", "rotate"),
        ("rotated", "forbidden", "token", "relogin"),
        ("revoked", None, "database_dynamic", "revoke"),
        ("expiring", "no_renewal", "database_dynamic", "expiring"),
        ("failed", "renew", "database_dynamic", "renew"),
        ("failed", "rotate", "database_dynamic", "rotate"),
        ("failed", "forbidden", "token", "relogin"),
    ],
)
def test_event_becomes_one_span(
    telemetry: Telemetry, kind: EventKind, reason: str | None, secret_kind: SecretKind, span: str
) -> None:
    spans = LeaseSpans(telemetry.tracer_provider.get_tracer("test"), {"s": secret_kind}.get)
    error = "Forbidden" if kind == "failed" else None
    spans(LeaseEvent(kind, "s", 3, lease_id_suffix="abc123", error_class=error, reason=reason))
    (done,) = telemetry.finished()
    assert done.name == f"vault_async.lease.{span}"
    assert done.status.is_ok is (kind != "failed")
    attributes = dict(done.attributes or {})
    assert attributes.pop("error.type", None) == error
    assert attributes.pop("vault.lease.reason", None) == reason
    assert attributes == {
        "vault.secret": "s",
        "vault.secret.kind": secret_kind,
        "vault.lease.event": kind,
        "vault.lease.generation": 3,
    }
