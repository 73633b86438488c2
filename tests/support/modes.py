"""The reference service's three ways of getting database credentials, on one dev stack.

The service benchmarks compare them in one run: `plain` (a fixed login in DATABASE_URL, the
baseline), `vault` (Vault-issued, a long TTL) and `rotating` (Vault-issued, default_ttl 5 s /
max_ttl 15 s, so a new login every 10-15 s).
"""

from __future__ import annotations

import asyncio
import secrets

from vault_async.devstack import DevStack

PLAIN_USER = "bench_plain"
LONG_ROLE = "long"
ROTATING_ROLE = "rotating"  # at most 8 characters: Vault truncates it in the login name


async def _create_plain_user(stack: DevStack, password: str) -> None:
    async with stack.admin_connection() as conn:
        await conn.execute(
            f"CREATE ROLE {PLAIN_USER} LOGIN PASSWORD $pw${password}$pw$ IN ROLE {stack.group_role}"
        )


def service_modes(stack: DevStack) -> dict[str, dict[str, str]]:
    """Create what each mode needs on `stack`; the service environment of each, by name."""
    password = secrets.token_urlsafe(16)
    asyncio.run(_create_plain_user(stack, password))
    stack.create_dynamic_role(LONG_ROLE, "1h", "24h")
    stack.create_dynamic_role(ROTATING_ROLE, "5s", "15s")
    plain_url = (
        f"postgresql+asyncpg://{PLAIN_USER}:{password}@{stack.pg_host}:{stack.pg_port}/"
        f"{stack.database}"
    )
    base = stack.env()
    return {
        "plain": {"DATABASE_URL": plain_url},
        "vault": base | {"VAULT_DB_ROLE": LONG_ROLE},
        "rotating": base | {"VAULT_DB_ROLE": ROTATING_ROLE},
    }
