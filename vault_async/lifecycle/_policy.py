"""The lease engine's policy: given a secret's state and the clock, its next step.

Every timing rule of the engine lives here, as small pure functions; nothing else
does timing maths. They follow Vault's ``api/lifetime_watcher.go``: renew at about
two thirds of the remaining lease, keep a random grace period of 10-20 % of the lease
so that many replicas do not renew in lockstep, and stop renewing (rotate instead)
once a renewal would land inside the grace period. On top of that:

* a lease obtained with a token that has since been replaced dies with that token,
  so it gets a *required* rotation before the old token expires (no renew may
  replace it: renewing does not move a lease to the new token);
* after a failure: full-jitter backoff, capped by half the lease left; with no valid
  credential left (expired during an outage, or never obtained) and no refusal from
  Vault (a 4xx), capped by ``expired_retry_max`` instead, and a ``force_rotate`` may
  try at once (at most once per ``min_force_interval``; not after a refusal from Vault,
  whose backoff holds): nothing works until an attempt
  succeeds; after a 429 that
  named a ``Retry-After``, that wait plus jitter (see ``quota_delay``), under the same cap
  and never longer than ``max_quota_wait``;
* a replaced lease is revoked once no connection uses it, or shortly before it
  expires anyway; a failed revocation is retried until the lease has expired.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ._config import LeaseConfig
from ._models import Action, Lease, SecretKind

__all__ = [
    "Step",
    "after_failure",
    "backoff_delay",
    "drain_due",
    "force_may_try",
    "grace_period",
    "is_capped",
    "next_step",
    "quota_delay",
    "renew_delay",
    "revoke_retry_due",
    "rotation_lead",
    "should_stop_renewing",
]


@dataclass(frozen=True, slots=True)
class Step:
    """What to do next for one secret, and when.

    ``required`` marks a rotation the secret cannot do without (its lease dies with a
    replaced token, or Vault no longer knows it): the queue never lets a renew
    replace it. ``expiring`` is set when the credential in force will not be renewed
    again, with the reason to announce.
    """

    action: Action
    due: float
    required: bool = False
    expiring: str | None = None


def grace_period(lease_duration: float, rng: random.Random) -> float:
    """A random grace period in [10 %, 20 %) of the lease (Vault's ``calculateGrace``)."""
    if lease_duration <= 0:
        return 0.0
    jitter_max = 0.1 * lease_duration
    return jitter_max + rng.random() * jitter_max


def renew_delay(remaining: float, grace: float) -> float:
    """Seconds to sleep before renewing: 2/3 of the remaining lease plus 1/3 of the grace.

    The grace share is the jitter: two replicas holding the same lease duration
    drew different graces, so they wake at different instants.
    """
    return max(0.0, remaining * 2.0 / 3.0 + grace / 3.0)


def should_stop_renewing(remaining: float, sleep: float, grace: float) -> bool:
    """True when renewing after ``sleep`` would leave no more than the grace period.

    Vault's watcher returns (asks for a new secret) in this case rather than
    leaving itself a tiny budget to renew a lease that is about to expire.
    """
    return remaining <= grace or remaining - sleep <= grace


def is_capped(new_duration: float, natural_duration: float) -> bool:
    """True when a renewal gave less than the lease's natural duration (max TTL reached).

    A second of slack: Vault reports whole seconds, and a TTL computed from two
    instants may round down by one without any cap being involved.
    """
    return new_duration + 1.0 < natural_duration


def rotation_lead(
    natural_duration: float,
    grace: float,
    configured: float | None = None,
    min_lead: float = 30.0,
) -> float:
    """How long before expiry a replacement must be obtained.

    The configured lead, by default the grace period, but at least ``min_lead``
    seconds when the lease allows it: a lease is never asked to give more than a
    third of its natural duration, so short test leases still renew a few times.
    """
    base = grace if configured is None else configured
    floor = min(min_lead, natural_duration / 3.0)
    return max(base, floor, 0.0)


def backoff_delay(
    attempt: int,
    rng: random.Random,
    *,
    base: float,
    cap: float,
    floor: float,
    remaining: float | None = None,
) -> float:
    """Exponential backoff with full jitter, never past the remaining lease, never below ``floor``.

    ``attempt`` counts from 1. The upper bound doubles per attempt up to ``cap``;
    the delay is drawn uniformly below it (full jitter), then clamped so a retry
    still happens while the lease is valid, and never faster than ``floor``.
    """
    exponent = min(max(attempt - 1, 0), 62)
    upper = min(cap, base * (2.0**exponent))
    delay = rng.random() * upper
    if remaining is not None:
        delay = min(delay, remaining)
    return max(floor, delay)


def quota_delay(
    retry_after: float,
    attempt: int,
    rng: random.Random,
    *,
    config: LeaseConfig,
    remaining: float | None,
) -> float:
    """The wait after a 429 that said ``Retry-After``: at least that, plus jitter, within bounds.

    The jitter is drawn uniformly below the larger of that wait and this attempt's
    exponential backoff bound (never above ``backoff_max``): a fleet refused in the same
    second comes back spread out, and an unhelpful ``Retry-After: 0`` (OpenBao rounds the
    quota's reset down) still backs off as attempts accumulate. The whole wait is at most
    ``max_quota_wait``: a longer ``Retry-After`` is shortened so that the jitter still
    fits below it (a fleet is not lined up on the cap). ``remaining`` (half the lease
    left) caps it too, so a credential still valid is retried before it expires even if
    that is sooner than Vault asked; ``backoff_floor`` bounds it below.
    """
    exponent = min(max(attempt - 1, 0), 62)
    backoff = config.backoff_base * (2.0**exponent)
    spread = min(max(retry_after, backoff), config.backoff_max, config.max_quota_wait / 2.0)
    least = min(retry_after, config.max_quota_wait - spread)
    delay = least + rng.random() * spread
    if remaining is not None:
        delay = min(delay, remaining)
    return max(config.backoff_floor, delay)


def next_step(
    kind: SecretKind,
    lease: Lease | None,
    *,
    natural: float,
    grace: float,
    capped: bool,
    can_renew: bool,
    owner_expires_at: float,
    read_at: float,
    now: float,
    config: LeaseConfig,
    rng: random.Random,
) -> Step | None:
    """The next step after a success; None when nothing is due until asked.

    ``owner_expires_at`` is when the token that obtained ``lease`` stops being
    kept alive: infinity while it is the managed token in force, its expiry once
    replaced (now, when it was refused). ``read_at`` is when the secret was last
    obtained (or read again).
    """
    if lease is None:
        return Step("rotate", now, required=True)
    lead = rotation_lead(natural, grace, config.rotation_lead, config.min_rotation_lead)
    if not math.isinf(owner_expires_at):
        # Spread the dependents of one token over the first half of the time left,
        # so a fleet's worth of leases does not ask Vault at the same instant.
        latest = min(lease.expires_at, owner_expires_at) - lead
        return Step("rotate", now + rng.random() * max(0.0, (latest - now) / 2.0), required=True)
    if math.isinf(lease.expires_at):
        return None
    if kind == "database_static":
        # Vault rotates the password when the ttl runs out: re-read just after.
        delay = config.static_reread_delay * (1.0 + rng.random())
        return Step("rotate", lease.expires_at + delay)
    remaining = lease.expires_at - now
    if lease.renewable and not capped and can_renew:
        sleep = renew_delay(remaining, grace)
        if not should_stop_renewing(remaining, sleep, grace):
            return Step("renew", now + sleep)
    reason = "max_ttl" if lease.renewable else "not_renewable"
    # A credential read moments ago with no time left (a given token whose ttl rounded to
    # 0) is not read again at once: that would read the same again, as fast as Vault answers.
    not_before = read_at + config.static_reread_delay
    return Step("rotate", max(now, lease.expires_at - lead, not_before), expiring=reason)


def after_failure(
    action: Action,
    lease: Lease | None,
    *,
    gone: bool,
    required: bool,
    attempt: int,
    grace: float,
    now: float,
    config: LeaseConfig,
    rng: random.Random,
    not_before: float = -math.inf,
    retry_after: float | None = None,
    refused: bool = False,
) -> Step:
    """The retry after a failed step; ``gone`` when Vault no longer knows the credential.

    A lease Vault no longer knows is replaced at once. Otherwise back off, never
    past half the lease left, so retries get denser near expiry; a failing renewal
    keeps the same credential (no pool swap once Vault is back) and only deep inside
    the grace period asks for a replacement instead. Nothing is retried before
    ``not_before`` (a login waits out the login interval). ``retry_after`` is the wait a
    rate-limit quota asked for (429 with ``Retry-After``): see :func:`quota_delay`.
    ``refused``: Vault answered and said no (a 4xx other than 429: a policy, an unknown
    role); asking again sooner would not change its answer, so an expired credential's short
    retries (``expired_retry_max``, meant for outages) do not apply.
    """
    if gone:
        return Step("rotate", max(now, not_before), required=True)
    remaining = None if lease is None else lease.expires_at - now
    valid = remaining is not None and remaining > 0
    cap = remaining / 2.0 if remaining is not None and valid else None
    if retry_after is not None:
        delay = quota_delay(retry_after, attempt, rng, config=config, remaining=cap)
    else:
        delay = backoff_delay(
            attempt,
            rng,
            base=config.backoff_base,
            # Nothing valid left: nothing works until an attempt succeeds, so keep trying often.
            cap=config.backoff_max
            if valid or refused
            else min(config.backoff_max, config.expired_retry_max),
            floor=config.backoff_floor,
            remaining=cap,
        )
    if action == "renew" and (remaining is None or remaining - delay <= grace / 2.0):
        due = max(now + delay, not_before)
        return Step("rotate", due, required=required, expiring="renewals_failing")
    return Step(
        action,
        max(now + delay, not_before) if action == "rotate" else now + delay,
        required=required,
    )


def force_may_try(
    *,
    now: float,
    retry_at: float | None,
    failed_at: float | None,
    valid: bool,
    rate_limited: bool,
    config: LeaseConfig,
    refused: bool = False,
) -> bool:
    """Whether a ``force_rotate`` may call Vault now, after the failure of ``failed_at``.

    Past the retry instant, yes. Before it, only with no valid credential left (the
    caller cannot work until an attempt succeeds) and at most once per
    ``min_force_interval``; never inside the wait a 429 asked for, nor after Vault refused
    (``refused``: a 4xx other than 429, which asking again sooner does not change).
    """
    if retry_at is None or now >= retry_at:
        return True
    if valid or rate_limited or refused or failed_at is None:
        return False
    return now - failed_at >= config.min_force_interval


def drain_due(old: Lease, *, now: float, tracked: bool, in_use: int, config: LeaseConfig) -> float:
    """When to revoke a replaced lease.

    With a pool reporting its connections: as soon as none of the old lease's is
    checked out. Without one: after the drain period. Either way shortly before the
    lease would expire anyway, so Vault never keeps it for nothing.
    """
    # Shortly before it expires, but never sooner than half the time it has left: a short
    # lease replaced near its end still lets the queries in flight on it finish.
    before_expiry = old.expires_at - min(config.revoke_lead, max(0.0, old.expires_at - now) / 2)
    if tracked:
        return now if in_use <= 0 else max(now, before_expiry)
    return max(now, min(now + config.drain_period, before_expiry))


def revoke_retry_due(
    old: Lease, *, attempt: int, now: float, config: LeaseConfig, rng: random.Random
) -> float | None:
    """When to retry a failed revocation; None once the lease has expired by itself."""
    due = now + backoff_delay(
        attempt, rng, base=config.backoff_base, cap=config.backoff_max, floor=config.backoff_floor
    )
    return due if due < old.expires_at else None
