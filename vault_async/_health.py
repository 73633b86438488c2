"""What /healthz and /metrics report, computed from a :class:`VaultRuntime`.

Status: ``failing`` when no valid database credential is held, ``degraded`` when the
credential is valid but Vault has not answered recently or renewals fail, ``ok`` otherwise.
Nothing here shows a password, a token or a full lease id.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any, Literal

from ._prometheus import MetricFamily
from ._runtime import VaultRuntime

__all__ = ["HealthStatus", "health_payload", "health_status", "metric_families"]

HealthStatus = Literal["ok", "degraded", "failing"]

FAILING_MARGIN = 0.5
"""Seconds: a credential with less validity left than this cannot carry a request."""

_STATE_FIELDS = (
    "kind",
    "ttl_remaining",
    "expires_at",
    "renewable",
    "last_renewal",
    "generation",
    "renewals",
    "rotations",
    "consecutive_failures",
    "last_error_class",
    "degraded",
)


def health_status(db: Any, token: Any, *, vault_recent: bool, plain: bool = False) -> HealthStatus:
    """ok, degraded (credential still valid but Vault or renewals fail) or failing (none valid).

    ``db`` and ``token`` are the lease engine's ``SecretState`` objects (or None).
    """
    if plain:
        return "ok"
    if db is None or not getattr(db, "ready", True):
        return "failing"
    ttl = getattr(db, "ttl_remaining", None)
    if ttl is not None and ttl <= FAILING_MARGIN:
        return "failing"
    troubled = [db] if token is None else [db, token]
    if not vault_recent or any(s.degraded or s.consecutive_failures > 0 for s in troubled):
        return "degraded"
    return "ok"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 3)
    return value


def _state_view(state: Any) -> dict[str, Any] | None:
    if state is None:
        return None
    return {name: _jsonable(getattr(state, name, None)) for name in _STATE_FIELDS}


def health_payload(runtime: VaultRuntime) -> tuple[HealthStatus, dict[str, Any]]:
    """The /healthz body: no password, no token, no lease id."""
    snapshot = runtime.snapshot()
    db = snapshot.get(runtime.db_secret) if runtime.db_secret else None
    token = snapshot.get(runtime.token_secret) if runtime.token_secret else None
    recent = runtime.vault_answered_recently()
    status = health_status(db, token, vault_recent=recent, plain=runtime.mode == "plain")
    last = runtime.latency.last_success
    stats = runtime.binding.stats
    body: dict[str, Any] = {
        "status": status,
        "mode": runtime.mode,
        "process": {"pid": os.getpid()},
        "database": _state_view(db),
        "token": None if token is None else {
            "ttl_remaining": _jsonable(token.ttl_remaining),
            "renewable": token.renewable,
            "consecutive_failures": token.consecutive_failures,
            "degraded": token.degraded,
        },
        "vault": {
            "answered_recently": recent,
            "seconds_since_answer": None if last is None else round(time.monotonic() - last, 3),
        },
        "pool": {
            "swaps": stats.pool_swaps,
            "login_retries": stats.login_retries,
            "stale_connections_closed": stats.stale_closed,
            "connects": stats.connects,
        },
    }
    return status, body


def metric_families(runtime: VaultRuntime) -> list[MetricFamily]:
    """Renewals, rotations, failures, ttl remaining per secret, and Vault latency."""
    renewals = MetricFamily("vault_async_renewals_total", "counter", "Successful renewals.")
    rotations = MetricFamily("vault_async_rotations_total", "counter", "Credential rotations.")
    failures = MetricFamily(
        "vault_async_failures_total", "counter", "Failed renewals or acquisitions."
    )
    consecutive = MetricFamily(
        "vault_async_consecutive_failures", "gauge", "Failures since the last success."
    )
    ttl = MetricFamily("vault_async_ttl_remaining_seconds", "gauge", "Seconds of validity left.")
    for name, state in sorted(runtime.snapshot().items()):
        labels = {"secret": str(name), "kind": str(state.kind)}
        renewals.add(state.renewals, **labels)
        rotations.add(state.rotations, **labels)
        failures.add(getattr(state, "total_failures", state.consecutive_failures), **labels)
        consecutive.add(state.consecutive_failures, **labels)
        if state.ttl_remaining is not None:
            ttl.add(state.ttl_remaining, **labels)
    stats = runtime.binding.stats
    swaps = MetricFamily("vault_async_pool_swaps_total", "counter", "Pool swaps on rotation.")
    retries = MetricFamily(
        "vault_async_login_retries_total", "counter", "Connects retried after a rejected login."
    )
    return [
        renewals,
        rotations,
        failures,
        consecutive,
        ttl,
        swaps.add(stats.pool_swaps),
        retries.add(stats.login_retries),
        runtime.latency.family("vault_async_vault_request_duration_seconds"),
    ]
