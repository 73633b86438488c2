"""The drain: replaced leases, revoked once nothing uses them, retried until they are gone.

A rotated-away lease stays valid while connections made with it are checked out: it
is revoked when the pool reports the last one returned (``ManagedSecret.track_use``),
after the drain period when no pool reports, and in any case shortly before it would
expire anyway. A failed revocation (Vault sealed, unreachable) is retried with
backoff until it succeeds or the lease has expired; shutdown revokes what is pending.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from . import _policy as policy
from ._core import Core
from ._logfields import lease_fields
from ._models import Lease, lease_id_suffix
from ._queue import Revocation

if TYPE_CHECKING:
    from ._handle import ManagedSecret

__all__ = ["Drain"]

logger = logging.getLogger("vault_async.lifecycle")

Release = Callable[["ManagedSecret | None", int], None]


class Drain:
    """Schedules, performs and retries the revocation of replaced leases."""

    __slots__ = ("_core", "_release")

    def __init__(self, core: Core, release: Release) -> None:
        self._core = core
        self._release = release

    def retire(self, handle: ManagedSecret, old: Lease, generation: int) -> None:
        """``old`` (of ``generation``) was replaced: schedule its revocation."""
        source = handle.source
        if source.revoke is None or not source.revoke_replaced or not old.revocable:
            self._release(handle.parent, old.owner)
            return
        core = self._core
        due = policy.drain_due(
            old,
            now=core.clock.now(),
            tracked=handle.tracked,
            in_use=handle.in_use(generation),
            config=core.config,
        )
        core.revoke_at(Revocation(handle, old, generation), due)

    def released(self, handle: ManagedSecret, generation: int) -> None:
        """The last connection of ``generation`` was returned: revoke its lease now."""
        if generation == handle.generation:
            return
        now = self._core.clock.now()
        for revocation in self._core.queue.revocations():
            if revocation.handle is handle and revocation.generation == generation:
                self._core.revoke_at(revocation, now)

    async def run(self, revocation: Revocation) -> None:
        """Revoke one lease; on failure schedule the retry (until the lease has expired)."""
        core = self._core
        handle, lease = revocation.handle, revocation.lease
        if await self.revoke(handle, lease, final=False, generation=revocation.generation):
            if handle.kind != "token":
                self._release(handle.parent, lease.owner)
            return
        attempt = revocation.attempt + 1
        due = policy.revoke_retry_due(
            lease, attempt=attempt, now=core.clock.now(), config=core.config, rng=core.rng
        )
        if due is not None:
            core.revoke_at(dataclasses.replace(revocation, attempt=attempt), due)
        elif handle.kind != "token":
            self._release(handle.parent, lease.owner)

    async def revoke(
        self, handle: ManagedSecret, lease: Lease, *, final: bool, generation: int | None = None
    ) -> bool:
        """One revocation attempt; True when Vault confirmed it (or nothing was to revoke).

        ``generation`` is the lease's, when it is not the one in force.
        """
        revoke = handle.source.revoke
        if revoke is None or not lease.revocable:
            return True
        try:
            with anyio.fail_after(self._core.config.op_timeout):
                await revoke(lease)
        except Exception as exc:
            logger.warning(
                "lease.revoke_failed",
                extra=lease_fields(
                    self._core,
                    handle,
                    about=lease,
                    generation=generation,
                    error=exc,
                    lease=lease_id_suffix(lease.lease_id),
                    final=final,
                ),
            )
            return False
        logger.info(
            "lease.revoked",
            extra=lease_fields(
                self._core,
                handle,
                about=lease,
                generation=generation,
                lease=lease_id_suffix(lease.lease_id),
                final=final,
            ),
        )
        await self._core.emit(handle, "revoked", lease=lease, generation=generation)
        return True

    async def revoke_everything(self) -> None:
        """At shutdown: pending and current leases first, then the tokens they die with."""
        config, core = self._core.config, self._core
        leases: list[tuple[ManagedSecret, Lease, int]] = []
        tokens: list[tuple[ManagedSecret, Lease, int]] = []
        for revocation in core.queue.revocations():
            is_token = revocation.handle.kind == "token"
            if config.revokes_token if is_token else config.revoke_on_shutdown:
                target = tokens if is_token else leases
                target.append((revocation.handle, revocation.lease, revocation.generation))
        now = core.clock.now()
        for h in core.handles.values():
            if h.kind == "token" and config.revokes_token:
                tokens.extend(
                    (h, lease, gen) for gen, lease in h.retired() if lease.expires_at > now
                )
                if h.current is not None:
                    tokens.append((h, h.current, h.generation))
            elif h.kind != "token" and config.revoke_on_shutdown and h.current is not None:
                leases.append((h, h.current, h.generation))
        limiter = anyio.CapacityLimiter(config.max_concurrency)

        async def revoke(h: ManagedSecret, lease: Lease, generation: int) -> None:
            async with limiter:
                await self.revoke(h, lease, final=True, generation=generation)

        for batch in (leases, tokens):
            async with anyio.create_task_group() as tg:
                for h, lease, generation in batch:
                    tg.start_soon(revoke, h, lease, generation)
