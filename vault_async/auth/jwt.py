"""JWT/OIDC login with a given token or one read from a file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .._exceptions import InvalidConfig
from .._json import JSONObject, drop_none
from .._models import AuthResult
from ._method import login_request, read_secret_file

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["JWTAuth"]


class JWTAuth:
    """POST auth/<mount_point>/login with ``role`` and ``jwt``."""

    def __init__(
        self,
        role: str | None,
        jwt: str | None = None,
        jwt_file: str | Path | None = None,
        mount_point: str = "jwt",
    ) -> None:
        if (jwt is None) == (jwt_file is None):
            raise InvalidConfig("JWTAuth needs exactly one of jwt or jwt_file")
        self.role = role
        self._jwt = jwt
        self.jwt_file = Path(jwt_file) if jwt_file is not None else None
        self.mount_point = mount_point

    def __repr__(self) -> str:
        return f"JWTAuth(role={self.role!r}, mount_point={self.mount_point!r})"

    async def login(self, client: AsyncVaultClient) -> AuthResult:
        """A jwt_file is read at each login."""
        jwt = self._jwt if self.jwt_file is None else read_secret_file(self.jwt_file, "JWT")
        payload: JSONObject = drop_none(jwt=jwt or "", role=self.role)
        return await login_request(client, self.mount_point, "login", payload)
