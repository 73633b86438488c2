"""The lease engine for sync code: one background thread with its own event loop.

Usage::

    from vault_async import sync

    with sync.start(db_role="app") as runtime:      # blocks until the first credential
        credential = runtime.credentials.current()  # username, password, generation
        ...
    # leaving the block stops the engine thread, revoking the leases and the login token

``start`` opens an ``AsyncVaultClient`` and a ``LeaseManager`` on a thread of their own
(anyio's blocking portal), logs in, and waits for the first database credential: at most
``startup_timeout`` seconds (plus the start-up jitter of ``lease_config``), and not at all once
Vault refused in a way retrying will not fix. Any failure to start is a one-line
:class:`StartupError`; the thread is gone by then.

Defaults: ``client_config=None`` reads ``ClientConfig.from_env()`` (``VAULT_ADDR``,
``VAULT_CACERT``, ``VAULT_TOKEN``...); ``auth=None`` reads ``VAULT_AUTH_METHOD`` and its
settings as the reference service does (:func:`vault_async.auth._environ.auth_from_env`:
``token`` by default, ``approle``, ``kubernetes``, ``jwt``). A token obtained by login is
revoked on exit; a token handed in (``VAULT_TOKEN``, ``TokenAuth``) is renewed, never revoked;
a token read from an Agent's sink (``TokenAuth(token_file=...)``) is neither.

The runtime may also be kept without ``with`` (a WSGI app factory): :meth:`SyncRuntime.close`
stops it, and it is closed at interpreter exit in any case. ``handle_sigterm=True`` (main
thread only) turns SIGTERM into ``SystemExit(0)`` in the main thread, so the ``with`` block or
the exit hook revokes before the process ends; the previous handler is restored on close
(``SIG_DFL`` for one installed outside Python), which only a close in the main thread can do:
closed from another thread, the handler stays and ``sync.sigterm_handler_kept`` is logged.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from types import FrameType, TracebackType
from typing import Any

import anyio
from anyio.from_thread import start_blocking_portal

from ._config import ClientConfig
from ._exceptions import InvalidConfig
from ._startup import Diagnosis
from ._sync_credentials import (
    StaticSyncCredentials,
    SyncCredential,
    SyncCredentials,
    SyncCredentialSource,
)
from .auth import AuthMethod
from .auth._environ import auth_from_env
from .lifecycle import LeaseConfig, LeaseManager
from .runtime import StartupError, _manage_token, wait_first

__all__ = [
    "StartupError",
    "StaticSyncCredentials",
    "SyncCredential",
    "SyncCredentialSource",
    "SyncCredentials",
    "SyncRuntime",
    "start",
]

DEFAULT_STARTUP_TIMEOUT = 30.0

logger = logging.getLogger("vault_async.sync")

_running: weakref.WeakSet[SyncRuntime] = weakref.WeakSet()
"""The runtimes kept until interpreter exit (their exit hook is registered)."""


class SyncRuntime:
    """The running engine thread; :attr:`credentials` is safe to use from any thread."""

    def __init__(self, credentials: SyncCredentials, manager: LeaseManager, stack: ExitStack):
        self.credentials = credentials
        self.manager = manager
        self._stack = stack
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        return f"SyncRuntime({state}, {self.credentials!r})"

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the engine thread: revoke the leases and the login token (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stack.close()

    def _forget_inherited(self) -> None:
        """In a forked child: the engine thread stayed in the parent, with the leases."""
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._closed = True
        atexit.unregister(self.close)

    def __enter__(self) -> SyncRuntime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start(
    client_config: ClientConfig | None = None,
    auth: AuthMethod | None = None,
    *,
    db_role: str,
    db_mount: str = "database",
    static: bool = False,
    lease_config: LeaseConfig | None = None,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    handle_sigterm: bool = False,
) -> SyncRuntime:
    """Start the engine thread and wait for the first credential of ``db_role``.

    ``static=True`` manages a static role (``{db_mount}/static-creds/{db_role}``) instead
    of a dynamic one. Raises :class:`StartupError` (one line) when it cannot start.
    """
    if handle_sigterm and threading.current_thread() is not threading.main_thread():
        raise ValueError("handle_sigterm=True needs sync.start() to be called in the main thread")
    if not db_role:
        raise ValueError("db_role is required: the Vault database role to log in with")
    with ExitStack() as stack:
        try:
            config = client_config if client_config is not None else ClientConfig.from_env()
            method = auth if auth is not None else auth_from_env(token=config.token)
        except InvalidConfig as error:
            raise _config_error(error) from None
        portal = stack.enter_context(start_blocking_portal(name="vault-async-engine"))
        engine = _engine(
            config, method, db_role=db_role, db_mount=db_mount, static=static,
            lease_config=lease_config, startup_timeout=startup_timeout,
        )
        try:
            credentials, manager = stack.enter_context(portal.wrap_async_context_manager(engine))
        except (InvalidConfig, ValueError) as error:
            raise _config_error(error) from None
        runtime = SyncRuntime(credentials, manager, stack.pop_all())
    _close_at_exit(runtime)
    if handle_sigterm:
        _handle_sigterm(runtime)
    return runtime


def _close_at_exit(runtime: SyncRuntime) -> None:
    atexit.register(runtime.close)
    _running.add(runtime)
    runtime._stack.callback(_running.discard, runtime)
    runtime._stack.callback(atexit.unregister, runtime.close)


def _forget_inherited_runtimes() -> None:
    """After a fork, in the child: the parent's runtimes are closed as far as the child is
    concerned, and its exit must not call into an engine thread that was not forked."""
    for runtime in list(_running):
        runtime._forget_inherited()
    _running.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_runtimes)


@asynccontextmanager
async def _engine(
    config: ClientConfig,
    auth: AuthMethod,
    *,
    db_role: str,
    db_mount: str,
    static: bool,
    lease_config: LeaseConfig | None,
    startup_timeout: float,
) -> AsyncIterator[tuple[SyncCredentials, LeaseManager]]:
    """Runs on the engine thread: client, lease engine, token, first credential."""
    from ._client import AsyncVaultClient

    client = AsyncVaultClient(config=config)
    async with client, LeaseManager(client, lease_config) as manager:
        waiting: dict[str, Any] = {"addr": config.addr, "timeout_name": "startup_timeout"}
        token = _manage_token(manager, client, auth)
        budget = startup_timeout + manager.startup_delay_left
        deadline = anyio.current_time() + budget
        await wait_first(token, budget, **waiting)
        if static:
            handle = manager.manage_static_credentials(client, role=db_role, mount=db_mount)
        else:
            handle = manager.manage_database_credentials(client, role=db_role, mount=db_mount)
        await wait_first(handle, max(0.0, deadline - anyio.current_time()), **waiting)
        credentials = SyncCredentials(handle, asyncio.get_running_loop())
        try:
            yield credentials, manager
        finally:
            credentials.close()


def _config_error(error: Exception) -> StartupError:
    return StartupError(
        Diagnosis("invalid", str(error).splitlines()[0] if str(error) else type(error).__name__),
        secret="", kind="config", error=error,
    )


def _handle_sigterm(runtime: SyncRuntime) -> None:
    """SIGTERM raises SystemExit(0) in the main thread; the runtime closes as it unwinds."""
    # None: a handler installed outside Python, which cannot be put back; the default is.
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:
        previous = signal.SIG_DFL

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, previous)  # a second SIGTERM acts as before
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        if threading.current_thread() is not threading.main_thread():
            # Only the main thread may set a handler: SIGTERM keeps raising SystemExit(0).
            logger.warning("sync.sigterm_handler_kept")
            return
        with contextlib.suppress(ValueError, TypeError):
            if signal.getsignal(signal.SIGTERM) is on_sigterm:
                signal.signal(signal.SIGTERM, previous)

    runtime._stack.callback(restore)
