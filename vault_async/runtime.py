"""The running pieces of a service on Vault credentials: client, lease engine, engine binding.

Public as ``vault_async.runtime`` (no FastAPI needed, so Alembic and scripts use it too;
``vault_async.fastapi`` re-exports it). Usage::

    async with open_runtime(
        "postgresql+asyncpg://db:5432/app",
        client=AsyncVaultClient("https://vault:8200"),
        auth=AppRoleAuth(role_id, secret_id_file="/run/secrets/secret_id"),
        db_role="app",
    ) as runtime:
        async with runtime.sessionmaker() as session: ...

Start-up: open the client, start the lease engine, get the token (after the engine's
start-up jitter, ``LeaseConfig.startup_jitter``, when one is set), then the database
credential (failing fast on errors retrying won't fix), then bind the engine. Shutdown, in
reverse: stop the Vault probe, detach the binding, close the pool, leave the lease engine
(which revokes the leases and a token obtained by login), close the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ._prometheus import LatencyRecorder, runtime_registry
from ._startup import Diagnosis, Reason, diagnose
from .sqlalchemy import (
    CredentialSource,
    EngineBinding,
    Prewarm,
    StaticCredentials,
    bind_credentials,
)

if TYPE_CHECKING:
    from ._client import AsyncVaultClient
    from ._nodes import NodeStatus
    from .auth import AuthMethod
    from .lifecycle import Lease, LeaseManager, ManagedSecret, SecretState

__all__ = ["StartupError", "VaultRuntime", "open_runtime", "wait_first"]

logger = logging.getLogger("vault_async.runtime")

DEFAULT_READY_TIMEOUT = 30.0
DEFAULT_PROBE_INTERVAL = 10.0
DEFAULT_PROBE_TIMEOUT = 2.0
VAULT_RECENT_WINDOW = 30.0
"""Vault counts as answering when it answered within this many seconds."""


class StateSource(Protocol):
    """What the runtime reads from the lease engine (``LeaseManager`` satisfies it)."""

    def snapshot(self) -> Mapping[str, SecretState]: ...


@dataclass
class VaultRuntime:
    """Everything :func:`open_runtime` started (FastAPI keeps it on ``app.state``)."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    binding: EngineBinding
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    client: AsyncVaultClient | None = None
    manager: StateSource | None = None
    db_secret: str | None = None
    token_secret: str | None = None
    recent_window: float = VAULT_RECENT_WINDOW
    registry: CollectorRegistry = field(init=False, repr=False, compare=False)
    """What /metrics shows: this runtime's own registry, not the process-wide default."""

    def __post_init__(self) -> None:
        self.registry = runtime_registry(self)

    @property
    def mode(self) -> Literal["vault", "plain"]:
        return "plain" if self.manager is None else "vault"

    def snapshot(self) -> Mapping[str, SecretState]:
        """The lease engine's state per managed secret (empty in plain mode)."""
        return {} if self.manager is None else dict(self.manager.snapshot())

    @property
    def vault_nodes(self) -> tuple[NodeStatus, ...]:
        """Each Vault node's address and last-known state (empty in plain mode)."""
        return () if self.client is None else self.client.nodes

    @property
    def vault_last_node(self) -> str | None:
        """The address of the Vault node that answered last (None before any answer)."""
        return None if self.client is None else self.client.last_node

    def vault_answered_recently(self, now: float | None = None) -> bool:
        """Vault answered within ``recent_window`` seconds, and nothing failed since."""
        last, failed = self.latency.last_success, self.latency.last_failure
        if last is None or (failed is not None and failed > last):
            return False
        return (time.monotonic() if now is None else now) - last <= self.recent_window


class StartupError(RuntimeError):
    """The runtime could not get its first token or credential; the message names why.

    ``secret`` and ``kind`` say which handle (``auth/approle``, ``database/creds/app``),
    ``reason`` why (see ``vault_async._startup.Reason``), ``error`` is the last error.
    """

    def __init__(
        self,
        diagnosis: Diagnosis,
        *,
        secret: str,
        kind: str,
        error: BaseException | None,
        addrs: Sequence[str] = (),
    ) -> None:
        super().__init__(diagnosis.text)
        self.addrs = tuple(addrs)
        """Vault's address, or every node's address (several: a failover list was given)."""
        self.reason: Reason = diagnosis.reason
        self.secret = secret
        self.kind = kind
        self.error = error


async def wait_first(
    handle: ManagedSecret,
    timeout: float,  # noqa: ASYNC109
    *,
    addr: str | Sequence[str] = "",
    timeout_name: str = "ready_timeout",
) -> Lease:
    """Wait for a handle's first credential; give up at once on an error retrying won't fix.

    The first failure that retrying may fix (Vault unreachable, sealed) is logged at once,
    with ``addr`` and how long the wait goes on (``timeout_name`` names that setting).
    """
    deadline = anyio.current_time() + timeout
    told = False
    while True:
        remaining = deadline - anyio.current_time()
        try:
            return await handle.wait_ready(timeout=max(0.0, min(0.2, remaining)))
        except TimeoutError:
            error = handle.last_error
            found = diagnose(handle.name, handle.kind, error, addr or "?")
            if found.final or remaining <= 0:
                if not found.final:
                    found = Diagnosis(found.reason, f"{found.text} after {timeout:g} s")
                addrs = (addr,) if isinstance(addr, str) else tuple(addr)
                raise StartupError(
                    found, secret=handle.name, kind=handle.kind, error=error, addrs=addrs
                ) from None
            if error is not None and not told:
                told = True
                logger.warning(
                    "%s; still trying for %g s (%s)", found.text, timeout, timeout_name,
                    extra={"secret": handle.name, "reason": found.reason},
                )


