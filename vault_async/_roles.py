"""PostgreSQL role names as data: validated, then always quoted as an identifier.

Every binding that runs ``SET ROLE`` on its new connections builds the statement here, so the
rules (1 to 63 bytes, no control characters, embedded quotes doubled) live in one place.
"""

from __future__ import annotations

__all__ = ["PG_IDENTIFIER_MAX", "quote_identifier", "set_role_sql"]

PG_IDENTIFIER_MAX = 63


def quote_identifier(name: str) -> str:
    """Validate a PostgreSQL role name and quote it as an identifier.

    The name is data: it is always quoted (embedded quotes doubled), never pasted into SQL
    as written.
    """
    if not name or len(name.encode()) > PG_IDENTIFIER_MAX:
        raise ValueError("role name must be 1 to 63 bytes long")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise ValueError("role name must not contain control characters")
    return '"' + name.replace('"', '""') + '"'


def set_role_sql(assume_role: str | None) -> str | None:
    """``SET ROLE "<name>"`` for ``assume_role``, or None when no role is to be assumed."""
    return f"SET ROLE {quote_identifier(assume_role)}" if assume_role else None
