"""``client.sys.leases``: sys/leases/{lookup,renew/<id>,revoke/<id>,revoke-prefix/<prefix>}."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._json import JSONObject, drop_none
from .._models import LeaseInfo
from .._models import Secret as Secret
from .._parse import bool_field, data_section, int_field, string_field, to_secret
from .._paths import subpath
from .._request import CLIENT_NAMESPACE, Namespace, in_namespace

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["LeasesApi"]


class LeasesApi:
    """Lease lookup, renewal and revocation (renewals and revocations are retried).

    ``namespace``: where the lease was issued (None: the root namespace); by default the
    client's. OpenBao finds a lease of the root namespace only from the root namespace.
    """

    __slots__ = ("_client",)

    def __init__(self, client: AsyncVaultClient) -> None:
        self._client = client

    async def lookup(self, lease_id: str, *, namespace: Namespace = CLIENT_NAMESPACE) -> LeaseInfo:
        """PUT sys/leases/lookup (Vault has no per-lease URL form: a policy cannot narrow it)."""
        body = await self._client.request(
            "PUT",
            "sys/leases/lookup",
            json={"lease_id": lease_id},
            idempotent=True,
            **in_namespace(namespace),
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

    async def renew(
        self,
        lease_id: str,
        increment: int | None = None,
        *,
        namespace: Namespace = CLIENT_NAMESPACE,
    ) -> Secret:
        """PUT sys/leases/renew/<lease_id>; ``increment`` in seconds. The result has no data.

        The lease id is in the URL, never in the body, so that a policy can grant
        ``sys/leases/renew/<mount>/creds/<role>/*`` for a token's own leases only.
        """
        payload: JSONObject = drop_none(increment=None if increment is None else int(increment))
        path = "sys/leases/renew/" + subpath(lease_id, "lease_id")
        body = await self._client.request(
            "PUT", path, json=payload or None, idempotent=True, **in_namespace(namespace)
        )
        return to_secret(body)

    async def revoke(self, lease_id: str, *, namespace: Namespace = CLIENT_NAMESPACE) -> None:
        """PUT sys/leases/revoke/<lease_id> (revoking an unknown lease succeeds)."""
        path = "sys/leases/revoke/" + subpath(lease_id, "lease_id")
        await self._client.request("PUT", path, idempotent=True, **in_namespace(namespace))

    async def revoke_prefix(self, prefix: str, *, namespace: Namespace = CLIENT_NAMESPACE) -> None:
        """PUT sys/leases/revoke-prefix/<prefix> (needs sudo)."""
        path = "sys/leases/revoke-prefix/" + subpath(prefix, "prefix")
        await self._client.request("PUT", path, idempotent=True, **in_namespace(namespace))
