"""The token guard: calls made with the managed token, and what a refusal means.

A 403 on a secret's call does not by itself mean the token is gone: a policy may
simply no longer allow that path. ``auth/token/lookup-self`` decides:

* the token is fine: the refusal belongs to that secret (it backs off; health says
  ``degraded``), and nobody logs in;
* the token is refused: one login for every caller (single-flight), at most one per
  ``relogin_interval``, then the call is retried once.

The guard also keeps the rule that no lease outlives its token: when the token is
replaced, every lease obtained with the old one gets a required rotation before the
old token expires, and the old token is revoked once no lease of it is left.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

from .. import _exceptions as errors
from ._core import Core
from ._logfields import lease_fields
from ._models import Lease
from ._policy import Step
from ._queue import Revocation

if TYPE_CHECKING:
    from ._handle import ManagedSecret

__all__ = ["TokenGuard"]

logger = logging.getLogger("vault_async.lifecycle")

_T = TypeVar("_T")
Replace = Callable[["ManagedSecret", str], Awaitable[None]]
Fail = Callable[["ManagedSecret", Step, Exception], Awaitable[None]]


class TokenGuard:
    """Single-flight token checks and logins for the handles riding on managed tokens."""

    __slots__ = ("_checking", "_core", "_fail", "_in_flight", "_replace", "_verdicts")

    def __init__(self, core: Core, replace: Replace, fail: Fail) -> None:
        self._core = core
        self._replace = replace
        self._fail = fail
        # token handle id -> (generation, when, accepted): the last lookup's verdict
        self._verdicts: dict[int, tuple[int, float, bool]] = {}
        self._checking: dict[int, anyio.Lock] = {}
        self._in_flight: dict[tuple[int, int], int] = {}  # (token id, generation) -> calls

    async def call(
        self, handle: ManagedSecret, fn: Callable[[], Awaitable[_T]], *, creates: bool = False
    ) -> tuple[_T, int]:
        """Call Vault for ``handle``; returns the result and the token generation it used.

        On a 403 the token is checked; only a refused token leads to a login and one
        retry. Any other answer is the secret's own and is raised as it came. A call that
        ``creates`` a lease leaves it to the caller to :meth:`release` the generation once
        the lease is recorded.
        """
        token = handle.parent
        if token is None or token is handle:
            return await fn(), 0
        seen = token.generation
        try:
            return await self._counted(token, seen, fn, creates), seen
        except errors.Forbidden as refused:
            if not await self._token_refused(token, seen):
                raise
            await self._relogin(token, seen, refused)
        seen = token.generation
        return await self._counted(token, seen, fn, creates), seen

    async def _counted(
        self, token: ManagedSecret, generation: int, fn: Callable[[], Awaitable[_T]], creates: bool
    ) -> _T:
        """Run ``fn`` counted as a call in flight with ``generation`` of ``token``.

        A replaced token is not revoked while a call made with it may still bring back a
        lease obtained with it.
        """
        key = (id(token), generation)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        succeeded = False
        try:
            result = await fn()
            succeeded = True
            return result
        finally:
            left = self._in_flight.pop(key) - 1
            if left:
                self._in_flight[key] = left
            if not (succeeded and creates):
                self.release(token, generation)

    async def _token_refused(self, token: ManagedSecret, seen: int) -> bool:
        """True when the token itself is refused (or was replaced since ``seen``)."""
        if token.generation != seen:
            return True
        check = token.source.check
        if check is None:
            return True
        # One lookup at a time per token; its verdict stands for the login interval.
        async with self._checking.setdefault(id(token), anyio.Lock()):
            now = self._core.clock.now()
            held = self._verdicts.get(id(token))
            if (
                held is not None
                and held[0] == seen
                and (now - held[1] < self._core.config.relogin_interval)
            ):
                return not held[2]
            accepted = await check()
            self._verdicts[id(token)] = (seen, now, accepted)
        if not accepted:
            logger.info("lease.token_refused", extra=lease_fields(self._core, token))
        return not accepted

    async def _relogin(self, token: ManagedSecret, seen: int, refused: Exception) -> None:
        """Log in again unless someone did since ``seen``; else raise ``refused``."""
        async with token.locked():
            if token.generation != seen:
                return  # another caller logged in already
            now = self._core.clock.now()
            last = token.last_login_at
            recent = last is not None and now - last < self._core.config.relogin_interval
            if token.closed or recent or token.backoff_error(now) is not None:
                raise refused
            token.invalidate(now)
            token.failed(refused, retry_at=now)  # counted on the token; the login may go ahead
            await self._core.emit(
                token, "failed", error_class=token.last_error_class, reason="forbidden"
            )
            try:
                await self._replace(token, "forbidden")
            except Exception as exc:
                await self._fail(token, Step("rotate", now, required=True), exc)
                raise refused from None

    def superseded(self, token: ManagedSecret, old: Lease, generation: int) -> None:
        """``token`` was replaced: its old leases get required rotations; the old one retires."""
        token.retire(generation, old)
        for h in self._core.dependents(token):
            lease = h.current
            if lease is not None and lease.owner == generation:
                self._core.plan(h, self._core.next_step(h))
        self.release(token, generation)

    def release(self, token: ManagedSecret | None, generation: int) -> None:
        """Revoke the replaced token of ``generation`` once no lease obtained with it is left."""
        if token is None or generation == token.generation:
            return
        retired = dict(token.retired()).get(generation)
        if retired is None:
            return
        core = self._core
        if (
            (id(token), generation) in self._in_flight
            or any(
                h.current is not None and h.current.owner == generation
                for h in core.dependents(token)
            )
            or any(
                r.handle.parent is token and r.lease.owner == generation
                for r in core.queue.revocations()
            )
        ):
            return
        token.forget(generation)
        now = core.clock.now()
        if retired.revocable and retired.expires_at > now and token.source.revoke is not None:
            core.revoke_at(Revocation(token, retired, generation), now)
