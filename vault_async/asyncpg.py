"""Keep an ``asyncpg.Pool`` on short-lived database credentials.

Usage::

    async with bind_pool("postgresql://db:5432/app", handle, assume_role="app_owner",
                         min_size=2, max_size=10) as binding:
        async with binding.pool.acquire() as con:
            await con.fetch("SELECT ...")

``handle`` is anything satisfying :class:`~vault_async._credential_source.CredentialSource`:
the lease engine's ``ManagedSecret`` does, and ``StaticCredentials`` serves plain mode.
``bind_pool`` (or ``await create_pool(...)`` then ``await binding.aclose()``) takes the
keyword arguments of :func:`asyncpg.create_pool`; ``user`` and ``password`` come from the
source.

How the pool follows the credential (the guarantees of the SQLAlchemy binding):

* the pool's ``connect`` hook reads the current username, password and generation in one
  go and logs in with them, then runs ``SET ROLE`` (quoted) when ``assume_role`` is given;
  ``RESET ALL`` on release leaves the role in place. The login's generation is counted while
  the login is in flight, and a login that finishes after a rotation is redone (up to
  ``LOGIN_ATTEMPTS``), so no session of a revoked login joins the pool;
* on a ``rotated`` event (or the first hook to see a newer generation) the pool is expired
  (:meth:`asyncpg.Pool.expire_connections`) and its idle connections are closed at once;
  connections in use finish and are closed when released;
* a login rejected for a bad password or a missing role forces one rotation and is retried
  once;
* a statement's own error (a missing table, a refused privilege, a syntax error) is left to
  asyncpg, which keeps the connection;
* a source that also has ``track_use`` is told +1 when a connection of a generation is
  acquired and -1 when it is back in the pool or closed, so the lease engine revokes a
  rotated-away lease only once none of its connections is open in anyone's hands. A
  connection of an older generation that is released before the pool is expired stays
  counted until it is closed. The binding also holds one count of its own on the generation
  in force, moved to the new one at a rotation and given back for the old one only after the
  swap has closed the idle connections (which are not counted), so a rotation with nothing
  acquired cannot revoke the old login under its idle sessions.

Each connection carries its login (generation) in a slot of a subclass of the pool's
``connection_class``: the pool hands out proxies, and the slot is what both the proxy and
the connection answer with.

The jobs that stand alone live beside this module (the source protocol and credential read in
``_credential_source``, SQLSTATE classes in ``_sqlerrors``, the +1/-1 bookkeeping in
``_use_counter``); what it shares with the psycopg binding (following the source, the swap
tasks, a rejected login) is in ``_pool_binding`` and ``_pool_swaps``. What stays here is the
asyncpg hooks, which share the binding's state (idle set, counters) and read best side by side.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg

from ._credential_source import Credential, CredentialSource, UseTrackingSource
from ._json import drop_none
from ._pool_binding import PoolBindingBase, PoolStats
from ._sqlerrors import is_login_rejected

__all__ = ["PoolBinding", "PoolStats", "bind_pool", "create_pool"]

logger = logging.getLogger("vault_async.asyncpg")

DEFAULT_CLOSE_TIMEOUT = 10.0
"""Seconds :meth:`PoolBinding.aclose` waits for connections in use before terminating them."""

LOGIN_ATTEMPTS = 3
"""Logins one connect may make when rotations overtake them."""

Hook = Callable[[Any], Awaitable[None]]


@dataclass(eq=False)
class _Login:
    """What one connection logged in with; its identity keys the use count."""

    generation: int
    connection: Any = field(repr=False)


def plain_dsn(dsn: str | None) -> str | None:
    """``dsn`` as asyncpg reads it: a SQLAlchemy URL's driver (``postgresql+asyncpg://``)
    is dropped, so one DATABASE_URL serves every binding."""
    if dsn is None:
        return None
    scheme, sep, rest = dsn.partition("://")
    base, plus, _driver = scheme.partition("+")
    if sep and plus and base in ("postgresql", "postgres"):
        return f"{base}://{rest}"
    return dsn


def _tracked_class(base: type[Any]) -> type[Any]:
    """``base`` with a slot for the connection's login."""
    return type(f"Tracked{base.__name__}", (base,), {"__slots__": ("vault_login",)})


