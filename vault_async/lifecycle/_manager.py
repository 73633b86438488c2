"""``LeaseManager``: one task that keeps every managed secret renewed or rotated.

Usage::

    async with AsyncVaultClient() as client, LeaseManager(client) as mgr:
        mgr.manage_token(client, AppRole(role_id, secret_id))
        creds = mgr.manage_database_credentials(client, role="app")
        lease = await creds.wait_ready()
        creds.subscribe(on_event)          # "rotated" -> swap the connection pool
        ...
    # leaving the block revokes the leases (and the token) the manager created

The loop, like Vault's ``LifetimeWatcher`` but for many secrets at once: pop the
earliest deadline from a heap; renew, or replace the secret when renewing no
longer extends it; on error back off (full jitter, capped by what is left of the
lease); push the next deadline; sleep until the earliest one. Each due operation
runs as a short-lived task (at most ``max_concurrency`` at a time); no task lives
per lease, and nothing polls.

Two rules keep a broken token or database from turning into a storm of calls: a
403 on a call made with the managed token logs in again once (one login shared
by every caller) and retries; and after a failed attempt, ``force_rotate`` does
not call Vault again until the backoff delay has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import inspect
import itertools
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Literal, TypeVar

import anyio
from anyio.abc import TaskGroup

from .. import _exceptions as exc_mod
from . import _timing as timing
from ._clock import Clock, SystemClock
from ._handle import EventCallback, ManagedSecret
from ._models import EventKind, Grant, Lease, LeaseEvent, SecretState, lease_id_suffix
from ._sources import SecretSource, database_dynamic, database_static, token_login

__all__ = ["DEFAULT_DRAIN_PERIOD", "LeaseManager"]

logger = logging.getLogger("vault_async.lifecycle")

DEFAULT_DRAIN_PERIOD = 30.0
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
DEFAULT_OP_TIMEOUT = 30.0
DEFAULT_MIN_ROTATION_LEAD = 30.0
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_MAX = 60.0
DEFAULT_BACKOFF_FLOOR = 0.25
DEFAULT_MAX_CONCURRENCY = 32
DEFAULT_STATIC_REREAD_DELAY = 1.0
DEFAULT_MIN_FORCE_INTERVAL = 1.0

Action = Literal["acquire", "renew", "rotate", "revoke_old"]
_T = TypeVar("_T")


def _lease_gone(exc: BaseException) -> bool:
    """A renew answered 400/404: the lease was revoked or never existed."""
    return isinstance(exc, exc_mod.InvalidRequest | exc_mod.InvalidPath)


def _token_rejected(exc: BaseException) -> bool:
    """Vault answered 401/403: the token is expired, revoked or lacks permission."""
    return isinstance(exc, exc_mod.Forbidden)


def _report_host_exit(task: asyncio.Task[None]) -> None:
    """Never die silently: an unexpected end of the scheduler is logged at once."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("lease.scheduler_died", extra={"error_class": type(task.exception()).__name__})


def _utc(epoch: float | None) -> dt.datetime | None:
    if epoch is None or math.isinf(epoch):
        return None
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


