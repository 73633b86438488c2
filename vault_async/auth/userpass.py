"""Username/password logins: userpass and LDAP share the same route shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._models import AuthResult
from .._paths import name
from ._method import login_request

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["LDAPAuth", "UserpassAuth"]


class UserpassAuth:
    """POST auth/<mount_point>/login/<username> with the password.

    The username is one path segment (no '/'); ``mount_point`` may have several.
    """

    default_mount = "userpass"

    def __init__(self, username: str, password: str, mount_point: str | None = None) -> None:
        self.username = username
        self._password = password
        self.mount_point = mount_point if mount_point is not None else self.default_mount

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(username={self.username!r}, mount_point={self.mount_point!r})"
        )

    async def login(self, client: AsyncVaultClient) -> AuthResult:
        """The username is quoted into the path; the password goes in the body."""
        route = "login/" + name(self.username, "username")
        return await login_request(client, self.mount_point, route, {"password": self._password})


class LDAPAuth(UserpassAuth):
    """POST auth/<mount_point>/login/<username> against the LDAP auth method."""

    default_mount = "ldap"
