"""AppRole login (``auth/<mount>/login``), with secret_id given, from a file, or wrapped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from .._exceptions import (
    InvalidConfig,
    InvalidRequest,
    MalformedResponse,
    VaultConnectionError,
    VaultError,
    VaultTimeout,
)
from .._json import drop_none
from .._models import AuthResult
from .._translate import transport_failure
from ._method import login_request, read_secret_file

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["DEFAULT_MOUNT_POINT", "AppRoleAuth"]

DEFAULT_MOUNT_POINT = "approle"

_UNWRAP = ("POST", "sys/wrapping/unwrap")


class AppRoleAuth:
    """Log in with a role_id and a secret_id.

    The secret_id comes from ``secret_id``, from ``secret_id_file`` (read at each login),
    or from ``wrapped_secret_id``, a response-wrapping token unwrapped through
    ``sys/wrapping/unwrap`` at the first login. Wrapping tokens are single-use: the
    unwrapped secret_id is kept for later logins and the wrapping token forgotten. Until
    an unwrap succeeds the wrapping token is kept, so a login that failed because Vault
    was unreachable can be tried again. If Vault calls the token invalid (used, expired,
    or consumed by an earlier attempt whose answer was lost), that login and every later
    one raise :class:`InvalidRequest` saying so: only a new wrapped secret_id helps then.
    """

    def __init__(
        self,
        role_id: str,
        secret_id: str | None = None,
        *,
        secret_id_file: str | Path | None = None,
        wrapped_secret_id: str | None = None,
        mount_point: str = DEFAULT_MOUNT_POINT,
    ) -> None:
        given = sum(x is not None for x in (secret_id, secret_id_file, wrapped_secret_id))
        if given > 1:
            raise InvalidConfig(
                "AppRoleAuth takes at most one of secret_id, secret_id_file, wrapped_secret_id"
            )
        self.role_id = role_id
        self.mount_point = mount_point
        self._secret_id = secret_id
        self._secret_id_file = Path(secret_id_file) if secret_id_file is not None else None
        self._wrapped = wrapped_secret_id
        self._unwrap_lock = asyncio.Lock()
        # Set once an unwrap failed after it may have reached Vault (and used the token).
        self._unwrap_maybe_consumed = False
        # Set once the wrapping token is spent without giving us a secret_id.
        self._unwrap_failed: Callable[[], VaultError] | None = None

    def __repr__(self) -> str:
        return f"AppRoleAuth(role_id=<redacted>, mount_point={self.mount_point!r})"

    async def _secret(self, client: AsyncVaultClient) -> str | None:
        if self._secret_id_file is not None:
            return read_secret_file(self._secret_id_file, "secret_id")
        if self._wrapped is not None or self._unwrap_failed is not None:
            async with self._unwrap_lock:  # one unwrap, even for concurrent first logins
                await self._unwrap(client)
        return self._secret_id

    async def _unwrap(self, client: AsyncVaultClient) -> None:
        """Turn the wrapping token into ``self._secret_id``, or raise and keep what is left."""
        if self._unwrap_failed is not None:
            raise self._unwrap_failed()
        wrapped = self._wrapped
        if wrapped is None:  # a concurrent login unwrapped it
            return
        try:
            secret = await client.sys.wrapping.unwrap(wrapped)
        except InvalidRequest as exc:
            if not _wrapping_token_rejected(exc):
                raise
            error = self._spend(_consumed_error(exc.errors, self._unwrap_maybe_consumed))
            raise error() from None  # one error: Vault's words are in its .errors
        except VaultError as exc:
            if _may_have_reached_vault(exc):
                self._unwrap_maybe_consumed = True
            raise
        value = secret.data.get("secret_id")
        if not isinstance(value, str) or not value:
            error = self._spend(_no_secret_id_error)
            raise error()
        self._secret_id, self._wrapped = value, None

    def _spend(self, error: Callable[[], VaultError]) -> Callable[[], VaultError]:
        """The wrapping token is gone for good: forget it; ``error`` fails every later unwrap."""
        self._wrapped = None
        self._unwrap_failed = error
        return error

    async def login(self, client: AsyncVaultClient) -> AuthResult:
        """POST auth/<mount_point>/login."""
        payload = drop_none(role_id=self.role_id, secret_id=await self._secret(client))
        return await login_request(client, self.mount_point, "login", payload)


def _wrapping_token_rejected(exc: InvalidRequest) -> bool:
    """Vault's 400 for a wrapping token that is used, expired or unknown."""
    return exc.status == 400 and any("wrapping token" in e for e in exc.errors)


def _may_have_reached_vault(exc: VaultError) -> bool:
    """Whether a failed unwrap may have consumed the token (not a refused connect, not 4xx)."""
    if isinstance(exc, VaultConnectionError | VaultTimeout):
        cause = exc.__cause__
        if not isinstance(cause, httpx.TransportError):
            return True
        method, path = _UNWRAP
        return not transport_failure(cause, method=method, path=path).unsent
    return exc.status is not None and exc.status >= 500


def _consumed_error(errors: tuple[str, ...], maybe_by_earlier: bool) -> Callable[[], VaultError]:
    message = (
        "the wrapped secret_id cannot be unwrapped: its wrapping token was already used or "
        "has expired; a new wrapped secret_id is needed"
    )
    if maybe_by_earlier:
        message += " (an earlier unwrap attempt that failed after reaching Vault may have used it)"
    method, path = _UNWRAP

    def error() -> VaultError:
        return InvalidRequest(message, status=400, method=method, path=path, errors=errors)

    return error


def _no_secret_id_error() -> VaultError:
    method, path = _UNWRAP
    return MalformedResponse(
        "the unwrapped response carries no secret_id (its wrapping token is now used)",
        method=method,
        path=path,
    )
