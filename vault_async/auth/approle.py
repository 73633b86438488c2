"""AppRole login (``auth/<mount>/login``), with secret_id given, from a file, or wrapped."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import InvalidConfig, MalformedResponse
from .._models import AuthResult
from ._method import login_request, read_secret_file

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["DEFAULT_MOUNT_POINT", "AppRoleAuth"]

DEFAULT_MOUNT_POINT = "approle"


class AppRoleAuth:
    """Log in with a role_id and a secret_id.

    The secret_id comes from ``secret_id``, from ``secret_id_file`` (read at each login),
    or from ``wrapped_secret_id``, a response-wrapping token unwrapped through
    ``sys/wrapping/unwrap`` at the first login (wrapping tokens are single-use, so the
    unwrapped secret_id is kept for later logins).
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

    def __repr__(self) -> str:
        return f"AppRoleAuth(role_id=<redacted>, mount_point={self.mount_point!r})"

    async def _secret(self, client: AsyncVaultClient) -> str | None:
        if self._secret_id_file is not None:
            return read_secret_file(self._secret_id_file, "secret_id")
        if self._wrapped is not None:
            wrapped, self._wrapped = self._wrapped, None
            secret = await client.sys.wrapping.unwrap(wrapped)
            value = secret.data.get("secret_id")
            if not isinstance(value, str) or not value:
                raise MalformedResponse("unwrapped response carries no secret_id")
            self._secret_id = value
        return self._secret_id

    async def login(self, client: AsyncVaultClient) -> AuthResult:
        """POST auth/<mount_point>/login."""
        payload: dict[str, Any] = {"role_id": self.role_id}
        secret_id = await self._secret(client)
        if secret_id is not None:
            payload["secret_id"] = secret_id
        return await login_request(client, self.mount_point, "login", payload)
