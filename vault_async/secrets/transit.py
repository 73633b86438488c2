"""``client.secrets.transit``: encryption as a service. Callers pass and get bytes;
base64 stays inside this module."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .._exceptions import InvalidRequest, MalformedResponse
from .._json import JSONObject, drop_none
from .._parse import data_section, int_field, optional_map, string_field
from .._paths import name, subpath

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["DEFAULT_MOUNT_POINT", "DataKey", "TransitApi"]

DEFAULT_MOUNT_POINT = "transit"


@dataclass(frozen=True, slots=True)
class DataKey:
    """A data key from ``datakey``: the wrapped form, and the plaintext if asked for."""

    ciphertext: str
    key_version: int = 0
    plaintext: bytes | None = field(default=None, repr=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64_or_none(data: bytes | None) -> str | None:
    return None if data is None else _b64(data)


def _unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedResponse(f"transit {what} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedResponse(f"transit {what} is not valid base64") from None


def _ciphertext(data: Mapping[str, Any]) -> str:
    value = string_field(data, "ciphertext")
    if not value:
        raise MalformedResponse("transit response carries no ciphertext")
    return value


class TransitApi:
    """Keys, encrypt/decrypt/rewrap (single and batch) and data keys.

    A key name is one path segment (no '/', see ``_paths.name``), so it can never reach
    another key's ``config`` or ``rotate`` route; ``mount_point`` may have several.
    """

    __slots__ = ("_client",)

    def __init__(self, client: AsyncVaultClient) -> None:
        self._client = client

    def _path(self, mount_point: str, action: str, key: str) -> str:
        return f"{subpath(mount_point, 'mount_point')}/{action}/{name(key, 'key name')}"

    async def create_key(
        self,
        key: str,
        *,
        key_type: str = "aes256-gcm96",
        derived: bool = False,
        exportable: bool = False,
        mount_point: str = DEFAULT_MOUNT_POINT,
    ) -> None:
        """POST <mount>/keys/<key> (creating an existing key is a no-op)."""
        payload: JSONObject = {"type": key_type, "derived": derived, "exportable": exportable}
        await self._client.request(
            "POST", self._path(mount_point, "keys", key), json=payload, idempotent=True
        )

    async def read_key(self, key: str, mount_point: str = DEFAULT_MOUNT_POINT) -> Mapping[str, Any]:
        """GET <mount>/keys/<key>: type, latest_version, min_decryption_version, ..."""
        body = await self._client.request(
            "GET", self._path(mount_point, "keys", key), idempotent=True
        )
        return optional_map(body, "data")

    async def rotate_key(self, key: str, mount_point: str = DEFAULT_MOUNT_POINT) -> None:
        """POST <mount>/keys/<key>/rotate (not retried: a retry would rotate twice)."""
        await self._client.request(
            "POST", self._path(mount_point, "keys", key) + "/rotate", idempotent=False
        )

    async def encrypt(
        self,
        key: str,
        plaintext: bytes,
        *,
        context: bytes | None = None,
        key_version: int | None = None,
        mount_point: str = DEFAULT_MOUNT_POINT,
    ) -> str:
        """POST <mount>/encrypt/<key>: returns ``vault:vN:...`` ciphertext."""
        payload: JSONObject = drop_none(
            plaintext=_b64(plaintext), context=_b64_or_none(context), key_version=key_version
        )
        body = await self._client.request(
            "POST", self._path(mount_point, "encrypt", key), json=payload, idempotent=True
        )
        return _ciphertext(data_section(body))

    async def decrypt(
        self,
        key: str,
        ciphertext: str,
        *,
        context: bytes | None = None,
        mount_point: str = DEFAULT_MOUNT_POINT,
    ) -> bytes:
        """POST <mount>/decrypt/<key>: the original bytes."""
        payload: JSONObject = drop_none(ciphertext=ciphertext, context=_b64_or_none(context))
        body = await self._client.request(
            "POST", self._path(mount_point, "decrypt", key), json=payload, idempotent=True
        )
        return _unb64(data_section(body).get("plaintext"), "plaintext")

    async def rewrap(
        self,
        key: str,
        ciphertext: str,
        *,
        context: bytes | None = None,
        key_version: int | None = None,
        mount_point: str = DEFAULT_MOUNT_POINT,
    ) -> str:
        """POST <mount>/rewrap/<key>: the same plaintext under the latest key version."""
        payload: JSONObject = drop_none(
            ciphertext=ciphertext, context=_b64_or_none(context), key_version=key_version
        )
        body = await self._client.request(
            "POST", self._path(mount_point, "rewrap", key), json=payload, idempotent=True
        )
        return _ciphertext(data_section(body))

    async def generate_data_key(
        self,
        key: str,
        kind: Literal["plaintext", "wrapped"] = "plaintext",
        *,
        bits: int = 256,
        context: bytes | None = None,
        mount_point: str = DEFAULT_MOUNT_POINT,
    ) -> DataKey:
        """POST <mount>/datakey/<kind>/<key>: a fresh key for local (envelope) encryption."""
        if kind not in ("plaintext", "wrapped"):
            raise InvalidRequest("kind must be 'plaintext' or 'wrapped'")
        payload: JSONObject = drop_none(bits=bits, context=_b64_or_none(context))
        path = f"{subpath(mount_point, 'mount_point')}/datakey/{kind}/{name(key, 'key name')}"
        body = await self._client.request("POST", path, json=payload, idempotent=True)
        data = data_section(body)
        plaintext = None
        if kind == "plaintext":
            plaintext = _unb64(data.get("plaintext"), "plaintext")
        return DataKey(
            ciphertext=_ciphertext(data),
            key_version=int_field(data, "key_version"),
            plaintext=plaintext,
        )

    async def encrypt_batch(
        self,
        key: str,
        plaintexts: Sequence[bytes],
        *,
        contexts: Sequence[bytes] | None = None,
        mount_point: str = DEFAULT_MOUNT_POINT,
    ) -> list[str]:
        """Encrypt many items in one request; results are in input order."""
        items = [{"plaintext": _b64(p)} for p in plaintexts]
        _add_contexts(items, contexts)
        results = await self._batch("encrypt", key, items, mount_point)
        return [_ciphertext(r) for r in results]

    async def decrypt_batch(
        self,
        key: str,
        ciphertexts: Sequence[str],
        *,
        contexts: Sequence[bytes] | None = None,
        mount_point: str = DEFAULT_MOUNT_POINT,
    ) -> list[bytes]:
        """Decrypt many items in one request; results are in input order."""
        items: list[dict[str, Any]] = [{"ciphertext": c} for c in ciphertexts]
        _add_contexts(items, contexts)
        results = await self._batch("decrypt", key, items, mount_point)
        return [_unb64(r.get("plaintext"), "plaintext") for r in results]

    async def rewrap_batch(
        self,
        key: str,
        ciphertexts: Sequence[str],
        *,
        contexts: Sequence[bytes] | None = None,
        mount_point: str = DEFAULT_MOUNT_POINT,
    ) -> list[str]:
        """Rewrap many items in one request; results are in input order."""
        items: list[dict[str, Any]] = [{"ciphertext": c} for c in ciphertexts]
        _add_contexts(items, contexts)
        results = await self._batch("rewrap", key, items, mount_point)
        return [_ciphertext(r) for r in results]

    async def _batch(
        self, action: str, key: str, items: list[dict[str, Any]], mount_point: str
    ) -> list[Mapping[str, Any]]:
        body = await self._client.request(
            "POST",
            self._path(mount_point, action, key),
            json={"batch_input": items},
            idempotent=True,
        )
        raw = data_section(body).get("batch_results")
        if not isinstance(raw, list) or len(raw) != len(items):
            raise MalformedResponse("transit batch_results missing or of the wrong length")
        results: list[Mapping[str, Any]] = []
        failed: list[int] = []
        for index, item in enumerate(raw):
            if not isinstance(item, dict):
                raise MalformedResponse("transit batch result is not an object")
            if item.get("error"):
                failed.append(index)
            results.append(item)
        if failed:
            raise InvalidRequest(
                f"transit {action} failed for batch items {failed}",
                errors=[str(results[i].get("error")) for i in failed[:5]],
            )
        return results


def _add_contexts(items: list[dict[str, Any]], contexts: Sequence[bytes] | None) -> None:
    if contexts is None:
        return
    if len(contexts) != len(items):
        raise InvalidRequest("contexts must have one entry per batch item")
    for item, context in zip(items, contexts, strict=True):
        item["context"] = _b64(context)
