"""``client.secrets``: the secrets engines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .database import DatabaseApi
from .kv_v1 import KvV1Api
from .kv_v2 import KvMetadata, KvV2Api, KvVersion
from .transit import DataKey, TransitApi

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = [
    "DataKey",
    "DatabaseApi",
    "KvMetadata",
    "KvV1Api",
    "KvV2Api",
    "KvVersion",
    "SecretsApi",
    "TransitApi",
]


class SecretsApi:
    """Secrets engines, one attribute each."""

    __slots__ = ("database", "kv_v1", "kv_v2", "transit")

    def __init__(self, client: AsyncVaultClient) -> None:
        self.database = DatabaseApi(client)
        self.kv_v1 = KvV1Api(client)
        self.kv_v2 = KvV2Api(client)
        self.transit = TransitApi(client)
