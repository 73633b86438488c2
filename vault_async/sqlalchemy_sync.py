"""Keep a sync SQLAlchemy ``Engine`` (psycopg 3, ``postgresql+psycopg://``) on rotating credentials.

Usage::

    from sqlalchemy import create_engine
    from vault_async import sync
    from vault_async.sqlalchemy_sync import bind_engine

    with sync.start(db_role="app") as runtime:
        engine = create_engine("postgresql+psycopg://db:5432/app", pool_size=10)
        binding = bind_engine(engine, runtime.credentials, assume_role="app_rw")
        with engine.connect() as conn: ...
        binding.detach()
        engine.dispose()

The listeners are the async binding's (:class:`~vault_async._pool_listeners.PoolListeners`),
so the guarantees are the same: new connections log in with the credential in force (``do_connect``)
and run ``SET ROLE`` when ``assume_role`` is given; a rotation closes the idle connections at
once and the checked-out ones when they are returned; a login PostgreSQL rejects forces one
rotation and one retry; a statement's own error (even ``permission denied``, unless its login
is gone) keeps the pool; checkouts and returns are counted per generation through
``track_use``, so the lease engine revokes a replaced lease only once its connections are back.

What differs is where things run. ``do_connect`` runs on the application's thread, which
blocks in :meth:`SyncCredentials.force_rotate` while the engine thread rotates. The pool swap
runs on the engine thread, inside the rotation's callback: closing idle psycopg connections
takes microseconds, and it is done before the engine can revoke the old lease. A checkout is
counted before its generation is checked (a rotation then either waits for it or finds it
stale; see ``_sync_credentials``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import URL, Dialect, Engine, make_url
from sqlalchemy.pool import ConnectionPoolEntry, Pool

from ._credential_source import Credential
from ._login_check import DEFAULT_LOGIN_CHECK_INTERVAL, BlockingLoginCheck
from ._pool_listeners import PoolListeners
from ._sync_credentials import SyncCallback, SyncCredential, SyncCredentialSource

__all__ = ["SyncEngineBinding", "bind_engine", "psycopg_url"]

logger = logging.getLogger("vault_async.sqlalchemy")

HOLD_KEY = "vault_async.connect_hold"
"""Key in ``connection_record.info``: the generation a login in progress holds."""

RETIRED_POOL_GRACE = 0.1
"""Seconds a swapped-out pool is kept, its generation held, before it is disposed again."""


def psycopg_url(url: str | URL) -> URL:
    """``url`` for the sync psycopg 3 driver, without credentials (the source gives them):
    one ``DATABASE_URL`` (``postgresql+asyncpg://...``) serves the async and sync bindings."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg", username=None, password=None)


@dataclass(frozen=True, slots=True)
class _Value:
    data: Mapping[str, Any] = field(repr=False)


class _SourceView:
    """A :class:`SyncCredentialSource` seen as the listeners' ``UseTrackingSource``."""

    def __init__(self, credentials: SyncCredentialSource) -> None:
        self._credentials = credentials

    @property
    def current(self) -> _Value:
        snapshot = self._credentials.current()
        return _Value({"username": snapshot.username, "password": snapshot.password})

    @property
    def generation(self) -> int:
        return self._credentials.current().generation

    async def force_rotate(self, reason: str, *, generation: int | None = None) -> SyncCredential:
        raise RuntimeError("the sync binding rotates through SyncCredentials.force_rotate")

    def subscribe(self, callback: SyncCallback) -> Callable[[], None]:
        return self._credentials.subscribe(callback)

    def track_use(self, generation: int, delta: int) -> None:
        self._credentials.track_use(generation, delta)


class SyncEngineBinding(PoolListeners):
    """The listeners that tie one sync ``Engine`` to one :class:`SyncCredentialSource`."""

    def __init__(
        self,
        engine: Engine,
        credentials: SyncCredentialSource,
        *,
        assume_role: str | None = None,
        login_check_interval: float = DEFAULT_LOGIN_CHECK_INTERVAL,
    ) -> None:
        super().__init__(
            engine, _SourceView(credentials), assume_role=assume_role,
            login_check_interval=login_check_interval, login_check=BlockingLoginCheck,
        )
        self.engine = engine
        self.credentials = credentials
        self._swap_lock = threading.Lock()
        self._in_force = credentials.current().generation
        """The generation of the connections the pool in use opens."""

    def swap_pool(self) -> None:
        """Close idle connections now; checked-out ones close when returned."""
        with self._swap_lock:
            self.stats.pool_swaps += 1
            retired, generation = self.engine.pool, self._in_force
            self._in_force = self.credentials.current().generation
            # A connection whose return passed the checkin listener before this swap may
            # still be on its way into the retired pool's queue, its -1 already counted: the
            # generation stays held until the retired pool has been disposed once more.
            self.credentials.track_use(generation, 1)
            try:
                self.engine.dispose(close=True)
                self._retired()
            finally:
                threading.Thread(
                    target=self._dispose_retired, args=(retired, generation),
                    name="vault-pool-retired", daemon=True,
                ).start()
        logger.info("pool.swapped", extra={"generation": self.source.generation})

    def _dispose_retired(self, retired: Pool, generation: int) -> None:
        try:
            time.sleep(RETIRED_POOL_GRACE)
            retired.dispose()
        except Exception as error:
            logger.warning("pool.swap_failed", extra={"error_class": type(error).__name__})
        finally:
            self.credentials.track_use(generation, -1)

    def _on_event(self, lease_event: Any) -> None:
        # Called with the new credential, on the engine thread, before the old lease may go.
        try:
            self.swap_pool()
        except Exception as error:
            logger.warning("pool.swap_failed", extra={"error_class": type(error).__name__})

    def _refresh(self, reason: str, generation: int) -> None:
        self.credentials.force_rotate(reason, generation=generation)

    def _credential(self) -> Credential:
        snapshot = self.credentials.current()  # one read: the login and its generation agree
        return Credential(snapshot.username, snapshot.password, snapshot.generation)

    def _on_do_connect(
        self,
        dialect: Dialect,
        conn_rec: ConnectionPoolEntry | None,
        cargs: tuple[Any, ...],
        cparams: dict[str, Any],
    ) -> Any:
        if conn_rec is None:  # only the async binding opens connections without a record
            return super()._on_do_connect(dialect, conn_rec, cargs, cparams)
        # A login in progress holds its generation until the checkout counts the connection:
        # a rotation meanwhile must not revoke the lease under a session about to open.
        generation = self.credentials.current().generation
        self.credentials.track_use(generation, 1)
        conn_rec.info[HOLD_KEY] = generation
        try:
            return super()._on_do_connect(dialect, conn_rec, cargs, cparams)
        except BaseException:
            self._release_hold(conn_rec)
            raise

    def _on_connect(self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry) -> None:
        # A failure here (SET ROLE to a missing role) discards the record without a checkin:
        # the hold is given back now or never.
        try:
            super()._on_connect(dbapi_connection, conn_rec)
        except BaseException:
            self._release_hold(conn_rec)
            raise

    def _release_hold(self, conn_rec: ConnectionPoolEntry) -> None:
        generation = conn_rec.info.pop(HOLD_KEY, None)
        if generation is not None:
            self.credentials.track_use(generation, -1)

    def _on_checkin(self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry) -> None:
        try:
            super()._on_checkin(dbapi_connection, conn_rec)
        finally:
            self._release_hold(conn_rec)  # a connection that never reached a checkout

    def _on_checkout(
        self, dbapi_connection: Any, conn_rec: ConnectionPoolEntry, proxy: Any
    ) -> None:
        # Counted first, checked second: a rotation on the engine thread either sees this +1
        # (and waits for its -1) or has already published the generation this check sees.
        self._count_out(conn_rec)
        self._release_hold(conn_rec)
        if self._credential_is_stale(conn_rec):
            self.stats.stale_closed += 1
            # The pool invalidates it (checkin counts it back) and connects afresh.
            raise exc.DisconnectionError("connection made with a rotated credential")


def bind_engine(
    engine: Engine,
    credentials: SyncCredentialSource,
    *,
    assume_role: str | None = None,
) -> SyncEngineBinding:
    """Attach ``credentials`` to ``engine`` and return the binding (``detach()`` at the end)."""
    binding = SyncEngineBinding(engine, credentials, assume_role=assume_role)
    binding.attach()
    return binding