class PoolBinding(PoolBindingBase["asyncpg.Pool"]):
    """An ``asyncpg.Pool`` (``.pool``) whose connections log in with a credential source."""

    logger = logger

    def __init__(
        self,
        source: CredentialSource,
        *,
        assume_role: str | None = None,
        connect: Callable[..., Awaitable[Any]] | None = None,
        setup: Hook | None = None,
        reset: Hook | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        super().__init__(
            source, PoolStats(), assume_role=assume_role, close_timeout=close_timeout
        )
        self._open: Callable[..., Awaitable[Any]] = connect or asyncpg.connect
        self._user_setup = setup
        self._user_reset = reset
        self._idle: dict[_Login, None] = {}
        """Connections open and not handed out (insertion-ordered set)."""

    def __repr__(self) -> str:
        size = None if self._pool is None else self._pool.get_size()
        return f"PoolBinding(generation={self.source.generation}, size={size})"

    def connection(self) -> AbstractAsyncContextManager[Any]:
        """``async with binding.connection() as con``: the pool's ``acquire()``."""
        return cast(AbstractAsyncContextManager[Any], self.pool.acquire())

    # lifecycle -----------------------------------------------------------------------

    async def open(self, dsn: str | None, **options: Any) -> PoolBinding:
        """Subscribe to rotations, then create the pool with ``asyncpg.create_pool``."""
        self._follow()
        base = options.pop("connection_class", asyncpg.Connection)
        try:
            self._pool = await asyncpg.create_pool(
                plain_dsn(dsn),
                connect=self._connect,
                setup=self._setup,
                reset=self._reset,
                connection_class=_tracked_class(base),
                **options,
            )
        except BaseException:
            self._detach()
            raise
        return self

    async def aclose(self) -> None:
        """Stop following rotations, wait for pending swaps, close the pool (terminating
        what is still in use after ``close_timeout`` seconds), then give the counts back."""
        self._stop_following()
        await self.aclose_pending()
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), self.close_timeout)
            except TimeoutError:
                logger.warning("pool.close_timed_out", extra={"timeout": self.close_timeout})
                self._pool.terminate()
            await asyncio.sleep(0)  # closed connections report themselves back
        self._detach()

    def _announce(self, source: UseTrackingSource) -> None:
        # The pool's own count on the generation in force: its idle connections are not
        # counted, so this keeps the lease from being revoked under them until a swap has
        # closed them (it also announces the pool before any acquire).
        self._swaps.hold_from(source)

    # rotation --------------------------------------------------------------------------

    async def swap_pool(self) -> None:
        """Expire the pool's connections: idle ones close now, the others when released."""
        self.stats.pool_swaps += 1
        # No suspension between the expiry and the closes: an idle connection is either
        # closed here or, once expired, replaced by the pool on its next acquire.
        await self.pool.expire_connections()
        for login in list(self._idle):
            # terminate(), as asyncpg itself closes idle connections: nothing is in flight.
            login.connection.terminate()
        logger.info("pool.swapped", extra={"generation": self.source.generation})

    # hooks -------------------------------------------------------------------------------

    async def _login(
        self, login: _Login, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Connect with the current credential, its generation counted on ``login`` while
        the login is in flight; a rejected login rotates once and retries."""
        credential = self._credential_for(login)
        try:
            return await self._connect_as(credential, args, kwargs)
        except Exception as error:
            if not is_login_rejected(error):
                raise
            await self._refresh_after(error, credential)
        credential = self._credential_for(login)
        return await self._connect_as(credential, args, kwargs)

    def _credential_for(self, login: _Login) -> Credential:
        """The current credential; its generation is counted for ``login`` from now on, so
        a rotation during the login cannot have that lease revoked under it."""
        credential = self._credential()
        login.generation = credential.generation
        if self._uses is not None:
            self._uses.out(login, credential.generation)
        return credential

    async def _connect_as(
        self, credential: Credential, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        login = drop_none(user=credential.username, password=credential.password)
        return await self._open(*args, **{**kwargs, **login})

    async def _connect(self, *args: Any, **kwargs: Any) -> Any:
        """Log in and join the idle set; a login overtaken by a rotation is redone."""
        for attempt in range(1, LOGIN_ATTEMPTS + 1):
            login = _Login(self.source.generation, None)
            try:
                connection = await self._login(login, args, kwargs)
                login.connection = connection
                if self._role_sql is not None:
                    try:
                        await connection.execute(self._role_sql)
                    except BaseException:
                        await connection.close()
                        raise
            except BaseException:
                self._count_back(login)
                raise
            if login.generation != self.source.generation and attempt < LOGIN_ATTEMPTS:
                connection.terminate()  # rotated while logging in: log in again
                self._count_back(login)
                self.stats.stale_closed += 1
                continue
            return self._join_idle(login)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _join_idle(self, login: _Login) -> Any:
        connection = login.connection
        connection.vault_login = login
        connection.add_termination_listener(lambda _connection: self._on_closed(login))
        self._idle[login] = None
        self.stats.connects += 1
        if login.generation == self.source.generation:
            # Idle and current: the pool's hold covers it from now on.
            self._count_back(login)
        # else (rotations faster than logins) it stays counted until it is closed.
        self._request_swap()  # this connect may be the first to see a new generation
        return connection

    def _count_back(self, login: _Login) -> None:
        if self._uses is not None:
            self._uses.back(login)

    async def _setup(self, proxy: Any) -> None:
        login: _Login = proxy.vault_login
        self._idle.pop(login, None)
        if self._uses is not None and not self._uses.counted(login):
            self._uses.out(login, login.generation)
        self._request_swap()
        if self._user_setup is not None:
            await self._user_setup(proxy)

    async def _reset(self, connection: Any) -> None:
        if self._user_reset is not None:
            await self._user_reset(connection)
        else:
            query = connection.get_reset_query()
            if query:
                await connection.execute(query)
        login: _Login = connection.vault_login
        self._idle[login] = None
        if login.generation != self.source.generation:
            # Released before the pool was expired: it stays counted until the swap closes it.
            self._request_swap()
        elif self._uses is not None:
            self._uses.back(login)

    def _on_closed(self, login: _Login) -> None:
        self._idle.pop(login, None)
        if login.generation != self.source.generation:
            self.stats.stale_closed += 1
        if self._uses is not None:
            self._uses.back(login)


async def create_pool(
    dsn: str | None,
    source: CredentialSource,
    *,
    assume_role: str | None = None,
    connect: Callable[..., Awaitable[Any]] | None = None,
    setup: Hook | None = None,
    reset: Hook | None = None,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    **options: Any,
) -> PoolBinding:
    """Open an ``asyncpg.Pool`` bound to ``source``; call ``aclose()`` at the end.

    ``options`` are :func:`asyncpg.create_pool`'s (``min_size``, ``max_size``, ``init``,
    ...). ``connect``, ``setup`` and ``reset`` are asyncpg's hooks, run inside the binding's.
    """
    binding = PoolBinding(
        source, assume_role=assume_role, connect=connect, setup=setup, reset=reset,
        close_timeout=close_timeout,
    )
    return await binding.open(dsn, **options)


@asynccontextmanager
async def bind_pool(
    dsn: str | None,
    source: CredentialSource,
    *,
    assume_role: str | None = None,
    **options: Any,
) -> AsyncIterator[PoolBinding]:
    """``async with bind_pool(...) as binding``: :func:`create_pool`, closed at the end."""
    binding = await create_pool(dsn, source, assume_role=assume_role, **options)
    try:
        yield binding
    finally:
        await binding.aclose()
