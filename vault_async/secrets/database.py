"""``client.secrets.database``: the database secrets engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._models import Secret
from .._parse import optional_map, to_secret
from .._paths import name, subpath
from .._request import CLIENT_NAMESPACE, Namespace, in_namespace

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["DEFAULT_MOUNT_POINT", "DatabaseApi"]

DEFAULT_MOUNT_POINT = "database"


class DatabaseApi:
    """Dynamic and static credentials, and role listings.

    A role name is one path segment (no '/', see ``_paths.name``); ``mount_point`` may
    have several (``team/database``). ``namespace``: the namespace to ask in (None: the
    root namespace); by default the client's.
    """

    __slots__ = ("_client",)

    def __init__(self, client: AsyncVaultClient) -> None:
        self._client = client

    async def generate_credentials(
        self,
        name_: str,
        mount_point: str = DEFAULT_MOUNT_POINT,
        *,
        namespace: Namespace = CLIENT_NAMESPACE,
    ) -> Secret:
        """GET <mount>/creds/<name>: a new user under a new lease (never blindly retried)."""
        path = f"{subpath(mount_point, 'mount_point')}/creds/{name(name_, 'role name')}"
        body = await self._client.request(
            "GET", path, idempotent=False, **in_namespace(namespace)
        )
        return to_secret(body)

    async def get_static_credentials(
        self,
        name_: str,
        mount_point: str = DEFAULT_MOUNT_POINT,
        *,
        namespace: Namespace = CLIENT_NAMESPACE,
    ) -> Secret:
        """GET <mount>/static-creds/<name>: username, password, ttl, last_vault_rotation..."""
        path = f"{subpath(mount_point, 'mount_point')}/static-creds/{name(name_, 'role name')}"
        body = await self._client.request("GET", path, idempotent=True, **in_namespace(namespace))
        return to_secret(body)

    async def list_roles(self, mount_point: str = DEFAULT_MOUNT_POINT) -> tuple[str, ...]:
        """LIST <mount>/roles (empty when there are none)."""
        return await self._client.list_keys(f"{subpath(mount_point, 'mount_point')}/roles")

    async def list_static_roles(self, mount_point: str = DEFAULT_MOUNT_POINT) -> tuple[str, ...]:
        """LIST <mount>/static-roles (empty when there are none)."""
        return await self._client.list_keys(f"{subpath(mount_point, 'mount_point')}/static-roles")

    async def read_role(
        self, name_: str, mount_point: str = DEFAULT_MOUNT_POINT
    ) -> Mapping[str, Any]:
        """GET <mount>/roles/<name>."""
        path = f"{subpath(mount_point, 'mount_point')}/roles/{name(name_, 'role name')}"
        body = await self._client.request("GET", path, idempotent=True)
        return optional_map(body, "data")

    async def rotate_static_role_credentials(
        self, name_: str, mount_point: str = DEFAULT_MOUNT_POINT
    ) -> None:
        """POST <mount>/rotate-role/<name>: rotate a static role's password now."""
        path = f"{subpath(mount_point, 'mount_point')}/rotate-role/{name(name_, 'role name')}"
        await self._client.request("POST", path, idempotent=False)
