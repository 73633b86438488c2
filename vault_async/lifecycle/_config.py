"""``LeaseConfig``: every tunable of the lease engine in one frozen value object."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_DRAIN_PERIOD", "LeaseConfig"]

DEFAULT_DRAIN_PERIOD = 30.0


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    """How the lease engine times its work; the defaults suit a service.

    Attributes:
        revoke_on_shutdown: revoke the leases and the login token it created on exit.
        revoke_token_on_shutdown: override for the token alone (default: as above).
        drain_period: for a handle no connection pool reports its connections to, seconds a
            replaced lease stays valid before it is revoked. A pool binding that reports
            its checked-out connections (``ManagedSecret.track_use``) instead has the old
            lease revoked as soon as its last connection is returned.
        revoke_lead: a replaced lease still in use is revoked this long before it expires (at
            most half the time it had left when it was replaced).
        rotation_lead: seconds before expiry a replacement is obtained (default: the grace).
        min_rotation_lead: lower bound of that lead when the lease is long enough.
        backoff_base / backoff_max / backoff_floor: retry timing after an error.
        expired_retry_max: with no valid credential left (expired during an outage, or never
            obtained), the longest wait between two attempts (default 5 s, below ``backoff_max``):
            nothing works until one succeeds, so the service is serving again within a few
            seconds of Vault answering. Each attempt is a single request per secret, and the
            full jitter below this bound spreads a fleet's requests.
        max_quota_wait: longest wait after a 429, whatever its ``Retry-After`` says (a quota's
            ``block_interval`` or a bogus header could ask for days, and with no valid
            credential nothing else bounds the wait). The default, twice ``backoff_max``,
            honours in full, jitter included, any ``Retry-After`` up to a minute.
        op_timeout: upper bound on one Vault call (also capped by the lease left).
        shutdown_timeout: bound on the whole exit, revocations included.
        max_concurrency: Vault calls in flight at once.
        static_reread_delay: a static role's password is re-read this long after its rotation;
            a credential with no more time left than this is re-read no sooner.
        min_force_interval: ``force_rotate`` calls closer than this share one rotation.
        relogin_interval: at most one login per this many seconds when a token is refused.
        startup_jitter: before its first login and credential request, the engine waits a
            uniform random time in [0, startup_jitter] seconds, drawn once per engine, so a
            fleet started together spreads its first requests (0, the default: no wait).
    """

    revoke_on_shutdown: bool = True
    revoke_token_on_shutdown: bool | None = None
    drain_period: float = DEFAULT_DRAIN_PERIOD
    revoke_lead: float = 5.0
    rotation_lead: float | None = None
    min_rotation_lead: float = 30.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    backoff_floor: float = 0.25
    expired_retry_max: float = 5.0
    max_quota_wait: float = 120.0
    op_timeout: float = 30.0
    shutdown_timeout: float = 10.0
    max_concurrency: int = 32
    static_reread_delay: float = 1.0
    min_force_interval: float = 1.0
    relogin_interval: float = 5.0
    startup_jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.drain_period < 0 or self.revoke_lead < 0:
            raise ValueError("LeaseConfig: drain_period and revoke_lead must be >= 0")
        if self.shutdown_timeout <= 0 or self.op_timeout <= 0:
            raise ValueError("LeaseConfig: shutdown_timeout and op_timeout must be > 0")
        if self.max_concurrency < 1:
            raise ValueError("LeaseConfig: max_concurrency must be >= 1")
        if not 0 < self.backoff_floor <= self.backoff_max or self.backoff_base <= 0:
            raise ValueError("LeaseConfig: need 0 < backoff_floor <= backoff_max, backoff_base > 0")
        if not self.backoff_floor <= self.max_quota_wait < math.inf:
            raise ValueError(
                "LeaseConfig: max_quota_wait must be a finite number of seconds >= backoff_floor"
            )
        if not self.backoff_floor <= self.expired_retry_max < math.inf:
            raise ValueError(
                "LeaseConfig: expired_retry_max must be a finite number of seconds >= backoff_floor"
            )
        if self.relogin_interval < 0 or self.min_force_interval < 0:
            raise ValueError("LeaseConfig: relogin_interval and min_force_interval must be >= 0")
        if not 0.0 <= self.startup_jitter < math.inf:
            raise ValueError("LeaseConfig: startup_jitter must be a finite number of seconds >= 0")

    @property
    def revokes_token(self) -> bool:
        """Whether the login token is revoked on exit."""
        if self.revoke_token_on_shutdown is None:
            return self.revoke_on_shutdown
        return self.revoke_token_on_shutdown
