"""``LeaseManager``: the façade of the lease engine.

One job, wiring the parts and exposing them; past 300 lines only because each public
method (``manage_*``, ``force_rotate``, enter/exit) carries its contract in place.

Usage::

    async with AsyncVaultClient() as client, LeaseManager(client) as mgr:
        mgr.manage_token(client, AppRoleAuth(role_id, secret_id))
        creds = mgr.manage_database_credentials(client, role="app")
        lease = await creds.wait_ready()
        creds.subscribe(on_event)          # "rotated" -> swap the connection pool
        ...
    # leaving the block revokes the leases (and the token) the manager created

The parts, each with one job: the policy (``_policy``) decides the next step from a
secret's state and the clock; the deadline queue (``_queue``) holds the steps and the
pending revocations; the scheduler (``_scheduler``) runs what is due with a
concurrency limit; the renewer (``_renewer``) performs one step for one secret; the
token guard (``_tokens``) handles refusals, logins and replaced tokens; the drain
(``_drain``) revokes replaced leases once unused; the event bus (``_events``) tells
subscribers. This class wires them and exposes ``manage_*``, ``snapshot`` and the
async context manager.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from .._request import CLIENT_NAMESPACE, Namespace
from ._clock import Clock, SystemClock
from ._config import LeaseConfig
from ._core import Core
from ._events import EventBus, EventCallback
from ._handle import ManagedSecret
from ._models import Lease, SecretState
from ._policy import Step
from ._queue import Job, Planned
from ._renewer import Renewer
from ._scheduler import Scheduler
from ._sources import SecretSource, database_dynamic, database_static, token_login
from ._state import health_view

if TYPE_CHECKING:
    from .._client import AsyncVaultClient
    from ..auth import AuthMethod

__all__ = ["LeaseManager"]

logger = logging.getLogger("vault_async.lifecycle")


def _report_host_exit(task: asyncio.Task[None]) -> None:
    """Never die silently: an unexpected end of the scheduler is logged at once."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("lease.scheduler_died", extra={"error_class": type(task.exception()).__name__})


