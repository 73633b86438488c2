"""Did PostgreSQL refuse a psycopg connection's login (rather than fail to answer)?

A refused connect carries no SQLSTATE in psycopg 3 (libpq reports it as text only), so the
server's FATAL message is read: ``28P01`` (a wrong or expired password; with SCRAM also an
unknown role) and ``28000`` (an unknown role, no ``pg_hba.conf`` entry, ``NOLOGIN``). The
messages are PostgreSQL's English ones (``lc_messages`` other than English is not recognised:
the refusal is then reported as it is, without the rotation and retry).
"""

from __future__ import annotations

import re

from .._sqlerrors import is_login_rejected

__all__ = ["is_login_refused"]

_REFUSED = re.compile(
    r"FATAL:\s+("
    r"password authentication failed for user"
    r"|role \".*\" does not exist"
    r"|role \".*\" is not permitted to log in"
    r"|no pg_hba\.conf entry"
    r")"
)


def is_login_refused(error: BaseException) -> bool:
    """True when ``error`` says the server refused the login (not the network, not SQL)."""
    return is_login_rejected(error) or bool(_REFUSED.search(str(error)))