async def _probe_vault(
    client: AsyncVaultClient, latency: LatencyRecorder, interval: float, probe_timeout: float
) -> None:
    """Ask Vault's health endpoint when nothing else talked to Vault for ``interval`` seconds."""
    while True:
        last = latency.last_success
        if last is None or time.monotonic() - last >= interval:
            with anyio.move_on_after(probe_timeout) as scope:
                try:
                    await client.sys.health()
                except Exception as error:
                    latency.mark_failed()
                    logger.info(
                        "runtime.vault_probe_failed",
                        extra={"error_class": type(error).__name__},
                    )
                else:
                    latency.mark_answered()
            if scope.cancelled_caught:
                latency.mark_failed()
                logger.info("runtime.vault_probe_timed_out")
        await anyio.sleep(interval / 2)


def _manage_token(
    manager: LeaseManager, client: AsyncVaultClient, auth: AuthMethod | None
) -> ManagedSecret:
    """Keep the client's token renewed; revoke it at the end only if we logged in for it."""
    from .auth import TokenAuth

    if auth is None:
        if not client.token:
            raise ValueError("give an auth method, or a client that already has a token")
        auth = TokenAuth(token=client.token)
    # A token handed to the service (TokenAuth) is the operator's: the token source renews
    # it and never revokes it.
    return manager.manage_token(client, auth)


@asynccontextmanager
async def open_runtime(
    database_url: str,
    *,
    client: AsyncVaultClient | None = None,
    auth: AuthMethod | None = None,
    db_role: str | None = None,
    db_static_role: str | None = None,
    db_mount: str = "database",
    assume_role: str | None = None,
    manager: LeaseManager | None = None,
    latency: LatencyRecorder | None = None,
    engine_options: Mapping[str, Any] | None = None,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
    ready_timeout_name: str = "ready_timeout",
    probe_interval: float = DEFAULT_PROBE_INTERVAL,
    recent_window: float = VAULT_RECENT_WINDOW,
    prewarm: Prewarm | None = None,
) -> AsyncIterator[VaultRuntime]:
    """Start everything a service needs; plain mode when neither role is given.

    In Vault mode ``client`` is an (unopened) ``AsyncVaultClient``; ``auth`` an auth method
    object. A token obtained by login is revoked at the end; a given token (``TokenAuth``,
    or ``auth=None`` with a client that has a token) is renewed but never revoked.
    If no first credential comes within ``ready_timeout`` seconds, or Vault refuses, a
    :class:`StartupError` says why in one line; ``ready_timeout_name`` is how the log
    line about a Vault that is not answering yet names that setting. ``prewarm`` says how
    a rotation opens the new login's connections before switching the pool to them
    (default: :class:`~vault_async.sqlalchemy.Prewarm`'s defaults).
    """
    if db_role and db_static_role:
        raise ValueError("give db_role or db_static_role, not both")
    url = make_url(database_url)
    plain = not (db_role or db_static_role)
    options = {"pool_pre_ping": False, **(engine_options or {})}
    recorder = latency or LatencyRecorder()
    async with AsyncExitStack() as stack:
        source: CredentialSource
        db_secret = token_secret = None
        if plain:
            source = StaticCredentials(url.username, url.password)
            engine = create_async_engine(url, **options)
        else:
            if client is None:
                raise ValueError("Vault mode needs a client")
            from .lifecycle import LeaseManager

            await stack.enter_async_context(client)
            if manager is None:
                manager = LeaseManager(client)
            await stack.enter_async_context(manager)
            token_handle = _manage_token(manager, client, auth)
            addrs, timeout_name = client.config.addrs, ready_timeout_name
            # The wait for the first token starts once the start-up jitter has passed.
            await wait_first(
                token_handle,
                ready_timeout + manager.startup_delay_left,
                addr=addrs,
                timeout_name=timeout_name,
            )
            token_secret = token_handle.name
            if db_role:
                db_handle = manager.manage_database_credentials(
                    client, role=db_role, mount=db_mount
                )
            else:
                db_handle = manager.manage_static_credentials(
                    client, role=db_static_role or "", mount=db_mount
                )
            await wait_first(db_handle, ready_timeout, addr=addrs, timeout_name=timeout_name)
            db_secret = db_handle.name
            source = db_handle
            engine = create_async_engine(url.set(username=None, password=None), **options)
        stack.push_async_callback(engine.dispose)
        binding = bind_credentials(
            engine, source, assume_role=assume_role, prewarm=prewarm or Prewarm()
        )
        stack.push_async_callback(binding.aclose)
        runtime = VaultRuntime(
            engine=engine,
            sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
            binding=binding,
            latency=recorder,
            client=None if plain else client,
            manager=None if plain else manager,
            db_secret=db_secret,
            token_secret=token_secret,
            recent_window=recent_window,
        )
        if client is not None and not plain:
            # A plain task, not a task group: the runtime may be entered and left in
            # different tasks (test fixtures, some servers' lifespans).
            probe = asyncio.get_running_loop().create_task(
                _probe_vault(client, recorder, probe_interval, DEFAULT_PROBE_TIMEOUT)
            )
            stack.push_async_callback(_cancel, probe)
        yield runtime


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
