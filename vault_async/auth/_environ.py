"""The auth method named by the environment, read as the reference service reads it.

``VAULT_AUTH_METHOD`` is ``token`` (the default: ``VAULT_TOKEN_FILE``, a file an Agent
keeps current, else ``VAULT_TOKEN`` or ``~/.vault-token`` as ``ClientConfig.from_env`` finds
it; ``VAULT_TOKEN`` and ``VAULT_TOKEN_FILE`` are exclusive), ``approle`` (``VAULT_ROLE_ID``
with ``VAULT_SECRET_ID`` or ``VAULT_SECRET_ID_FILE``), ``kubernetes`` (``VAULT_AUTH_ROLE``,
``VAULT_JWT_FILE`` optional) or ``jwt`` (``VAULT_AUTH_ROLE`` and ``VAULT_JWT_FILE``);
``VAULT_AUTH_MOUNT`` overrides the method's mount. A missing setting is an ``InvalidConfig``
naming it; no value is ever shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .._exceptions import InvalidConfig
from ._method import AuthMethod
from .approle import AppRoleAuth
from .jwt import JWTAuth
from .kubernetes import DEFAULT_JWT_FILE, KubernetesAuth
from .token import TokenAuth

__all__ = ["AUTH_METHODS", "auth_from_env"]

AUTH_METHODS = ("token", "approle", "kubernetes", "jwt")


def auth_from_env(
    environ: Mapping[str, str] | None = None, *, token: str | None = None
) -> AuthMethod:
    """The auth method ``VAULT_AUTH_METHOD`` names; ``token`` is the token found for ``token``."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        return env.get(name) or None

    def need(name: str, method: str) -> str:
        value = get(name)
        if value is None:
            raise InvalidConfig(f"{name} is required with VAULT_AUTH_METHOD={method}")
        return value

    method = (get("VAULT_AUTH_METHOD") or "token").strip().lower()
    mount = get("VAULT_AUTH_MOUNT")
    token_file = get("VAULT_TOKEN_FILE")
    if token_file is not None and method != "token":
        raise InvalidConfig(f"VAULT_TOKEN_FILE is token auth: unset it with {method}")
    if method == "approle":
        role_id = need("VAULT_ROLE_ID", method)
        secret_id, secret_id_file = get("VAULT_SECRET_ID"), get("VAULT_SECRET_ID_FILE")
        if (secret_id is None) == (secret_id_file is None):
            raise InvalidConfig(
                "VAULT_AUTH_METHOD=approle needs one of VAULT_SECRET_ID or VAULT_SECRET_ID_FILE"
            )
        return AppRoleAuth(
            role_id, secret_id, secret_id_file=secret_id_file, mount_point=mount or "approle"
        )
    if method == "kubernetes":
        return KubernetesAuth(
            need("VAULT_AUTH_ROLE", method),
            jwt_file=get("VAULT_JWT_FILE") or DEFAULT_JWT_FILE,
            mount_point=mount or "kubernetes",
        )
    if method == "jwt":
        return JWTAuth(
            need("VAULT_AUTH_ROLE", method),
            jwt_file=need("VAULT_JWT_FILE", method),
            mount_point=mount or "jwt",
        )
    if method == "token":
        if token_file is not None:  # before ``token``, which may come from ~/.vault-token
            if get("VAULT_TOKEN") is not None:
                raise InvalidConfig("VAULT_TOKEN and VAULT_TOKEN_FILE are exclusive; set one")
            return TokenAuth(token_file=token_file)
        if not token:
            raise InvalidConfig(
                "VAULT_TOKEN is required with VAULT_AUTH_METHOD=token (or a ~/.vault-token file)"
            )
        return TokenAuth(token=token)
    raise InvalidConfig(f"VAULT_AUTH_METHOD must be one of {', '.join(AUTH_METHODS)}")
