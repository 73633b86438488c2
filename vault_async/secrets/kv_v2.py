"""``client.secrets.kv_v2``: the versioned key/value engine."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .._exceptions import MalformedResponse
from .._json import JSONObject, drop_none
from .._models import EMPTY, Secret
from .._parse import (
    bool_field,
    data_section,
    int_field,
    optional_map,
    string_field,
    to_secret,
)
from .._paths import subpath
from .._request import CLIENT_NAMESPACE, Namespace, in_namespace

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["DEFAULT_MOUNT_POINT", "KvMetadata", "KvV2Api", "KvVersion"]

DEFAULT_MOUNT_POINT = "secret"


@dataclass(frozen=True, slots=True)
class KvVersion:
    """One version of a KV v2 secret (no data, only its bookkeeping)."""

    version: int
    created_time: str = ""
    deletion_time: str = ""
    destroyed: bool = False
    custom_metadata: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class KvMetadata:
    """A KV v2 secret's metadata: settings and every version it has."""

    current_version: int = 0
    oldest_version: int = 0
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: str = ""
    created_time: str = ""
    updated_time: str = ""
    custom_metadata: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    versions: Mapping[int, KvVersion] = field(default_factory=dict)


def _version(data: Mapping[str, Any], version: int | None = None) -> KvVersion:
    return KvVersion(
        version=int_field(data, "version") if version is None else version,
        created_time=string_field(data, "created_time"),
        deletion_time=string_field(data, "deletion_time"),
        destroyed=bool_field(data, "destroyed"),
        custom_metadata=optional_map(data, "custom_metadata"),
    )