class LeaseManager:
    """Keeps credentials and tokens valid: renews, rotates before expiry, revokes on exit.

    Args:
        client: default client for the ``manage_*`` helpers.
        config: the engine's timing and shutdown settings (:class:`LeaseConfig`).
        clock: time source (:class:`SystemClock` by default; a ``VirtualClock`` in tests).
        rng: random source for jitter.
    """

    def __init__(
        self,
        client: AsyncVaultClient | None = None,
        config: LeaseConfig | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.config = config or LeaseConfig()
        self._core = Core(
            clock=clock or SystemClock(),
            config=self.config,
            rng=rng or random.Random(),
            wake=self._wake,
        )
        self._renewer = Renewer(self._core)
        self._scheduler = Scheduler(
            self._core.queue, self._core.clock, self._run_job, self.config.max_concurrency
        )
        self._sources: dict[tuple[int, str, str, Namespace], SecretSource] = {}
        self._tg: TaskGroup | None = None
        self._host_task: asyncio.Task[None] | None = None
        self._loop_scope: anyio.CancelScope | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._start_at: float | None = None  # when the start-up jitter ends, once drawn

    @property
    def clock(self) -> Clock:
        """The clock the engine schedules by."""
        return self._core.clock

    @property
    def events(self) -> EventBus:
        """The event bus (``subscribe`` is the usual way in)."""
        return self._core.events

    # ------------------------------------------------------------------ managing secrets

    def manage(self, source: SecretSource, *, name: str | None = None) -> ManagedSecret:
        """Start managing any :class:`SecretSource`; returns its handle."""
        handles = self._core.handles
        base = name or source.name
        unique, n = base, 1
        while unique in handles:
            n += 1
            unique = f"{base}#{n}"
        handle = ManagedSecret(self, source, unique)
        if source.client_key is not None and source.kind != "token":
            handle.parent = next(
                (
                    h
                    for h in handles.values()
                    if h.kind == "token" and h.source.client_key == source.client_key
                ),
                None,
            )
        handles[unique] = handle
        step = self._core.next_step(handle)
        if step is not None and handle.current is None:
            step = dataclasses.replace(step, due=max(step.due, self._first_request_at()))
        self._core.plan(handle, step)
        return handle

    def _first_request_at(self) -> float:
        """When the first credential may be asked for: after the start-up jitter, drawn once."""
        if self._start_at is None:
            bound = self.config.startup_jitter
            delay = self._core.rng.uniform(0.0, bound) if bound > 0 else 0.0
            self._start_at = self._core.clock.now() + delay
            if bound > 0:
                logger.info("startup.jitter", extra={"delay": round(delay, 3), "bound": bound})
        return self._start_at

    @property
    def startup_delay_left(self) -> float:
        """Seconds the start-up jitter still holds the first requests back (0 once past)."""
        if self._start_at is None:
            return 0.0
        return max(0.0, self._start_at - self._core.clock.now())

    def manage_database_credentials(
        self,
        client: AsyncVaultClient | None = None,
        *,
        role: str,
        mount: str = "database",
        name: str | None = None,
        namespace: Namespace = CLIENT_NAMESPACE,
    ) -> ManagedSecret:
        """Manage a dynamic database role (``{mount}/creds/{role}``).

        ``namespace``: where the role lives (None: the root namespace); by default the
        client's. Its leases are renewed and revoked in that namespace.
        """
        vault = self._client(client)
        key = (id(vault), role, mount, namespace)
        source = self._sources.get(key)
        if source is None:  # one source per role, shared by its handles
            source = self._sources[key] = database_dynamic(vault, role, mount, namespace=namespace)
        return self.manage(source, name=name)

    def manage_static_credentials(
        self,
        client: AsyncVaultClient | None = None,
        *,
        role: str,
        mount: str = "database",
        name: str | None = None,
        namespace: Namespace = CLIENT_NAMESPACE,
    ) -> ManagedSecret:
        """Manage a static database role (``{mount}/static-creds/{role}``), in ``namespace``
        (None: the root namespace; by default the client's)."""
        source = database_static(self._client(client), role, mount, namespace=namespace)
        return self.manage(source, name=name)

    def manage_token(
        self,
        client: AsyncVaultClient | None = None,
        auth_method: AuthMethod | None = None,
        *,
        name: str | None = None,
        source: SecretSource | None = None,
    ) -> ManagedSecret:
        """Manage the client's own token: log in, renew-self, log in again when needed.

        Register it before the leases of the same client, which then wait for the
        login and are replaced in time when the token is. ``source`` replaces the
        default token source (built from ``auth_method``). The handle is named after
        the auth method's mount (``auth/approle``, ``auth/token``, ...) unless ``name``
        is given.
        """
        vault = self._client(client)
        if source is None:
            if auth_method is None:
                raise ValueError("manage_token needs an auth method to log in with")
            source = token_login(vault, auth_method, name=name)
        handle = self.manage(source, name=name)
        for other in self._core.handles.values():
            if other.kind != "token" and other.source.client_key == source.client_key:
                other.parent = handle
        return handle

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Receive the events of every managed secret; returns an unsubscribe function."""
        return self._core.events.subscribe(callback)

    def __getitem__(self, name: str) -> ManagedSecret:
        return self._core.handles[name]

    # ------------------------------------------------------------------ what handles ask

    async def wait_ready(self, handle: ManagedSecret) -> None:
        """Wait until ``handle`` holds a valid credential."""
        await self._renewer.wait_ready(handle)

    async def force_rotate(
        self, handle: ManagedSecret, reason: str, generation: int | None = None
    ) -> Lease:
        """Run ``handle``'s rotation in the engine, so a cancelled caller cannot orphan it."""
        tg = self._tg
        if handle.closed or tg is None:
            raise RuntimeError(f"{handle.name}: the LeaseManager has shut down (or never started)")
        done: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieve)

        async def rotate() -> None:
            try:
                done.set_result(await self._renewer.force_rotate(handle, reason, generation))
            except Exception as exc:
                done.set_exception(exc)
            finally:
                if not done.done():  # the engine shut down under the rotation
                    done.set_exception(
                        RuntimeError(f"{handle.name}: the LeaseManager shut down during a rotation")
                    )

        tg.start_soon(rotate)
        return await asyncio.shield(done)

    def released(self, handle: ManagedSecret, generation: int) -> None:
        """The last checked-out connection of ``generation`` came back.

        A pool may report from another thread (a connection finalised by the garbage
        collector there): the engine's state is then changed on its own loop.
        """
        loop = self._loop
        if loop is not None and not _running_on(loop):
            loop.call_soon_threadsafe(self._renewer.drain.released, handle, generation)
            return
        self._renewer.drain.released(handle, generation)

    # ------------------------------------------------------------------ health

    def snapshot(self) -> dict[str, SecretState]:
        """Health view of every managed secret, by name."""
        return health_view(self._core)

    @property
    def degraded(self) -> bool:
        """True when any managed secret is degraded."""
        return any(state.degraded for state in self.snapshot().values())

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> LeaseManager:
        if self._running:
            raise RuntimeError("LeaseManager is already running")
        # The scheduler lives in its own host task, so the manager may be entered
        # and exited from different tasks (pytest fixtures, some lifespans do that).
        loop = self._loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
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
                with anyio.CancelScope() as loop_scope:
                    self._loop_scope = loop_scope
                    started.set_result(None)
                    await self._scheduler.run_forever(tg)
                # Let calls already in flight land, so what they obtained is recorded
                # (and revoked at exit) rather than lost.
                with anyio.move_on_after(self.config.shutdown_timeout / 3):
                    await self._scheduler.idle()
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
        started = anyio.current_time()
        deadline = started + self.config.shutdown_timeout
        with anyio.CancelScope(shield=True):
            if self._loop_scope is not None:
                self._loop_scope.cancel()
            # Calls in flight get two thirds of the budget: a hung one (which a shielded
            # acquisition cannot be made to drop) must leave time to revoke the rest.
            with anyio.move_on_at(started + self.config.shutdown_timeout * 2 / 3):
                await asyncio.wait([self._host_task])
            if not self._host_task.done():
                self._host_task.cancel()
            self._host_task = None
            for h in self._core.handles.values():
                h.close()
            with anyio.move_on_at(deadline) as scope:
                await self._renewer.drain.revoke_everything()
            if scope.cancelled_caught:
                logger.warning(
                    "lease.shutdown_timeout", extra={"timeout": self.config.shutdown_timeout}
                )

    # ------------------------------------------------------------------ internals

    def _wake(self, due: float) -> None:
        self._scheduler.wake(due)

    async def _run_job(self, job: Job) -> None:
        handle = job.handle
        try:
            if isinstance(job, Planned):
                await self._renewer.run(handle, job.step)
            else:
                await self._renewer.drain.run(job)
        except Exception as exc:
            # A bug of ours, not a Vault failure: log it, keep the loop and the handle alive.
            logger.error(
                "lease.internal_error",
                extra={"secret": handle.name, "error_class": type(exc).__name__},
            )
            if isinstance(job, Planned):
                retry = self.clock.now() + self.config.backoff_max
                self._core.plan(handle, Step(job.step.action, retry, required=job.step.required))

    def _client(self, client: AsyncVaultClient | None) -> AsyncVaultClient:
        vault = client if client is not None else self.client
        if vault is None:
            raise ValueError("no client given, and the LeaseManager has no default client")
        return vault


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _retrieve(future: asyncio.Future[Lease]) -> None:
    """Mark a rotation's exception as seen (its caller may have been cancelled)."""
    if not future.cancelled():
        future.exception()
