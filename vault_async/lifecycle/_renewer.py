"""The renewer: one step for one secret, top to bottom.

Like ``doRenewWithOptions`` in Vault's ``api/lifetime_watcher.go``: renew (or obtain
a new credential when renewing cannot help), record the result, announce it, plan
the next step with the policy; on error count it, back off as the policy says, and
plan the retry. Calls that create something in Vault (a login, a credential) are
shielded from the caller's cancellation: what Vault issued is always recorded, and
revoked if the engine has shut down meanwhile.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable

import anyio

from .. import _exceptions as errors
from .._log_limit import LogLimiter
from . import _policy as policy
from ._core import Core
from ._drain import Drain
from ._handle import ManagedSecret
from ._logfields import lease_fields
from ._models import Grant, Lease, lease_id_suffix
from ._policy import Step
from ._tokens import TokenGuard

__all__ = ["Renewer"]

logger = logging.getLogger("vault_async.lifecycle")


def _refused(exc: Exception) -> bool:
    """Vault answered and said no: a 4xx other than 429 (a policy, an unknown role)."""
    status = getattr(exc, "status", None) or 0
    return not isinstance(exc, errors.RateLimited) and 400 <= status < 500


def _gone(handle: ManagedSecret, step: Step, exc: Exception) -> bool:
    """A renew answered that Vault no longer knows the credential (replace it at once)."""
    if step.action != "renew":
        return False
    if isinstance(exc, errors.InvalidRequest | errors.InvalidPath):
        return True  # 400/404: the lease was revoked or never existed
    return handle.kind == "token" and isinstance(exc, errors.Forbidden)


class Renewer:
    """Performs the steps the scheduler hands it, and ``force_rotate``."""

    __slots__ = ("_core", "_log_limit", "_ready", "drain", "guard")

    def __init__(self, core: Core) -> None:
        self._core = core
        self.guard = TokenGuard(core, self.replace, self.fail)
        self.drain = Drain(core, self.guard.release)
        self._ready: anyio.Event | None = None
        # With no valid credential the retries come every few seconds for as long as Vault
        # is away: the same failure is a WARNING once per interval, the repeats at DEBUG.
        self._log_limit = LogLimiter(clock=core.clock.now)

    # -- the scheduled step ----------------------------------------------------------------

    async def run(self, handle: ManagedSecret, step: Step) -> None:
        """Perform ``step`` for ``handle`` (skipped if re-planned while it waited)."""
        await self._wait_for_token(handle)
        async with handle.locked():
            if handle.closed or self._core.queue.planned(handle) is not None:
                return  # shut down, or re-planned (e.g. by force_rotate) while waiting
            try:
                if step.action == "renew" and self._renewable(handle):
                    await self.renew(handle)
                else:
                    await self.replace(handle, "acquire" if handle.current is None else "rotate")
            except Exception as exc:
                await self.fail(handle, step, exc)

    async def renew(self, handle: ManagedSecret) -> None:
        """Extend the credential in force."""
        lease, renew = handle.current, handle.source.renew
        assert lease is not None
        assert renew is not None
        grant, _ = await self.guard.call(handle, lambda: self._bounded(handle, renew(lease)))
        capped = handle.extend(grant, now=self._core.clock.now(), rng=self._core.rng)
        logger.debug(
            "lease.renewed",
            extra=lease_fields(
                self._core, handle, lease=lease_id_suffix(lease.lease_id), capped=capped
            ),
        )
        await self._core.emit(handle, "renewed")
        await self._plan(handle)

    async def replace(self, handle: ManagedSecret, reason: str) -> None:
        """Obtain a new credential, make it current, announce it, drain the old one."""
        core = self._core
        first = handle.current is None
        if handle.kind == "token":
            handle.last_login_at = core.clock.now()  # an attempt counts, failed or not
        with anyio.CancelScope(shield=True):
            with anyio.fail_after(core.config.op_timeout):
                grant, used = await self.guard.call(handle, handle.source.acquire, creates=True)
            # A static role's password does not die with the token that read it.
            owner = 0 if handle.kind == "database_static" else used
            new, old = handle.install(grant, now=core.clock.now(), owner=owner, rng=core.rng)
            self.guard.release(handle.parent, used)  # the token used may now be unneeded
            if handle.closed:
                # The engine shut down while Vault was issuing it: nothing will use it.
                await self.drain.revoke(handle, new, final=True)
                return
        self._notify_ready()
        if first:
            logger.info(
                "lease.acquired",
                extra=lease_fields(core, handle, lease=lease_id_suffix(new.lease_id)),
            )
            await core.emit(handle, "acquired")
        elif old is not None:
            await self._rotated(handle, old, new, reason)
        await self._plan(handle)

    async def _rotated(self, handle: ManagedSecret, old: Lease, new: Lease, reason: str) -> None:
        logger.info(
            "lease.rotated",
            extra=lease_fields(
                self._core, handle, lease=lease_id_suffix(new.lease_id), reason=reason
            ),
        )
        # Queue the old credential's end before telling subscribers: a subscriber may take
        # its time, and a shutdown cancelling it must not leave the old lease unrevoked.
        self.drain.retire(handle, old, handle.generation - 1)
        if handle.kind == "token":
            self.guard.superseded(handle, old, handle.generation - 1)
        now = self._core.clock.now()
        revoke_by = policy.drain_due(old, now=now, tracked=True, in_use=1, config=self._core.config)
        await self._core.emit(
            handle, "rotated", reason=reason, previous_valid_for=max(0.0, revoke_by - now)
        )

    async def fail(self, handle: ManagedSecret, step: Step, exc: Exception) -> None:
        """Count, log and announce a failure, then plan the retry."""
        core = self._core
        now = core.clock.now()
        gone = _gone(handle, step, exc)
        if gone:
            handle.invalidate(now)
        lease = handle.current
        last_login = handle.last_login_at if handle.kind == "token" else None
        limited = isinstance(exc, errors.RateLimited)
        asked = exc.retry_after if isinstance(exc, errors.RateLimited) else None
        retry = policy.after_failure(
            step.action,
            # Retries are bounded by when the lease stops working: its token's end, if sooner.
            None if lease is None else core.effective(handle, lease),
            gone=gone,
            required=step.required,
            attempt=handle.consecutive_failures + 1,
            grace=handle.grace,
            now=now,
            config=core.config,
            rng=core.rng,
            not_before=-math.inf
            if last_login is None
            else last_login + core.config.relogin_interval,
            retry_after=asked,
            refused=_refused(exc),
        )
        # A quota refusing again and again is one condition: warned once, then told quietly.
        again = limited and handle.last_error_class == "RateLimited"
        quiet = again and handle.consecutive_failures > 0
        handle.failed(exc, retry.due, now)
        fields = lease_fields(
            core,
            handle,
            error=exc,
            action=step.action,
            status=getattr(exc, "status", None),
            consecutive_failures=handle.consecutive_failures,
            # When the engine tries again (after a 429, also what Vault asked for).
            retry_in=round(max(0.0, retry.due - now), 1),
        )
        if limited:
            fields["retry_after"] = asked
        level = logging.DEBUG if quiet else logging.WARNING
        if not quiet and (lease is None or core.expires_at(handle, lease) <= now):
            level, repeats = self._log_limit.check(f"{handle.name}:{handle.last_error_class}")
            if level == logging.WARNING:
                fields["suppressed"] = repeats
        logger.log(level, "lease.failed", extra=fields)
        await core.emit(handle, "failed", error_class=handle.last_error_class, reason=step.action)
        core.plan(handle, retry)
        if retry.expiring is not None and handle.announce_expiring():
            await core.emit(handle, "expiring", reason=retry.expiring)

    # -- asked by a caller ------------------------------------------------------------------

    async def force_rotate(
        self, handle: ManagedSecret, reason: str, generation: int | None = None
    ) -> Lease:
        """Replace the credential unless someone just did; honour the backoff of a failure.

        With no valid credential left, the backoff gives way: the caller (a pool whose login
        was rejected) cannot work until an attempt succeeds, so one is made at once, at most
        once per ``min_force_interval`` (see :func:`policy.force_may_try`). ``generation``
        is the one that failed (by default the one in force now): once it has been replaced,
        the current credential is the answer.
        """
        if generation is None:
            generation = handle.generation
        core = self._core
        async with handle.locked():
            now = core.clock.now()
            current = handle.current
            since = (
                handle.last_rotation
                if handle.last_rotation is not None
                else (current.obtained_at if current is not None else -math.inf)
            )
            if current is not None and (
                handle.generation != generation or now - since < core.config.min_force_interval
            ):
                return current
            error = handle.last_error
            valid = current is not None and core.expires_at(handle, current) > now
            if error is not None and not policy.force_may_try(
                now=now,
                retry_at=handle.retry_at,
                failed_at=handle.failed_at,
                valid=valid,
                rate_limited=isinstance(error, errors.RateLimited),
                refused=_refused(error),
                config=core.config,
            ):
                logger.debug(
                    "lease.force_rotate_backing_off",
                    extra=lease_fields(core, handle, error=error),
                )
                raise error.with_traceback(None)
            try:
                await self.replace(handle, reason)
            except Exception as exc:
                await self.fail(handle, Step("rotate", now), exc)
                raise
        assert handle.current is not None
        return handle.current

    # -- waiting for credentials ---------------------------------------------------------------

    async def wait_ready(self, handle: ManagedSecret) -> None:
        """Wait until ``handle`` holds a credential that has not expired.

        A credential expiring this very instant counts (a static role read with ttl 0:
        its password works until Vault's rotation, which the re-read follows).
        """
        while handle.current is None or handle.current.expires_at < self._core.clock.now():
            if self._ready is None:
                self._ready = anyio.Event()
            await self._ready.wait()

    def _notify_ready(self) -> None:
        if self._ready is not None:
            self._ready.set()
            self._ready = None

    async def _wait_for_token(self, handle: ManagedSecret) -> None:
        """A secret obtained with a managed token waits (bounded) for a valid token."""
        token = handle.parent
        if token is not None and token is not handle:
            with anyio.move_on_after(self._core.config.op_timeout):
                await self.wait_ready(token)

    # -- helpers -------------------------------------------------------------------------------

    def _renewable(self, handle: ManagedSecret) -> bool:
        lease = handle.current
        return (
            lease is not None
            and handle.source.renew is not None
            and math.isinf(self._core.owner_expires_at(handle, lease))
        )

    async def _bounded(self, handle: ManagedSecret, call: Awaitable[Grant]) -> Grant:
        """Bound a renewal by ``op_timeout`` and by a third of the lease left.

        A hung Vault (SIGSTOP, a black-holed route) must not eat the whole remaining
        lease: a third leaves time for backoff and a retry or two.
        """
        lease = handle.current
        limit = self._core.config.op_timeout
        expires = math.inf if lease is None else self._core.expires_at(handle, lease)
        if not math.isinf(expires):
            limit = min(limit, max(1.0, (expires - self._core.clock.now()) / 3.0))
        with anyio.fail_after(limit):
            return await call

    async def _plan(self, handle: ManagedSecret) -> None:
        step = self._core.next_step(handle)
        self._core.plan(handle, step)
        if step is not None and step.expiring is not None and handle.announce_expiring():
            await self._core.emit(handle, "expiring", reason=step.expiring)
