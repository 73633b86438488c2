"""Ask PostgreSQL directly whether a user and password are accepted right now."""

from __future__ import annotations

import asyncpg

from vault_async.devstack import DevStack

LOGIN_REFUSED = (
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
)


async def can_login(
    stack: DevStack, user: str, password: str, *, connect_timeout: float = 10
) -> bool:
    """True when PostgreSQL accepts the login (connect, then close); False when it refuses it."""
    try:
        conn = await asyncpg.connect(
            host=stack.pg_host, port=stack.pg_port, user=user, password=password,
            database=stack.database, timeout=connect_timeout,
        )
    except LOGIN_REFUSED:
        return False
    await conn.close()
    return True
