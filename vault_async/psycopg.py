"""Keep a ``psycopg_pool.AsyncConnectionPool`` on short-lived database credentials.

Usage::

    async with bind_pool("host=db port=5432 dbname=app", handle, assume_role="app_owner",
                         min_size=2, max_size=10) as binding:
        async with binding.pool.connection() as conn:
            await conn.execute("SELECT ...")

``handle`` is anything satisfying :class:`~vault_async._credential_source.CredentialSource`
(the lease engine's ``ManagedSecret``; ``StaticCredentials`` in plain mode). ``bind_pool`` (or
``await create_pool(...)`` then ``await binding.aclose()``) takes the keyword arguments of
``AsyncConnectionPool`` (``min_size``, ``max_size``, ``kwargs``, ``configure``, ``check``,
``reset``, ``connection_class``, ...); ``user`` and ``password`` come from the source. The
conninfo may also be a URL, a SQLAlchemy one included (``postgresql+psycopg://``).

How the pool follows the credential, through psycopg_pool's public surface only:

* ``connection_class`` is a subclass of the given class (``psycopg.AsyncConnection`` by
  default) whose ``connect`` logs in with the current username and password, runs ``SET ROLE``
  (quoted, committed) when ``assume_role`` is given, and remembers the login's generation.
  (psycopg_pool 3.3 also evaluates a callable ``kwargs`` per connection, but the pool keeps a
  refused connect to itself and retries it on its own schedule: only ``connect`` sees the
  refusal, so the rotation it calls for is forced there);
* a login refused for a bad password or a missing role forces one rotation and is retried
  once; a login that finishes after a rotation is redone with the new credential;
* on a ``rotated`` event the pool is drained (``AsyncConnectionPool.drain()``): idle
  connections close at once and are replaced, connections in use are closed by the pool when
  returned. ``getconn`` never hands out a connection of an older generation: it is closed and
  the pool replaces it;
* a statement's own error leaves the connection to psycopg_pool, which keeps it;
* a source that also has ``track_use`` is told +1 for each connection opened with a
  generation and -1 once it is closed (or found broken on return), so the lease engine
  revokes a rotated-away lease only once none of its connections is open, idle or busy.

The jobs that stand alone live beside this module (``_credential_source``, ``_sqlerrors``,
``_use_counter``); what it shares with the asyncpg binding (following the source, the swap
tasks, a rejected login) is in ``_pool_binding`` and ``_pool_swaps``. What stays here is the
binding, the pool's two public methods and the connection class, which share its state and read
best side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ._credential_source import CredentialSource, UseTrackingSource
from ._json import drop_none
from ._pool_binding import PoolBindingBase, PoolStats
from ._sqlerrors import is_login_rejected
from .asyncpg import plain_dsn

__all__ = ["PsycopgPoolBinding", "PsycopgPoolStats", "bind_pool", "create_pool"]

logger = logging.getLogger("vault_async.psycopg")

DEFAULT_CLOSE_TIMEOUT = 10.0
"""Seconds :meth:`PsycopgPoolBinding.aclose` gives the pool to close."""

LOGIN_ATTEMPTS = 3
"""Logins one connect may make: a rejected one, and ones overtaken by a rotation."""

Connect = Callable[..., Awaitable[Any]]


@dataclass(eq=False)
class _Login:
    """What one connection logged in with; its identity keys the use count."""

    generation: int


@dataclass
class PsycopgPoolStats(PoolStats):
    """Counters kept by a :class:`PsycopgPoolBinding` (``pool_swaps`` counts drains)."""


class PsycopgPoolBinding(PoolBindingBase["_BoundPool"]):
    """An ``AsyncConnectionPool`` (``.pool``) whose connections log in with a source."""

    logger = logger

    def __init__(
        self,
        source: CredentialSource,
        *,
        assume_role: str | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        super().__init__(
            source, PsycopgPoolStats(), assume_role=assume_role, close_timeout=close_timeout
        )

    def __repr__(self) -> str:
        name = None if self._pool is None else self._pool.name
        return f"PsycopgPoolBinding(pool={name!r}, generation={self.source.generation})"

    def connection(self) -> AbstractAsyncContextManager[Any]:
        """``async with binding.connection() as conn``: the pool's ``connection()``."""
        return self.pool.connection()

    # lifecycle -----------------------------------------------------------------------

    async def open(self, conninfo: str, *, wait: bool = True, **options: Any) -> PsycopgPoolBinding:
        """Subscribe to rotations, then open the pool (waiting for ``min_size`` connections
        when ``wait``)."""
        self._follow()
        base = options.pop("connection_class", psycopg.AsyncConnection)
        self._pool = _BoundPool(
            self,
            plain_dsn(conninfo) or "",
            connection_class=_bound_class(base, self),
            open=False,
            **options,
        )
        try:
            await self._pool.open(wait=wait, timeout=options.get("timeout", 30.0))
        except BaseException:
            await self._pool.close()
            self._detach()
            raise
        return self

    async def aclose(self) -> None:
        """Stop following rotations, wait for pending swaps (drains), close the pool, then
        give the counts back."""
        self._stop_following()
        await self.aclose_pending()
        if self._pool is not None:
            await self._pool.close(timeout=self.close_timeout)
        self._detach()

    def _announce(self, source: UseTrackingSource) -> None:
        # Every open connection is counted, idle ones too: no hold, only the announcement
        # before any connection (a replaced lease then waits for its connections rather than
        # for a fixed drain period).
        source.track_use(source.generation, 0)

    # rotation --------------------------------------------------------------------------

    async def swap_pool(self) -> None:
        """Drain the pool: idle connections close now, the others when returned."""
        self.stats.pool_swaps += 1
        await self.pool.drain()
        logger.info("pool.swapped", extra={"generation": self.source.generation})

    def is_stale(self, connection: Any) -> bool:
        """Made with a credential that has since been rotated."""
        login: _Login | None = getattr(connection, "vault_login", None)
        return login is not None and login.generation != self.source.generation

    # connections ---------------------------------------------------------------------

    async def login(self, connect: Connect, kwargs: dict[str, Any]) -> Any:
        """Connect with the current credential: a rejected login rotates once and retries,
        a login overtaken by a rotation is redone."""
        rejected = False
        for attempt in range(1, LOGIN_ATTEMPTS + 1):
            credential = self._credential()
            login = drop_none(user=credential.username, password=credential.password)
            try:
                connection = await connect(**{**kwargs, **login})
            except Exception as error:
                if rejected or not is_login_rejected(error):
                    raise
                rejected = True
                await self._refresh_after(error, credential)
                continue
            try:
                if self._role_sql is not None:
                    await connection.execute(self._role_sql)
                    await connection.commit()  # kept past any later rollback
            except BaseException:
                await connection.close()
                raise
            if credential.generation != self.source.generation and attempt < LOGIN_ATTEMPTS:
                await connection.close()  # rotated while logging in: log in again
                continue
            self._register(connection, credential.generation)
            return connection
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _register(self, connection: Any, generation: int) -> None:
        login = _Login(generation)
        connection.vault_login = login
        self.stats.connects += 1
        if self._uses is not None:
            self._uses.out(login, generation)
            # A connection nobody closes (dropped broken) still reports its -1 when collected,
            # wherever the collector runs: the count is updated on the loop's thread.
            weakref.finalize(
                connection, self._count_back_collected, login, asyncio.get_running_loop()
            )
        self._request_swap()  # this login may be the first to see a new generation

    def gone(self, connection: Any) -> None:
        """``connection`` is closed: its login no longer holds the lease."""
        login: _Login | None = getattr(connection, "vault_login", None)
        if login is not None:
            self._count_back(login)

    def _count_back_collected(self, login: _Login, loop: asyncio.AbstractEventLoop) -> None:
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:  # no loop running on this thread
            on_loop = False
        if on_loop:
            self._count_back(login)
        else:
            # RuntimeError: the loop is closed; the binding is gone with it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._count_back, login)

    def _count_back(self, login: _Login) -> None:
        if self._uses is not None:
            self._uses.back(login)


