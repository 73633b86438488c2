"""Auth methods (login objects) and ``client.auth`` (token self-management)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._method import AuthMethod, auth_label
from .approle import AppRoleAuth
from .jwt import JWTAuth
from .kubernetes import KubernetesAuth
from .token import TokenApi, TokenAuth
from .userpass import LDAPAuth, UserpassAuth

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = [
    "AppRoleAuth",
    "AuthApi",
    "AuthMethod",
    "JWTAuth",
    "KubernetesAuth",
    "LDAPAuth",
    "TokenApi",
    "TokenAuth",
    "UserpassAuth",
    "auth_label",
]


class AuthApi:
    """``client.auth``: routes under ``auth/``."""

    __slots__ = ("token",)

    def __init__(self, client: AsyncVaultClient) -> None:
        self.token = TokenApi(client)
