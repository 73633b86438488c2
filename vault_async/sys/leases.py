"""``client.sys.leases``: sys/leases/{lookup,renew,revoke,revoke-prefix}."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._json import JSONObject, drop_none
from .._models import LeaseInfo
from .._models import Secret as Secret
from .._parse import bool_field, data_section, int_field, string_field, to_secret
from .._paths import subpath

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["LeasesApi"]


class LeasesApi:
    """Lease lookup, renewal and revocation (renewals and revocations are retried)."""

    __slots__ = ("_client",)

    def __init__(self, client: AsyncVaultClient) -> None:
        self._client = client

    async def lookup(self, lease_id: str) -> LeaseInfo:
        """PUT sys/leases/lookup."""
        body = await self._client.request(
            "PUT", "sys/leases/lookup", json={"lease_id": lease_id}, idempotent=True
        )
        data = data_section(body)
        return LeaseInfo(
            lease_id=string_field(data, "id") or lease_id,
            ttl=int_field(data, "ttl"),
            renewable=bool_field(data, "renewable"),
            issue_time=string_field(data, "issue_time") or None,
            expire_time=string_field(data, "expire_time") or None,
            last_renewal=string_field(data, "last_renewal") or None,
        )

    async def renew(self, lease_id: str, increment: int | None = None) -> Secret:
        """PUT sys/leases/renew; ``increment`` in seconds. The result has no data."""
        payload: JSONObject = drop_none(
            lease_id=lease_id, increment=None if increment is None else int(increment)
        )
        body = await self._client.request("PUT", "sys/leases/renew", json=payload, idempotent=True)
        return to_secret(body)

    async def revoke(self, lease_id: str) -> None:
        """PUT sys/leases/revoke (revoking an unknown lease succeeds)."""
        await self._client.request(
            "PUT", "sys/leases/revoke", json={"lease_id": lease_id}, idempotent=True
        )

    async def revoke_prefix(self, prefix: str) -> None:
        """PUT sys/leases/revoke-prefix/<prefix> (needs sudo)."""
        path = "sys/leases/revoke-prefix/" + subpath(prefix, "prefix")
        await self._client.request("PUT", path, idempotent=True)
