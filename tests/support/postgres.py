"""Log in to the dev stack's database as a given user, the way the service would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from vault_async.devstack import DevStack

LOGIN_REFUSED = (
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
)


@asynccontextmanager
async def connected_as(
    stack: DevStack, user: str, password: str, *, connect_timeout: float = 10
) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the stack's database over TCP with this login, closed on exit."""
    conn = await asyncpg.connect(
        host=stack.pg_host, port=stack.pg_port, user=user, password=password,
        database=stack.database, timeout=connect_timeout,
    )
    try:
        yield conn
    finally:
        await conn.close()


async def can_login(
    stack: DevStack, user: str, password: str, *, connect_timeout: float = 10
) -> bool:
    """True when PostgreSQL accepts the login (connect, then close); False when it refuses it."""
    try:
        async with connected_as(stack, user, password, connect_timeout=connect_timeout):
            return True
    except LOGIN_REFUSED:
        return False
