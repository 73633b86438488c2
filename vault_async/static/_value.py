"""A static secret as a provider returned it: its name, version and a value never shown."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ._errors import SecretConfigError

__all__ = ["SecretChange", "StaticSecret"]

SecretData = str | bytes | Mapping[str, Any]
"""What a provider stores: text (AWS SecretString), bytes (GCP payload, AWS SecretBinary)
or a mapping (a Vault KV version's data)."""


class StaticSecret:
    """One version of a secret. ``repr``/``str`` show the name and version, never the value.

    Read the value with :meth:`text`, :meth:`binary` or :meth:`mapping`.
    """

    __slots__ = ("_data", "name", "provider", "stages", "version")

    def __init__(
        self,
        provider: str,
        name: str,
        version: str,
        data: SecretData,
        stages: tuple[str, ...] = (),
    ) -> None:
        self.provider = provider
        self.name = name
        self.version = version
        """The provider's version: Vault's number, AWS's VersionId, GCP's number, as text."""
        self.stages = stages
        """AWS's version stages (``AWSCURRENT``, ``AWSPREVIOUS``...); empty elsewhere."""
        self._data: SecretData = MappingProxyType(dict(data)) if isinstance(data, Mapping) else data

    def text(self) -> str:
        """The value as text: bytes decoded as UTF-8, a mapping as JSON."""
        data = self._data
        if isinstance(data, str):
            return data
        if isinstance(data, bytes):
            text = _decoded(data)
            if text is None:
                raise self._error("the value is binary, not UTF-8 text")
            return text
        return json.dumps(dict(data), separators=(",", ":"), sort_keys=True)

    def binary(self) -> bytes:
        """The value as bytes: text encoded as UTF-8, a mapping as JSON."""
        data = self._data
        return data if isinstance(data, bytes) else self.text().encode("utf-8")

    def mapping(self) -> Mapping[str, Any]:
        """The value as a mapping: Vault KV data as is, text or bytes parsed as a JSON object."""
        data = self._data
        if isinstance(data, Mapping):
            return data
        parsed = _parsed(data)
        if parsed is _NOT_JSON:
            raise self._error("the value is not JSON")
        if not isinstance(parsed, dict):
            raise self._error("the value is JSON but not an object")
        return MappingProxyType(parsed)

    def same_as(self, other: StaticSecret) -> bool:
        """True when both have the same version and value (compared in constant time)."""
        return self.version == other.version and hmac.compare_digest(
            self._fingerprint(), other._fingerprint()
        )

    def _fingerprint(self) -> bytes:
        data = self._data
        if isinstance(data, Mapping):
            return b"m" + json.dumps(dict(data), sort_keys=True, default=str).encode()
        return (b"b" + data) if isinstance(data, bytes) else (b"s" + data.encode())

    def _error(self, message: str) -> SecretConfigError:
        return SecretConfigError(self.provider, self.name, f"version {self.version}: {message}")

    def __repr__(self) -> str:
        stages = f", stages={list(self.stages)!r}" if self.stages else ""
        return (
            f"StaticSecret(provider={self.provider!r}, name={self.name!r}, "
            f"version={self.version!r}{stages}, value=<hidden>)"
        )

    __str__ = __repr__


# The decoders' own errors hold the input (``.doc``, ``.object``): they are dropped here, so
# that no traceback or ``__context__`` carries the value along with the error raised instead.
_NOT_JSON = object()


def _decoded(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _parsed(data: str | bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return _NOT_JSON


class SecretChange:
    """What a subscriber receives: the secret's latest version replaced an earlier one."""

    __slots__ = ("current", "name", "previous", "provider")

    def __init__(self, previous: StaticSecret, current: StaticSecret) -> None:
        self.provider = current.provider
        self.name = current.name
        self.previous = previous
        self.current = current

    def __repr__(self) -> str:
        return (
            f"SecretChange(provider={self.provider!r}, name={self.name!r}, "
            f"previous_version={self.previous.version!r}, "
            f"current_version={self.current.version!r})"
        )