class LeaseManager:
    """Keeps credentials and tokens valid: renews, rotates before expiry, revokes on exit.

    Args:
        client: default client for the ``manage_*`` helpers.
        clock: time source (:class:`SystemClock` by default; a ``VirtualClock`` in tests).
        rng: random source for jitter.
        revoke_on_shutdown: revoke the leases and the login token it created on exit.
        revoke_token_on_shutdown: override for the token alone (default: as above).
        drain_period: seconds a replaced lease stays valid before it is revoked.
        rotation_lead: seconds before expiry a replacement is obtained (default: grace).
        min_rotation_lead: lower bound of the lead when the lease is long enough.
        backoff_base / backoff_max / backoff_floor: retry timing after an error.
        op_timeout: upper bound on one Vault call (also capped by the lease left).
        shutdown_timeout: bound on the whole exit, revocations included.
        max_concurrency: Vault calls in flight at once.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        revoke_on_shutdown: bool = True,
        revoke_token_on_shutdown: bool | None = None,
        drain_period: float = DEFAULT_DRAIN_PERIOD,
        rotation_lead: float | None = None,
        min_rotation_lead: float = DEFAULT_MIN_ROTATION_LEAD,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        backoff_floor: float = DEFAULT_BACKOFF_FLOOR,
        op_timeout: float = DEFAULT_OP_TIMEOUT,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        static_reread_delay: float = DEFAULT_STATIC_REREAD_DELAY,
        min_force_interval: float = DEFAULT_MIN_FORCE_INTERVAL,
    ) -> None:
        if drain_period < 0 or shutdown_timeout <= 0 or op_timeout <= 0:
            raise ValueError("drain_period must be >= 0; shutdown_timeout, op_timeout > 0")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if not 0 < backoff_floor <= backoff_max or backoff_base <= 0:
            raise ValueError("need 0 < backoff_floor <= backoff_max and backoff_base > 0")
        self.client = client
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.revoke_on_shutdown = revoke_on_shutdown
        self.revoke_token_on_shutdown = (
            revoke_on_shutdown if revoke_token_on_shutdown is None else revoke_token_on_shutdown
        )
        self.drain_period = drain_period
        self.rotation_lead = rotation_lead
        self.min_rotation_lead = min_rotation_lead
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.backoff_floor = backoff_floor
        self.op_timeout = op_timeout
        self.shutdown_timeout = shutdown_timeout
        self.max_concurrency = max_concurrency
        self.static_reread_delay = static_reread_delay
        self.min_force_interval = min_force_interval

        self._handles: dict[str, ManagedSecret] = {}
        self._tokens: dict[int, ManagedSecret] = {}
        self._sources: dict[tuple[int, str, str, str], SecretSource] = {}
        self._subscribers: list[EventCallback] = []
        # (due, priority, seq, action, handle, lease-to-revoke)
        self._heap: list[tuple[float, int, int, Action, ManagedSecret, Lease | None]] = []
        self._draining: dict[int, tuple[ManagedSecret, Lease]] = {}
        self._seq = itertools.count()
        self._tg: TaskGroup | None = None
        self._host_task: asyncio.Task[None] | None = None
        self._stop: anyio.Event | None = None
        # Per-handle locks and the "a credential arrived" broadcast exist only while
        # someone needs them, so an idle handle costs no synchronisation objects.
        self._locks: dict[int, anyio.Lock] = {}
        self._ready_changed: anyio.Event | None = None
        self._loop_scope: anyio.CancelScope | None = None
        self._wake_scope: anyio.CancelScope | None = None
        self._sleep_until = math.inf
        self._in_flight = 0
        self._idle: anyio.Event | None = None
        self._running = False
        self._closing = False

    # ------------------------------------------------------------------ public API

    def manage(self, source: SecretSource, *, name: str | None = None) -> ManagedSecret:
        """Start managing any :class:`SecretSource`; returns its handle."""
        base = name or source.name
        unique, n = base, 1
        while unique in self._handles:
            n += 1
            unique = f"{base}#{n}"
        handle = ManagedSecret(self, source, unique)
        if source.kind == "token" and source.client_key is not None:
            self._tokens[source.client_key] = handle
        elif source.client_key is not None:
            handle.parent = self._tokens.get(source.client_key)
        self._handles[unique] = handle
        self._push(self.clock.now(), "acquire", handle)
        return handle

    def manage_database_credentials(
        self, client: Any = None, *, role: str, mount: str = "database", name: str | None = None
    ) -> ManagedSecret:
        """Manage a dynamic database role (``{mount}/creds/{role}``)."""
        client = self._client(client)
        key = (id(client), "database_dynamic", role, mount)
        source = self._sources.get(key)
        if source is None:  # one source (three closures) per role, shared by its handles
            source = self._sources[key] = database_dynamic(client, role, mount)
        return self.manage(source, name=name)

    def manage_static_credentials(
        self, client: Any = None, *, role: str, mount: str = "database", name: str | None = None
    ) -> ManagedSecret:
        """Manage a static database role (``{mount}/static-creds/{role}``)."""
        return self.manage(database_static(self._client(client), role, mount), name=name)

    def manage_token(
        self, client: Any = None, auth_method: Any = None, *, name: str = "auth/token"
    ) -> ManagedSecret:
        """Manage the client's own token: log in, renew-self, log in again when needed.

        Register it before the leases of the same client, which then wait for
        the login and are replaced in time when the token is.
        """
        if auth_method is None:
            raise ValueError("manage_token needs an auth method to log in with")
        client = self._client(client)
        handle = self.manage(token_login(client, auth_method, name=name), name=name)
        for other in self._handles.values():
            if other.kind != "token" and other.source.client_key == id(client):
                other.parent = handle
        return handle

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Receive the events of every managed secret; returns an unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def __getitem__(self, name: str) -> ManagedSecret:
        return self._handles[name]

    def snapshot(self) -> dict[str, SecretState]:
        """Health view of every managed secret, by name."""
        now = self.clock.now()
        wall_offset = self.clock.wall() - now
        out: dict[str, SecretState] = {}
        for name, h in self._handles.items():
            lease = h.current
            finite = lease is not None and not math.isinf(lease.expires_at)
            out[name] = SecretState(
                name=name,
                kind=h.kind,
                ready=lease is not None,
                ttl_remaining=max(0.0, lease.expires_at - now) if lease and finite else None,
                expires_at=_utc(lease.expires_at + wall_offset) if lease and finite else None,
                renewable=bool(lease and lease.renewable),
                last_renewal=_utc(h.last_renewal + wall_offset) if h.last_renewal else None,
                generation=h.generation,
                renewals=h.renewals,
                rotations=h.rotations,
                consecutive_failures=h.consecutive_failures,
                total_failures=h.total_failures,
                last_error_class=h.last_error_class,
                degraded=h.degraded(now),
                next_action=h._next_action,
                next_action_in=(max(0.0, h._next_due - now) if h._next_due is not None else None),
                lease_id_suffix=lease_id_suffix(lease.lease_id) if lease else "",
            )
        return out

    @property
    def degraded(self) -> bool:
        """True when any managed secret is degraded."""
        now = self.clock.now()
        return any(h.degraded(now) for h in self._handles.values())

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> LeaseManager:
        if self._running:
            raise RuntimeError("LeaseManager is already running")
        # The scheduler lives in its own host task, so the manager may be entered
        # and exited from different tasks (pytest fixtures, some lifespans do that).
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        self._closing = False
        self._stop = anyio.Event()
        self._host_task = loop.create_task(self._host(started), name="vault-async-leases")
        self._host_task.add_done_callback(_report_host_exit)
        try:
            await started
        except BaseException:
            self._host_task.cancel()
            raise
        self._running = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _host(self, started: asyncio.Future[None]) -> None:
        """Own the task group: the scheduler loop and the short-lived operations."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._idle = anyio.Event()
                started.set_result(None)
                await self._run()  # returns once aclose() cancels the loop
                if self._in_flight and self._idle is not None:
                    # Let calls already in flight land, so their results are recorded
                    # (and revoked below) rather than lost.
                    with anyio.move_on_after(self.shutdown_timeout / 3):
                        await self._idle.wait()
                tg.cancel_scope.cancel()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise
        finally:
            self._tg = None

    async def aclose(self) -> None:
        """Stop the scheduler, let in-flight calls finish briefly, revoke what was created."""
        if not self._running or self._host_task is None:
            return
        self._running = False
        self._closing = True
        deadline = anyio.current_time() + self.shutdown_timeout
        with anyio.CancelScope(shield=True):
            if self._stop is not None:
                self._stop.set()
            if self._loop_scope is not None:
                self._loop_scope.cancel()
            with anyio.move_on_at(deadline):
                await asyncio.wait([self._host_task])
            if not self._host_task.done():
                self._host_task.cancel()
            self._host_task = None
            for h in self._handles.values():
                h._closed = True
            if self.revoke_on_shutdown or self.revoke_token_on_shutdown:
                with anyio.move_on_at(deadline) as scope:
                    await self._revoke_all()
                if scope.cancelled_caught:
                    logger.warning(
                        "lease.shutdown_timeout",
                        extra={"timeout": self.shutdown_timeout},
                    )

    async def _revoke_all(self) -> None:
        """Revoke drained-out leases and current leases first, tokens last."""
        leases: list[tuple[ManagedSecret, Lease]] = []
        if self.revoke_on_shutdown:
            leases.extend(self._draining.values())
        self._draining.clear()
        tokens: list[tuple[ManagedSecret, Lease]] = []
        for h in self._handles.values():
            if h.current is None or h.source.revoke is None:
                continue
            if h.kind == "token" and self.revoke_token_on_shutdown:
                tokens.append((h, h.current))
            elif h.kind != "token" and self.revoke_on_shutdown:
                leases.append((h, h.current))
        limiter = anyio.CapacityLimiter(self.max_concurrency)

        async def revoke(h: ManagedSecret, lease: Lease) -> None:
            async with limiter:
                await self._revoke_one(h, lease, final=True)

        for batch in (leases, tokens):
            async with anyio.create_task_group() as tg:
                for h, lease in batch:
                    tg.start_soon(revoke, h, lease)

    # ------------------------------------------------------------------ scheduler

    async def _run(self) -> None:
        """The one scheduler loop: dispatch what is due, then sleep until the next deadline."""
        assert self._tg is not None
        with anyio.CancelScope() as loop_scope:
            self._loop_scope = loop_scope
            if self._stop is not None and self._stop.is_set():
                loop_scope.cancel()
            while True:
                now = self.clock.now()
                while self._heap and self._heap[0][0] <= now:
                    if self._in_flight >= self.max_concurrency:
                        break
                    _, _, seq, action, handle, lease = heapq.heappop(self._heap)
                    if action != "revoke_old" and seq != handle._seq:
                        continue  # superseded by a later plan
                    if action == "revoke_old":
                        if seq not in self._draining:
                            continue
                    else:
                        handle._next_action = None
                        handle._next_due = None
                    self._in_flight += 1
                    self._tg.start_soon(self._execute, action, handle, lease, seq)
                with anyio.CancelScope() as wake:
                    self._wake_scope = wake
                    blocked = self._in_flight >= self.max_concurrency
                    if not self._heap or (blocked and self._heap[0][0] <= now):
                        self._sleep_until = math.inf
                        await anyio.sleep_forever()
                    else:
                        self._sleep_until = self._heap[0][0]
                        await self.clock.sleep(self._sleep_until - now)
                self._wake_scope = None
                self._sleep_until = math.inf
        self._loop_scope = None

    def _push(
        self,
        due: float,
        action: Action,
        handle: ManagedSecret,
        lease: Lease | None = None,
    ) -> None:
        """Schedule ``action``; for handle actions, any earlier plan becomes stale."""
        seq = next(self._seq)
        priority = 0 if handle.kind == "token" else 1
        if action == "revoke_old":
            assert lease is not None
            self._draining[seq] = (handle, lease)
        else:
            handle._seq = seq
            handle._next_action = action
            handle._next_due = due
        heapq.heappush(self._heap, (due, priority, seq, action, handle, lease))
        if due < self._sleep_until and self._wake_scope is not None:
            self._wake_scope.cancel()

    def _op_finished(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0 and self._idle is not None:
            self._idle.set()
            self._idle = anyio.Event()
        if self._heap and self._heap[0][0] <= self.clock.now() and self._wake_scope is not None:
            self._wake_scope.cancel()

    async def _execute(
        self, action: Action, handle: ManagedSecret, lease: Lease | None, seq: int
    ) -> None:
        try:
            if action == "revoke_old":
                if seq in self._draining and lease is not None:
                    await self._revoke_one(handle, lease, final=False)
                    # Forgotten only once revoked: a shutdown meanwhile still revokes it.
                    self._draining.pop(seq, None)
                return
            parent = handle.parent
            if parent is not None and parent.current is None:
                with anyio.move_on_after(self.op_timeout):
                    await self._wait_ready(parent)
            async with self._locked(handle):
                if handle._closed or handle._seq != seq:
                    return  # shut down, or re-planned (e.g. by force_rotate) while waiting
                try:
                    if action == "renew":
                        await self._renew(handle)
                    else:
                        await self._replace(handle, reason=action)
                except Exception as exc:
                    await self._on_failure(handle, action, exc)
        except Exception as exc:
            # A bug of ours, not a Vault failure: log it, keep the loop and the handle alive.
            logger.error(
                "lease.internal_error",
                extra={"secret": handle.name, "action": action, "error_class": type(exc).__name__},
            )
            if action != "revoke_old":
                self._push(self.clock.now() + self.backoff_max, action, handle)
        finally:
            self._op_finished()

    # ------------------------------------------------------------------ operations

    def _call_timeout(self, handle: ManagedSecret) -> float:
        """Bound a Vault call by ``op_timeout`` and by a third of the lease left.

        A hung Vault (SIGSTOP, a black-holed route) must not eat the whole
        remaining lease: a third leaves time for backoff and a retry or two.
        """
        lease = handle.current
        if lease is None or math.isinf(lease.expires_at):
            return self.op_timeout
        left = lease.expires_at - self.clock.now()
        return min(self.op_timeout, max(1.0, left / 3.0))

    async def _call(self, handle: ManagedSecret, fn: Callable[[], Awaitable[_T]]) -> _T:
        with anyio.fail_after(self._call_timeout(handle)):
            return await fn()

    async def _call_as_token(self, handle: ManagedSecret, fn: Callable[[], Awaitable[_T]]) -> _T:
        """Call Vault with the managed token; on a 403 log in again once, then retry.

        A 403 on a call made with the managed token means the token may be gone
        (revoked from outside, expired): the token's state counts it and it logs
        in again (one login shared by every caller), then the call is retried. Only
        a refused login, or a 403 with the fresh token, fails this secret.
        """
        token = handle.parent
        if token is None or token is handle:
            return await self._call(handle, fn)
        seen = token.generation
        try:
            return await self._call(handle, fn)
        except exc_mod.Forbidden as exc:
            await self._relogin(token, seen, handle, exc)
        return await self._call(handle, fn)

    async def _relogin(
        self, token: ManagedSecret, seen: int, trigger: ManagedSecret, refused: Exception
    ) -> None:
        """Replace ``token`` unless someone did since generation ``seen``; else raise ``refused``.

        Single-flight: callers queue on the token's lock and find the generation
        moved on. A login that failed moments ago is not retried before its backoff.
        """
        async with self._locked(token):
            if token.generation != seen:
                return  # another caller logged in again already
            if token._closed or self._backoff_error(token, self.clock.now()) is not None:
                raise refused
            self._record_failure(token, "forbidden", refused)
            await self._emit(
                token, "failed", error_class=token.last_error_class, reason="forbidden"
            )
            try:
                await self._replace(token, reason="forbidden")
            except Exception as exc:
                await self._on_failure(token, "rotate", exc)
                raise refused from None
        # Leases die with the token that created them: check the others now (a renew
        # finds a revoked lease gone and replaces it; a valid one is merely extended).
        now = self.clock.now()
        for h in self._dependents(token):
            if h is not trigger:
                self._push(now, "renew", h)

    async def _renew(self, handle: ManagedSecret) -> None:
        lease = handle.current
        renew = handle.source.renew
        if lease is None or renew is None:
            await self._replace(handle, reason="acquire")
            return
        grant: Grant = await self._call_as_token(handle, lambda: renew(lease))
        now = self.clock.now()
        expires = now + grant.lease_duration if grant.lease_duration > 0 else math.inf
        capped = (
            not grant.renewable
            or timing.is_capped(grant.lease_duration, handle._natural)
            or expires <= lease.expires_at
        )
        handle.current = Lease(
            lease_id=grant.lease_id or lease.lease_id,
            lease_duration=grant.lease_duration,
            renewable=grant.renewable,
            data=grant.data or lease.data,
            obtained_at=lease.obtained_at,
            expires_at=expires,
        )
        handle.renewals += 1
        handle.last_renewal = now
        self._succeeded(handle)
        if not capped:
            # Vault's watcher draws a fresh grace while the lease keeps extending.
            handle._grace = timing.grace_period(handle._natural, self.rng)
        logger.debug(
            "lease.renewed",
            extra={
                "secret": handle.name,
                "lease": lease_id_suffix(lease.lease_id),
                "ttl": grant.lease_duration,
                "capped": capped,
            },
        )
        await self._emit(handle, "renewed")
        await self._plan(handle, capped=capped)

    async def _replace(self, handle: ManagedSecret, reason: str) -> None:
        """Obtain a new credential, make it current, announce it, schedule the old one's revoke."""
        old = handle.current
        grant = await self._call_as_token(handle, handle.source.acquire)
        now = self.clock.now()
        if handle.kind == "database_static":
            # ttl 0 means Vault is rotating the password right now: re-read shortly.
            expires = now + max(0.0, grant.lease_duration)
        else:
            expires = now + grant.lease_duration if grant.lease_duration > 0 else math.inf
        new = Lease(
            grant.lease_id,
            grant.lease_duration,
            grant.renewable,
            grant.data,
            obtained_at=now,
            expires_at=expires,
        )
        handle._natural = grant.lease_duration
        handle._grace = timing.grace_period(grant.lease_duration, self.rng)
        handle._capped = False
        self._succeeded(handle)
        same = old is not None and handle.kind == "database_static" and old.data == new.data
        handle.current = new
        if old is None or not same:
            handle.generation += 1
        self._notify_ready()
        if old is not None and not same:
            handle.rotations += 1
            handle.last_rotation = now
            logger.info(
                "lease.rotated",
                extra={
                    "secret": handle.name,
                    "generation": handle.generation,
                    "lease": lease_id_suffix(new.lease_id),
                    "reason": reason,
                },
            )
            await self._emit(handle, "rotated", reason=reason)
            self._schedule_drain(handle, old, now)
            if handle.kind == "token":
                self._follow_token(handle, old, now)
        elif old is None:
            logger.info(
                "lease.acquired",
                extra={
                    "secret": handle.name,
                    "lease": lease_id_suffix(new.lease_id),
                    "ttl": grant.lease_duration,
                },
            )
        await self._plan(handle, capped=not new.renewable)

    def _schedule_drain(self, handle: ManagedSecret, old: Lease, now: float) -> None:
        src = handle.source
        if src.revoke is None or not src.revoke_replaced or not old.lease_id:
            return
        if old.lease_id == (handle.current.lease_id if handle.current else None):
            return
        due = min(now + self.drain_period, max(now, old.expires_at))
        self._push(due, "revoke_old", handle, old)

    def _follow_token(self, token: ManagedSecret, old: Lease, now: float) -> None:
        """The token was replaced: leases it created die with it, so replace them in time."""
        if math.isinf(old.expires_at):
            return
        for h in self._dependents(token):
            lead = timing.rotation_lead(
                h._natural, h._grace, self.rotation_lead, self.min_rotation_lead
            )
            spread = max(0.0, (old.expires_at - now - lead) / 2.0)
            due = now + self.rng.random() * spread
            if h._next_due is None or due < h._next_due:
                self._push(due, "rotate", h)

    def _dependents(self, token: ManagedSecret) -> Iterator[ManagedSecret]:
        """The open handles holding a credential obtained with ``token`` (they die with it)."""
        for h in self._handles.values():
            if h.parent is token and h.current is not None and not h._closed:
                yield h

    async def _revoke_one(self, handle: ManagedSecret, lease: Lease, *, final: bool) -> None:
        revoke = handle.source.revoke
        if revoke is None:
            return
        try:
            with anyio.fail_after(self.op_timeout):
                await revoke(lease)
        except Exception as exc:
            logger.warning(
                "lease.revoke_failed",
                extra={
                    "secret": handle.name,
                    "lease": lease_id_suffix(lease.lease_id),
                    "error_class": type(exc).__name__,
                },
            )
            return
        logger.info(
            "lease.revoked",
            extra={"secret": handle.name, "lease": lease_id_suffix(lease.lease_id), "final": final},
        )
        await self._emit(handle, "revoked", lease=lease)

    def _succeeded(self, handle: ManagedSecret) -> None:
        handle.consecutive_failures = 0
        handle._last_error = None
        handle._retry_at = None

    def _backoff_error(self, handle: ManagedSecret, now: float) -> Exception | None:
        """The last attempt's error while its backoff delay runs (do not call Vault), else None."""
        if handle._retry_at is not None and now < handle._retry_at:
            return handle._last_error
        return None

    async def _plan(self, handle: ManagedSecret, *, capped: bool) -> None:
        """Push the next action for a handle that just got a fresh or renewed credential."""
        lease = handle.current
        if lease is None or math.isinf(lease.expires_at):
            handle._seq = next(self._seq)  # nothing to do until asked
            handle._next_action = handle._next_due = None
            return
        now = self.clock.now()
        remaining = lease.expires_at - now
        if handle.kind == "database_static":
            # Vault rotates the password when the ttl runs out: re-read just after.
            delay = self.static_reread_delay * (1.0 + self.rng.random())
            self._push(lease.expires_at + delay, "rotate", handle)
            return
        if lease.renewable and not capped and handle.source.renew is not None:
            sleep = timing.renew_delay(remaining, handle._grace)
            if not timing.should_stop_renewing(remaining, sleep, handle._grace):
                self._push(now + sleep, "renew", handle)
                return
        handle._capped = True
        lead = timing.rotation_lead(
            handle._natural, handle._grace, self.rotation_lead, self.min_rotation_lead
        )
        self._push(max(now, lease.expires_at - lead), "rotate", handle)
        await self._announce_expiring(handle, "max_ttl" if lease.renewable else "not_renewable")

    async def _announce_expiring(self, handle: ManagedSecret, reason: str) -> None:
        """Emit "expiring" once per generation: the credential in force will not be renewed."""
        if handle._expiring_generation != handle.generation:
            handle._expiring_generation = handle.generation
            await self._emit(handle, "expiring", reason=reason)

    def _record_failure(self, handle: ManagedSecret, action: str, exc: Exception) -> None:
        """Count and log a failure (no secret: the error class and status only)."""
        handle.consecutive_failures += 1
        handle.total_failures += 1
        handle.last_error_class = type(exc).__name__
        logger.warning(
            "lease.failed",
            extra={
                "secret": handle.name,
                "action": action,
                "error_class": handle.last_error_class,
                "status": getattr(exc, "status", None),
                "consecutive_failures": handle.consecutive_failures,
            },
        )

    async def _on_failure(self, handle: ManagedSecret, action: Action, exc: Exception) -> None:
        """Count, log and announce a failure, then schedule the retry.

        Until the retry is due, ``force_rotate`` answers with ``exc`` instead of
        calling Vault (see ``_backoff_error``).
        """
        self._record_failure(handle, action, exc)
        now = self.clock.now()
        lease = handle.current
        handle._last_error = exc
        if action == "renew" and (
            _lease_gone(exc) or (handle.kind == "token" and _token_rejected(exc))
        ):
            handle._retry_at = now
            await self._emit(handle, "failed", error_class=handle.last_error_class, reason=action)
            self._push(now, "rotate", handle)  # revoked or unknown: replace right away
            return
        remaining = lease.expires_at - now if lease is not None else None
        # Half the lease left, so retries get denser (down to the floor) near expiry.
        cap = remaining / 2.0 if remaining is not None and remaining > 0 else None
        delay = timing.backoff_delay(
            handle.consecutive_failures,
            self.rng,
            base=self.backoff_base,
            cap=self.backoff_max,
            floor=self.backoff_floor,
            remaining=cap,
        )
        handle._retry_at = now + delay
        await self._emit(handle, "failed", error_class=handle.last_error_class, reason=action)
        next_action: Action = action
        # Keep renewing a valid lease (same credential, no pool swap once Vault is
        # back); only deep inside the grace period ask for a replacement instead.
        if action == "renew" and (remaining is None or remaining - delay <= handle._grace / 2.0):
            next_action = "rotate"
            await self._announce_expiring(handle, "renewals_failing")
        self._push(now + delay, next_action, handle)

    async def _force_rotate(self, handle: ManagedSecret, reason: str) -> Lease:
        if handle._closed:
            raise RuntimeError(f"{handle.name}: the LeaseManager has shut down")
        generation = handle.generation
        async with self._locked(handle):
            now = self.clock.now()
            current = handle.current
            if current is not None and (
                handle.generation != generation
                or (
                    handle.last_rotation is not None
                    and now - handle.last_rotation < self.min_force_interval
                )
                or (
                    handle.last_rotation is None
                    and now - current.obtained_at < self.min_force_interval
                )
            ):
                return current
            error = self._backoff_error(handle, now)
            if error is not None:
                # The last attempt failed and its backoff runs: no new Vault call.
                logger.debug(
                    "lease.force_rotate_backing_off",
                    extra={"secret": handle.name, "error_class": handle.last_error_class},
                )
                raise error.with_traceback(None)
            try:
                await self._replace(handle, reason=reason)
            except Exception as exc:
                await self._on_failure(handle, "rotate", exc)
                raise
        assert handle.current is not None
        return handle.current

    # ------------------------------------------------------------------ synchronisation

    @contextlib.asynccontextmanager
    async def _locked(self, handle: ManagedSecret) -> AsyncIterator[None]:
        """Serialise the operations on one handle (scheduled ones and ``force_rotate``)."""
        key = id(handle)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = anyio.Lock()
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(key, None)

    async def _wait_ready(self, handle: ManagedSecret) -> None:
        """Wait until ``handle`` holds a credential."""
        while handle.current is None:
            if self._ready_changed is None:
                self._ready_changed = anyio.Event()
            await self._ready_changed.wait()

    def _notify_ready(self) -> None:
        if self._ready_changed is not None:
            self._ready_changed.set()
            self._ready_changed = None

    # ------------------------------------------------------------------ events

    async def _emit(
        self,
        handle: ManagedSecret,
        kind: EventKind,
        *,
        error_class: str | None = None,
        reason: str | None = None,
        lease: Lease | None = None,
    ) -> None:
        if not handle._subscribers and not self._subscribers:
            return
        callbacks = (handle._subscribers or []) + self._subscribers
        lease = lease or handle.current
        event = LeaseEvent(
            kind=kind,
            name=handle.name,
            generation=handle.generation,
            lease_id_suffix=lease_id_suffix(lease.lease_id) if lease else "",
            error_class=error_class,
            reason=reason,
            at=self.clock.now(),
        )
        for callback in list(callbacks):
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                logger.warning(
                    "lease.callback_failed",
                    extra={"secret": handle.name, "event": kind, "error_class": type(exc).__name__},
                )

    def _client(self, client: Any) -> Any:
        client = client if client is not None else self.client
        if client is None:
            raise ValueError("no client given, and the LeaseManager has no default client")
        return client
