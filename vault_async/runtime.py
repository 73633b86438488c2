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

With ``credentials`` (a :class:`~vault_async.file_credentials.FileCredentials`: an Agent
renders the database credential to a file) the database login comes from that file and
Vault is optional: with a client, only the token is managed (an Agent's sink file,
``TokenAuth(token_file=...)``, is neither renewed nor revoked).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
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

from ._first_credential import StartupError, first_from_file, wait_first
from ._prometheus import LatencyRecorder, runtime_registry
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
    from .file_credentials import FileCredentials
    from .lifecycle import LeaseManager, ManagedSecret, SecretState

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
    credentials: FileCredentials | None = None
    """The file the database credential is read from (file mode), else None."""
    registry: CollectorRegistry = field(init=False, repr=False, compare=False)
    """What /metrics shows: this runtime's own registry, not the process-wide default."""

    def __post_init__(self) -> None:
        self.registry = runtime_registry(self)

    @property
    def mode(self) -> Literal["vault", "file", "plain"]:
        if self.credentials is not None:
            return "file"
        return "plain" if self.manager is None else "vault"

    def snapshot(self) -> Mapping[str, SecretState]:
        """The state per managed secret, the credential file's included (empty in plain mode)."""
        states = {} if self.manager is None else dict(self.manager.snapshot())
        if self.credentials is not None:
            states[self.credentials.name] = self.credentials.state()
        return states

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
    credentials: FileCredentials | None = None,
    prewarm: Prewarm | None = None,
) -> AsyncIterator[VaultRuntime]:
    """Start everything a service needs; plain mode when neither role nor file is given.

    In Vault mode ``client`` is an (unopened) ``AsyncVaultClient``; ``auth`` an auth method
    object. A token obtained by login is revoked at the end; a given token (``TokenAuth``,
    or ``auth=None`` with a client that has a token) is renewed but never revoked; a token
    file's (an Agent's sink, ``TokenAuth(token_file=...)``) is neither renewed nor revoked.
    If no first credential comes within ``ready_timeout`` seconds, or Vault refuses, a
    :class:`StartupError` says why in one line; ``ready_timeout_name`` is how the log
    line about a Vault that is not answering yet names that setting.
    With ``credentials`` the login comes from that file (it is started here, and waited
    for up to ``ready_timeout``); a ``client`` is then optional and serves the token alone.
    ``prewarm`` says how a rotation opens the new login's connections before the old ones
    go (default: :class:`~vault_async.sqlalchemy.Prewarm`'s defaults).
    """
    if sum(map(bool, (db_role, db_static_role, credentials))) > 1:
        raise ValueError("give one of db_role, db_static_role and credentials")
    url = make_url(database_url)
    plain = not (db_role or db_static_role or credentials)
    options = {"pool_pre_ping": False, **(engine_options or {})}
    recorder = latency or LatencyRecorder()
    async with AsyncExitStack() as stack:
        source: CredentialSource
        db_secret = token_secret = None
        if plain:
            source = StaticCredentials(url.username, url.password)
            engine = create_async_engine(url, **options)
        elif client is None:
            if credentials is None:
                raise ValueError("Vault mode needs a client")
            source = await first_from_file(stack, credentials, ready_timeout)
            db_secret = credentials.name
            engine = create_async_engine(url.set(username=None, password=None), **options)
        else:
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
            if credentials is not None:
                source = await first_from_file(stack, credentials, ready_timeout)
                db_secret = credentials.name
            else:
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
            credentials=credentials,
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