class KvV2Api:
    """Routes under a KV v2 mount: data/, metadata/, delete/, undelete/, destroy/.

    ``path`` and ``mount_point`` may both have several segments, each checked and quoted.
    ``namespace`` (reads, writes, listings): the namespace to use (None: the root
    namespace); by default the client's.
    """

    __slots__ = ("_client",)

    def __init__(self, client: AsyncVaultClient) -> None:
        self._client = client

    async def read_secret(
        self,
        path: str,
        version: int | None = None,
        mount_point: str = DEFAULT_MOUNT_POINT,
        *,
        namespace: Namespace = CLIENT_NAMESPACE,
    ) -> Secret:
        """GET <mount>/data/<path>: ``data`` is the secret, ``metadata`` its version info."""
        params = {"version": str(int(version))} if version is not None else None
        body = await self._client.request(
            "GET",
            _route(mount_point, "data", path),
            params=params,
            idempotent=True,
            **in_namespace(namespace),
        )
        outer = data_section(body)
        inner = outer.get("data")
        if inner is not None and not isinstance(inner, dict):
            raise MalformedResponse("KV v2 data is not an object")
        secret = to_secret(body, data=inner or {})
        return dataclasses.replace(secret, metadata=optional_map(outer, "metadata"))

    async def create_or_update_secret(
        self,
        path: str,
        secret: Mapping[str, Any],
        cas: int | None = None,
        mount_point: str = DEFAULT_MOUNT_POINT,
        *,
        namespace: Namespace = CLIENT_NAMESPACE,
    ) -> KvVersion:
        """POST <mount>/data/<path>; ``cas`` is check-and-set (0 = only if absent).

        A conflict raises :class:`~vault_async.InvalidRequest` (Vault answers 400).
        """
        body = await self._client.request(
            "POST",
            _route(mount_point, "data", path),
            json=_write(secret, cas),
            idempotent=False,
            **in_namespace(namespace),
        )
        return _version(data_section(body))

    async def patch(
        self,
        path: str,
        secret: Mapping[str, Any],
        cas: int | None = None,
        mount_point: str = DEFAULT_MOUNT_POINT,
    ) -> KvVersion:
        """PATCH <mount>/data/<path> (JSON merge patch of the latest version)."""
        body = await self._client.request(
            "PATCH",
            _route(mount_point, "data", path),
            json=_write(secret, cas),
            idempotent=False,
            content_type="application/merge-patch+json",
        )
        return _version(data_section(body))

    async def delete_latest_version(
        self, path: str, mount_point: str = DEFAULT_MOUNT_POINT
    ) -> None:
        """DELETE <mount>/data/<path> (soft delete; undelete can restore it)."""
        await self._client.request("DELETE", _route(mount_point, "data", path), idempotent=True)

    async def delete_versions(
        self, path: str, versions: Iterable[int], mount_point: str = DEFAULT_MOUNT_POINT
    ) -> None:
        """POST <mount>/delete/<path>."""
        await self._versions_call("delete", path, versions, mount_point)

    async def undelete_versions(
        self, path: str, versions: Iterable[int], mount_point: str = DEFAULT_MOUNT_POINT
    ) -> None:
        """POST <mount>/undelete/<path>."""
        await self._versions_call("undelete", path, versions, mount_point)

    async def destroy_versions(
        self, path: str, versions: Iterable[int], mount_point: str = DEFAULT_MOUNT_POINT
    ) -> None:
        """PUT <mount>/destroy/<path> (permanent)."""
        await self._versions_call("destroy", path, versions, mount_point)

    async def list_secrets(
        self,
        path: str = "",
        mount_point: str = DEFAULT_MOUNT_POINT,
        *,
        namespace: Namespace = CLIENT_NAMESPACE,
    ) -> tuple[str, ...]:
        """LIST <mount>/metadata/<path> (empty when nothing is there)."""
        route = f"{subpath(mount_point, 'mount_point')}/metadata"
        if path.strip("/"):
            route += "/" + subpath(path)
        return await self._client.list_keys(route, namespace=namespace)

    async def read_metadata(self, path: str, mount_point: str = DEFAULT_MOUNT_POINT) -> KvMetadata:
        """GET <mount>/metadata/<path>: settings and every version."""
        body = await self._client.request(
            "GET", _route(mount_point, "metadata", path), idempotent=True
        )
        data = data_section(body)
        raw_versions = optional_map(data, "versions")
        versions: dict[int, KvVersion] = {}
        for key, value in raw_versions.items():
            number = _version_number(key)
            if not isinstance(value, dict) or number is None:
                raise MalformedResponse("KV v2 metadata versions are malformed")
            versions[number] = _version(value, number)
        return KvMetadata(
            current_version=int_field(data, "current_version"),
            oldest_version=int_field(data, "oldest_version"),
            max_versions=int_field(data, "max_versions"),
            cas_required=bool_field(data, "cas_required"),
            delete_version_after=string_field(data, "delete_version_after"),
            created_time=string_field(data, "created_time"),
            updated_time=string_field(data, "updated_time"),
            custom_metadata=optional_map(data, "custom_metadata"),
            versions=MappingProxyType(versions),
        )

    async def update_metadata(
        self,
        path: str,
        *,
        max_versions: int | None = None,
        cas_required: bool | None = None,
        delete_version_after: str | None = None,
        custom_metadata: Mapping[str, str] | None = None,
        mount_point: str = DEFAULT_MOUNT_POINT,
    ) -> None:
        """POST <mount>/metadata/<path>."""
        payload: JSONObject = drop_none(
            max_versions=max_versions,
            cas_required=cas_required,
            delete_version_after=delete_version_after,
            custom_metadata=custom_metadata,
        )
        await self._client.request(
            "POST", _route(mount_point, "metadata", path), json=payload, idempotent=True
        )

    async def delete_metadata_and_all_versions(
        self, path: str, mount_point: str = DEFAULT_MOUNT_POINT
    ) -> None:
        """DELETE <mount>/metadata/<path>: the secret and its whole history."""
        await self._client.request("DELETE", _route(mount_point, "metadata", path), idempotent=True)

    async def _versions_call(
        self, action: str, path: str, versions: Iterable[int], mount_point: str
    ) -> None:
        numbers = [int(v) for v in versions]
        method = "PUT" if action == "destroy" else "POST"
        await self._client.request(
            method, _route(mount_point, action, path), json={"versions": numbers}, idempotent=True
        )


def _write(secret: JSONObject, cas: int | None) -> JSONObject:
    """The body of a write or patch: the data, and the check-and-set version if given."""
    return drop_none(data=secret, options=None if cas is None else {"cas": int(cas)})


def _version_number(key: object) -> int | None:
    text = str(key)
    if not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _route(mount_point: str, kind: str, path: str) -> str:
    return f"{subpath(mount_point, 'mount_point')}/{kind}/{subpath(path)}"
