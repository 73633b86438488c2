"""Does a database login still exist? Asked at most once per interval and login.

PostgreSQL keeps the sessions of a login dropped from outside open; they then fail with
``42501``/``42P01`` like a statement that is simply wrong. Telling the two apart takes a look
at the server from a second connection (the failed one sits in an aborted transaction), so
the answer is cached per username: a stream of bad statements costs one look per interval.

The check runs inside SQLAlchemy's ``handle_error`` event, in the greenlet of the failing
statement, where a blocking-style call may await (``sqlalchemy.util.await_only``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Dialect
from sqlalchemy.util import await_only

from ._sqlerrors import is_login_rejected

__all__ = [
    "DEFAULT_LOGIN_CHECK_INTERVAL",
    "BlockingLoginCheck",
    "LoginCheck",
    "probe_login",
    "role_exists",
]

logger = logging.getLogger("vault_async.sqlalchemy")

DEFAULT_LOGIN_CHECK_INTERVAL = 2.0
"""Seconds an answer is reused. A login dropped from outside within this time after a genuine
error was answered "present" is noticed only when the interval has passed."""

ROLE_EXISTS = text("SELECT count(*) FROM pg_roles WHERE rolname = :name")
"""``pg_roles`` is readable by every login, so any live connection can ask."""


def role_exists(dialect: Dialect, dbapi_connection: Any, name: str) -> bool:
    """Whether the role ``name`` exists, asked on a raw DBAPI connection (the name is bound)."""
    compiled = ROLE_EXISTS.compile(dialect=dialect)
    params = compiled.construct_params({"name": name})
    args: Any = params
    if compiled.positional:
        args = tuple(params[key] for key in compiled.positiontup or ())
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(compiled.string, args)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return bool(row and row[0])


def probe_login(dialect: Dialect, connect: Callable[[], Any], username: str) -> bool:
    """Whether the login ``username`` exists, asked on a connection ``connect()`` opens.

    ``connect`` logs in with the current credential: when that is refused, the current
    login is gone, and so is any older one of the same source.
    """
    try:
        connection = connect()
    except Exception as error:
        if is_login_rejected(error):
            return False
        raise
    try:
        return role_exists(dialect, connection, username)
    finally:
        connection.close()


class LoginCheck:
    """Cache and single flight around ``probe(username) -> bool`` (True: the login exists).

    A probe that fails (other than by answering) counts as "exists" and is not cached: the
    error is then reported as it is, which is the safe side when nothing is known.
    """

    def __init__(
        self,
        probe: Callable[[str], bool],
        *,
        interval: float = DEFAULT_LOGIN_CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._interval = interval
        self._clock = clock
        self._known: dict[str, tuple[float, bool]] = {}
        self._pending: dict[str, asyncio.Future[bool]] = {}

    def exists(self, username: str) -> bool:
        """Whether ``username`` still exists; call from a greenlet that may await."""
        known = self._cached(username)
        if known is not None:
            return known
        pending = self._pending.get(username)
        if pending is not None:
            return await_only(asyncio.shield(pending))
        future = asyncio.get_running_loop().create_future()
        self._pending[username] = future
        answer = True
        try:
            answer = self._ask(username)
        finally:
            del self._pending[username]
            if not future.done():
                future.set_result(answer)
        return answer

    def _cached(self, username: str) -> bool | None:
        known = self._known.get(username)
        if known is not None and self._clock() - known[0] < self._interval:
            return known[1]
        return None

    def _ask(self, username: str) -> bool:
        """Run the probe and remember its answer; a failed probe answers True, uncached."""
        try:
            answer = self._probe(username)
        except Exception as error:
            logger.warning(
                "pool.login_check_failed",
                extra={"error_class": type(error).__name__},
            )
            return True
        self._remember(username, answer)
        return answer

    def _remember(self, username: str, answer: bool) -> None:
        now = self._clock()
        self._known = {
            name: entry for name, entry in self._known.items() if now - entry[0] < self._interval
        }
        self._known[username] = (now, answer)


class BlockingLoginCheck(LoginCheck):
    """:class:`LoginCheck` for a sync engine: threads wait for one probe on a lock."""

    def __init__(
        self,
        probe: Callable[[str], bool],
        *,
        interval: float = DEFAULT_LOGIN_CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(probe, interval=interval, clock=clock)
        self._lock = threading.Lock()

    def exists(self, username: str) -> bool:
        """Whether ``username`` still exists; blocks while another thread asks."""
        known = self._cached(username)
        if known is not None:
            return known
        with self._lock:
            known = self._cached(username)
            return known if known is not None else self._ask(username)
