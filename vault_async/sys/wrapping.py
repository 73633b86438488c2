"""``client.sys.wrapping``: response-wrapping tokens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._models import Secret, WrapInfo, WrappingLookup
from .._parse import data_section, int_field, string_field, to_secret, to_wrap_info

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["WrappingApi"]


class WrappingApi:
    """Unwrap, look up and create response-wrapping tokens."""

    __slots__ = ("_client",)

    def __init__(self, client: AsyncVaultClient) -> None:
        self._client = client

    async def unwrap(self, token: str) -> Secret:
        """POST sys/wrapping/unwrap, authenticated by the wrapping token itself.

        Wrapping tokens are single-use, so this is retried only if never sent.
        """
        body = await self._client.request(
            "POST", "sys/wrapping/unwrap", idempotent=False, token=token
        )
        return to_secret(body)

    async def lookup(self, token: str) -> WrappingLookup:
        """POST sys/wrapping/lookup (does not consume the token)."""
        body = await self._client.request(
            "POST", "sys/wrapping/lookup", json={"token": token}, idempotent=True, token=None
        )
        data = data_section(body)
        return WrappingLookup(
            creation_path=string_field(data, "creation_path"),
            creation_time=string_field(data, "creation_time"),
            creation_ttl=int_field(data, "creation_ttl"),
        )

    async def wrap(self, data: Mapping[str, Any], ttl: str = "5m") -> WrapInfo:
        """POST sys/wrapping/wrap: wrap ``data`` in a new single-use token."""
        body = await self._client.request(
            "POST", "sys/wrapping/wrap", json=dict(data), idempotent=False, wrap_ttl=ttl
        )
        return to_wrap_info(body)
