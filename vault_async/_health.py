"""What /healthz reports, computed from a :class:`VaultRuntime`.

Status: ``failing`` when no valid database credential or token is held, ``degraded`` when the
credential is valid but Vault has not answered recently or renewals fail, ``ok`` otherwise.
Nothing here shows a password, a token or a full lease id.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .lifecycle import SecretState
    from .runtime import VaultRuntime

__all__ = ["HealthStatus", "health_payload", "health_status"]

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


def health_status(
    db: SecretState | None,
    token: SecretState | None,
    *,
    vault_recent: bool,
    plain: bool = False,
) -> HealthStatus:
    """ok, degraded (credential still valid but Vault or renewals fail) or failing (none valid).

    ``db`` and ``token`` are the lease engine's states of those secrets (or None).
    """
    if plain:
        return "ok"
    if db is None or not db.ready:
        return "failing"
    if any(
        s is not None and s.ttl_remaining is not None and s.ttl_remaining <= FAILING_MARGIN
        for s in (db, token)
    ):
        return "failing"  # an expired token cannot renew or replace anything
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


def _state_view(state: SecretState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {name: _jsonable(getattr(state, name)) for name in _STATE_FIELDS}


def health_payload(runtime: VaultRuntime) -> tuple[HealthStatus, dict[str, Any]]:
    """The /healthz body: no password, no token, no lease id."""
    snapshot = runtime.snapshot()
    db = snapshot.get(runtime.db_secret) if runtime.db_secret else None
    token = snapshot.get(runtime.token_secret) if runtime.token_secret else None
    # A credential file without a Vault client: there is no Vault to have answered.
    no_vault = runtime.mode == "file" and runtime.client is None
    recent = None if no_vault else runtime.vault_answered_recently()
    status = health_status(
        db, token, vault_recent=recent is not False, plain=runtime.mode == "plain"
    )
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
            "last_node": runtime.vault_last_node,
            "nodes": [{"addr": node.addr, "state": node.state} for node in runtime.vault_nodes],
        },
        "pool": {
            "swaps": stats.pool_swaps,
            "login_retries": stats.login_retries,
            "stale_connections_closed": stats.stale_closed,
            "connects": stats.connects,
            "prewarmed": getattr(stats, "prewarmed", 0),
        },
    }
    return status, body

