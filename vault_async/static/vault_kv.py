"""Static secrets from a Vault/OpenBao KV v2 mount, read with the project's own client."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._exceptions import (
    Forbidden,
    InvalidConfig,
    InvalidPath,
    VaultConnectionError,
    VaultError,
    VaultTimeout,
    VaultUnavailable,
    vault_messages,
)
from ._core import DEFAULT_TTL, CachedSecrets
from ._errors import (
    SecretAccessDenied,
    SecretConfigError,
    SecretNotFound,
    SecretUnavailable,
    StaticSecretError,
)
from ._value import StaticSecret

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["PROVIDER", "VaultKvFetcher", "vault_kv"]

PROVIDER = "vault-kv"


class VaultKvFetcher:
    """Reads ``<mount>/data/<name>`` (``?version=N`` when a version is asked for).

    The value is the version's data mapping; the version is Vault's version number.
    A deleted or destroyed version reads as :class:`SecretNotFound`. The client is the
    caller's: :meth:`aclose` leaves it open.
    """

    provider = PROVIDER

    def __init__(self, client: AsyncVaultClient, *, mount_point: str = "secret") -> None:
        self._client = client
        self._mount = mount_point

    async def fetch(self, name: str, version: str | None) -> StaticSecret:
        number = _version_number(name, version)
        try:
            secret = await self._client.secrets.kv_v2.read_secret(
                name, version=number, mount_point=self._mount
            )
        except VaultError as exc:
            raise _translate(name, exc) from exc
        meta = secret.metadata
        if meta.get("deletion_time") or meta.get("destroyed"):
            raise SecretNotFound(PROVIDER, name, f"version {meta.get('version')} is deleted")
        return StaticSecret(PROVIDER, name, str(meta.get("version", number or "")), secret.data)

    async def aclose(self) -> None:
        return None


def vault_kv(
    client: AsyncVaultClient,
    *,
    mount_point: str = "secret",
    ttl: float = DEFAULT_TTL,
    refresh_interval: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CachedSecrets:
    """A cached provider over the KV v2 mount ``mount_point`` of ``client``."""
    fetcher = VaultKvFetcher(client, mount_point=mount_point)
    return CachedSecrets(fetcher, ttl=ttl, refresh_interval=refresh_interval, clock=clock)


def _version_number(name: str, version: str | None) -> int | None:
    if version is None:
        return None
    if not (version.isascii() and version.isdigit()) or int(version) < 1:
        raise SecretConfigError(PROVIDER, name, f"version {version!r} is not a positive integer")
    return int(version)


_TABLE: tuple[tuple[type[VaultError], type[StaticSecretError], str], ...] = (
    (InvalidPath, SecretNotFound, "not found"),
    (Forbidden, SecretAccessDenied, "permission denied"),
    (InvalidConfig, SecretConfigError, "invalid name or mount"),
    (VaultConnectionError, SecretUnavailable, "Vault unreachable"),
    (VaultTimeout, SecretUnavailable, "Vault timed out"),
    (VaultUnavailable, SecretUnavailable, "Vault unavailable"),
)


def _translate(name: str, exc: VaultError) -> StaticSecretError:
    for source, target, message in _TABLE:
        if isinstance(exc, source):
            return target(PROVIDER, name, f"{message} ({_detail(exc)})")
    return SecretUnavailable(PROVIDER, name, f"Vault failed ({_detail(exc)})")


def _detail(exc: VaultError) -> str:
    """Vault's status and its errors on one line (its multi-error text has line breaks)."""
    lines = vault_messages(exc.errors) or vault_messages([exc.message])
    head = f"status {exc.status}: " if exc.status is not None else ""
    return head + "; ".join(lines)
