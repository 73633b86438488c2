"""What the asyncpg and psycopg pool bindings share: following a credential source.

:class:`PoolBindingBase` subscribes to the source's rotations, starts one pool swap per new
generation (:class:`~vault_async._pool_swaps.PoolSwaps`), keeps the use counter, reads the
current credential and handles a rejected login (one forced rotation, logged once per
condition per interval). A subclass opens its pool, says what a swap does
(:meth:`PoolBindingBase.swap_pool`) and how the pool announces itself to a use-tracking
source (:meth:`PoolBindingBase._announce`).

:class:`PoolStats` are the counters every binding keeps (the SQLAlchemy one adds its own).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ._credential_source import Credential, CredentialSource, UseTrackingSource, credential_of
from ._log_limit import LogLimiter
from ._pool_swaps import PoolSwaps
from ._roles import set_role_sql
from ._use_counter import UseCounter

__all__ = ["PoolBindingBase", "PoolStats"]

PoolT = TypeVar("PoolT")


@dataclass
class PoolStats:
    """Counters kept by a pool binding (exported as metrics)."""

    connects: int = 0
    login_retries: int = 0
    pool_swaps: int = 0
    """Swaps of the pool after a rotation."""
    stale_closed: int = 0
    """Connections of an older generation the binding closed or refused itself."""


class PoolBindingBase(Generic[PoolT]):
    """A pool (``.pool``, of type ``PoolT``) whose connections log in with ``source``."""

    logger: logging.Logger
    """The subclass's logger: every event of the binding is logged there."""

    def __init__(
        self,
        source: CredentialSource,
        stats: PoolStats,
        *,
        assume_role: str | None,
        close_timeout: float,
    ) -> None:
        self.source = source
        self.stats = stats
        self.close_timeout = close_timeout
        self._role_sql = set_role_sql(assume_role)
        self._pool: PoolT | None = None
        self._uses: UseCounter | None = None
        # While the credential cannot be refreshed every new connection meets the same
        # refusal: one WARNING per condition per interval, the repeats at DEBUG.
        self.log_limit = LogLimiter()
        self._unsubscribe: Callable[[], None] | None = None
        self._closing = False
        self._swapped_for = source.generation
        self._swaps = PoolSwaps(self.swap_pool, self.logger)

    @property
    def pool(self) -> PoolT:
        """The pool, used as the driver's own."""
        if self._pool is None:
            raise RuntimeError("the pool is not open yet (await create_pool(...))")
        return self._pool

    # lifecycle -----------------------------------------------------------------------

    def _follow(self) -> None:
        """Count uses (when the source tracks them) and subscribe to rotations."""
        if isinstance(self.source, UseTrackingSource):
            self._uses = UseCounter(self.source.track_use)
            self._announce(self.source)
        self._unsubscribe = self.source.subscribe(self._on_event)

    def _announce(self, source: UseTrackingSource) -> None:
        """Tell the source a pool reports, before any connection (see the subclass)."""
        raise NotImplementedError

    def _stop_following(self) -> None:
        """Closing: no rotation starts a swap from now on (the pool's close ends every
        connection anyway)."""
        self._closing = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _detach(self) -> None:
        self._stop_following()
        if self._uses is not None:
            self._uses.release_all()
            self._uses = None
        self._swaps.drop_hold()

    async def aclose_pending(self) -> None:
        """Wait for the pool swaps that rotations started."""
        await self._swaps.wait()

    # rotation --------------------------------------------------------------------------

    def _on_event(self, lease_event: object) -> None:
        if getattr(lease_event, "kind", None) == "rotated":
            self._request_swap()

    def _request_swap(self) -> None:
        """Swap the pool once per new generation (an event, a login or a checkout may see
        it first)."""
        target = self.source.generation
        if target == self._swapped_for or self._pool is None or self._closing:
            return
        self._swapped_for = target
        self._swaps.start(target)

    async def swap_pool(self) -> None:
        """Close the idle connections now, the others when they come back."""
        raise NotImplementedError

    # logins ----------------------------------------------------------------------------

    def _credential(self) -> Credential:
        credential = credential_of(self.source)
        if credential is None:
            raise ConnectionError("no database credential is available yet")
        return credential

    async def _refresh_after(self, error: Exception, credential: Credential) -> None:
        """The database rejected ``credential``: force one rotation, or re-raise ``error``
        if the source cannot rotate."""
        self.stats.login_retries += 1
        self.log_limit.log(
            self.logger,
            "pool.login_rejected",
            generation=credential.generation,
            error_class=type(error).__name__,
        )
        try:
            await self.source.force_rotate(
                "database rejected the login", generation=credential.generation
            )
        except Exception as rotate_error:
            self.log_limit.log(
                self.logger, "pool.refresh_failed", error_class=type(rotate_error).__name__
            )
            raise error from None  # the database's answer is the one to report
