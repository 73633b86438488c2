"""What a database error means for the connection it happened on, read from its SQLSTATE.

Errors arrive wrapped (SQLAlchemy's ``DBAPIError`` around the driver's error, sometimes
chained again); every helper looks through the wrappers. The classes:

* the server or the connection failed (``08``, ``53``, ``57``): :func:`is_server_unavailable`;
* PostgreSQL refused the login itself (``28P01``, ``28000``): :func:`is_login_rejected`. libpq
  reports a failed connection attempt as text only, so psycopg's ``OperationalError`` for it
  carries no SQLSTATE: the server's ``FATAL`` line is read instead (PostgreSQL's English
  messages, its default ``lc_messages``);
* a statement was refused access (``42501``, ``42P01``): :func:`is_permission_denied`. That is
  usually the statement's own fault; only when the session's login was dropped from outside
  does it mean the connection is lost, which the engine binding verifies before acting.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = [
    "LOGIN_REJECTED_SQLSTATES",
    "PERMISSION_DENIED_SQLSTATES",
    "TRANSIENT_SQLSTATE_CLASSES",
    "is_login_rejected",
    "is_permission_denied",
    "is_server_unavailable",
]

LOGIN_REJECTED_SQLSTATES = frozenset({"28P01", "28000"})
"""invalid_password and invalid_authorization_specification (e.g. role does not exist)."""

PERMISSION_DENIED_SQLSTATES = frozenset({"42501", "42P01"})
"""insufficient_privilege and undefined_table: what a statement gets when it may not read a
table, or names one that is not there. A session whose login was dropped from outside gets the
same on every table (undefined_table when the schema's USAGE came through the lost group)."""

LOGIN_REJECTED_MESSAGE = re.compile(
    r"FATAL:\s+("
    r'password authentication failed for user "'
    r'|role ".*" does not exist'
    r'|role ".*" is not permitted to log in'
    r"|no pg_hba\.conf entry"
    r")"
)
"""The server's refusal of a login (28P01: a bad password; 28000: a missing role, NOLOGIN, no
``pg_hba.conf`` entry), as libpq words a failed connection attempt that carries no SQLSTATE
(psycopg). PostgreSQL's English messages: with another ``lc_messages`` the refusal is reported
as it is, without the rotation and retry."""

TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57")
"""connection_exception, insufficient_resources, operator_intervention (e.g. shutting down)."""


def _sqlstates(error: BaseException) -> Iterator[str]:
    """The SQLSTATEs carried by ``error`` and the exceptions it wraps, outermost first."""
    for current in _chain(error):
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            yield state


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it wraps, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or getattr(current, "orig", None)


def _has_sqlstate(error: BaseException, states: frozenset[str]) -> bool:
    """True when ``error`` or an exception it wraps carries one of ``states``."""
    return any(state in states for state in _sqlstates(error))


def is_server_unavailable(error: BaseException) -> bool:
    """True for SQLSTATEs that mean the server or the connection, not the statement, failed."""
    return any(state.startswith(TRANSIENT_SQLSTATE_CLASSES) for state in _sqlstates(error))


def is_login_rejected(error: BaseException) -> bool:
    """True when PostgreSQL refused the login itself (bad password, unknown role)."""
    if _has_sqlstate(error, LOGIN_REJECTED_SQLSTATES):
        return True
    if any(True for _ in _sqlstates(error)):
        return False  # a SQLSTATE of another class: the statement's, not the login's
    return any(LOGIN_REJECTED_MESSAGE.search(str(current)) for current in _chain(error))


def is_permission_denied(error: BaseException) -> bool:
    """True for insufficient_privilege (42501) or undefined_table (42P01)."""
    return _has_sqlstate(error, PERMISSION_DENIED_SQLSTATES)
