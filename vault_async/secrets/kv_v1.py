"""``client.secrets.kv_v1``: the unversioned key/value engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._models import Secret
from .._parse import to_secret
from .._paths import subpath

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["DEFAULT_MOUNT_POINT", "KvV1Api"]

DEFAULT_MOUNT_POINT = "kv"


class KvV1Api:
    """Read, write, delete and list under a KV v1 mount.

    ``path`` and ``mount_point`` may both have several segments, each checked and quoted.
    """

    __slots__ = ("_client",)

    def __init__(self, client: AsyncVaultClient) -> None:
        self._client = client

    async def read_secret(self, path: str, mount_point: str = DEFAULT_MOUNT_POINT) -> Secret:
        """GET <mount>/<path>."""
        body = await self._client.request("GET", _path(mount_point, path), idempotent=True)
        return to_secret(body)

    async def create_or_update_secret(
        self, path: str, secret: Mapping[str, Any], mount_point: str = DEFAULT_MOUNT_POINT
    ) -> None:
        """POST <mount>/<path> (replaces the whole secret; safe to repeat)."""
        await self._client.request(
            "POST", _path(mount_point, path), json=dict(secret), idempotent=True
        )

    async def delete_secret(self, path: str, mount_point: str = DEFAULT_MOUNT_POINT) -> None:
        """DELETE <mount>/<path>."""
        await self._client.request("DELETE", _path(mount_point, path), idempotent=True)

    async def list_secrets(
        self, path: str = "", mount_point: str = DEFAULT_MOUNT_POINT
    ) -> tuple[str, ...]:
        """LIST <mount>/<path> (empty when nothing is there)."""
        full = subpath(mount_point, "mount_point") + (
            "/" + subpath(path) if path.strip("/") else ""
        )
        return await self._client.list_keys(full)


def _path(mount_point: str, path: str) -> str:
    return f"{subpath(mount_point, 'mount_point')}/{subpath(path)}"