class _BoundPool(AsyncConnectionPool[Any]):
    """The pool, with its public ``getconn``/``putconn`` refusing stale connections and
    reporting broken ones; everything else is psycopg_pool's."""

    def __init__(self, binding: PsycopgPoolBinding, conninfo: str, **options: Any) -> None:
        super().__init__(conninfo, **options)
        self._binding = binding

    async def getconn(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (the pool's)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            connection = await super().getconn(max(0.0, deadline - time.monotonic()))
            if not self._binding.is_stale(connection):
                return connection
            # Missed by the drain (returned or made around it): closed, and replaced.
            self._binding.stats.stale_closed += 1
            await connection.close()
            await super().putconn(connection)  # the pool drops a closed one and replaces it
            self._binding._request_swap()
            if time.monotonic() >= deadline:
                raise PoolTimeout("no connection of the current credential in time")

    async def putconn(self, conn: Any) -> None:
        if conn.closed:
            self._binding.gone(conn)  # broken in use: the pool drops it without closing it
        await super().putconn(conn)


def _bound_class(base: type[Any], binding: PsycopgPoolBinding) -> type[Any]:
    """``base`` whose ``connect`` logs in through ``binding`` and whose ``close`` tells it."""

    async def connect(cls: type[Any], /, conninfo: str = "", **kwargs: Any) -> Any:
        parent = super(bound, cls).connect

        async def open_(**params: Any) -> Any:
            return await parent(conninfo, **params)

        return await binding.login(open_, kwargs)

    async def close(self: Any) -> None:
        await base.close(self)
        binding.gone(self)

    bound: type[Any] = type(
        f"Vault{base.__name__}",
        (base,),
        {"connect": classmethod(connect), "close": close, "__module__": __name__},
    )
    return bound


async def create_pool(
    conninfo: str,
    source: CredentialSource,
    *,
    assume_role: str | None = None,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    wait: bool = True,
    **options: Any,
) -> PsycopgPoolBinding:
    """Open an ``AsyncConnectionPool`` bound to ``source``; call ``aclose()`` at the end.

    ``options`` are ``AsyncConnectionPool``'s (``min_size``, ``max_size``, ``kwargs``,
    ``configure``, ``check``, ``reset``, ``connection_class``, ``timeout``, ...).
    """
    binding = PsycopgPoolBinding(source, assume_role=assume_role, close_timeout=close_timeout)
    return await binding.open(conninfo, wait=wait, **options)


@asynccontextmanager
async def bind_pool(
    conninfo: str,
    source: CredentialSource,
    *,
    assume_role: str | None = None,
    **options: Any,
) -> AsyncIterator[PsycopgPoolBinding]:
    """``async with bind_pool(...) as binding``: :func:`create_pool`, closed at the end."""
    binding = await create_pool(conninfo, source, assume_role=assume_role, **options)
    try:
        yield binding
    finally:
        await binding.aclose()
