"""``client.sys``: health, seal status, leases and response wrapping."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._models import HealthStatus, SealStatus
from .._parse import Body, bool_field, int_field, string_field
from .leases import LeasesApi
from .wrapping import WrappingApi

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["LeasesApi", "SysApi", "WrappingApi"]

# sys/health answers these codes with a normal body: standby, DR/perf standby, not
# initialised, sealed, removed from cluster.
_HEALTH_STATUSES = (429, 472, 473, 501, 503, 530)


def _seal_status(body: Body) -> SealStatus:
    return SealStatus(
        sealed=bool_field(body, "sealed"),
        initialized=bool_field(body, "initialized"),
        threshold=int_field(body, "t"),
        shares=int_field(body, "n"),
        progress=int_field(body, "progress"),
        version=string_field(body, "version"),
        type=string_field(body, "type"),
    )


class SysApi:
    """Routes under ``sys/``."""

    __slots__ = ("_client", "leases", "wrapping")

    def __init__(self, client: AsyncVaultClient) -> None:
        self._client = client
        self.leases = LeasesApi(client)
        self.wrapping = WrappingApi(client)

    async def health(self) -> HealthStatus:
        """GET sys/health; a sealed or standby server is reported, not raised."""
        response = await self._client.request_response(
            "GET",
            "sys/health",
            idempotent=True,
            token=None,
            namespace=None,  # root-only: a namespace header gets 400
            ok_statuses=_HEALTH_STATUSES,
        )
        body, status = response
        return HealthStatus(
            status_code=status,
            initialized=bool_field(body, "initialized"),
            sealed=bool_field(body, "sealed"),
            standby=bool_field(body, "standby"),
            performance_standby=bool_field(body, "performance_standby"),
            version=string_field(body, "version"),
            cluster_name=string_field(body, "cluster_name"),
            cluster_id=string_field(body, "cluster_id"),
            server_time_utc=int_field(body, "server_time_utc"),
        )

    async def seal_status(self) -> SealStatus:
        """GET sys/seal-status."""
        body = await self._client.request(
            "GET", "sys/seal-status", idempotent=True, token=None, namespace=None
        )
        return _seal_status(body)

    async def unseal(self, key: str, *, reset: bool = False) -> SealStatus:
        """PUT sys/unseal with one key share."""
        payload = {"reset": True} if reset else {"key": key}
        body = await self._client.request(
            "PUT", "sys/unseal", json=payload, idempotent=False, token=None, namespace=None
        )
        return _seal_status(body)
