"""Small helpers shared by the client's real-server tests."""

from __future__ import annotations

import uuid

from vault_async import AsyncVaultClient


def unique(prefix: str) -> str:
    """`prefix` plus a short random suffix, for mounts and paths no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def enable_auth(client: AsyncVaultClient, mount: str, kind: str) -> None:
    """Enable an auth method of type `kind` at `mount`."""
    await client.request("POST", f"sys/auth/{mount}", json={"type": kind}, idempotent=False)
