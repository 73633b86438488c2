"""The auth-method protocol and the shared login call."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .._exceptions import InvalidConfig
from .._json import JSONObject
from .._models import AuthResult
from .._parse import to_auth
from .._paths import subpath

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["AuthMethod", "auth_label", "login_request", "read_secret_file"]


class AuthMethod(Protocol):
    """An object that logs a client in; ``client.login(method)`` then uses the token."""

    async def login(self, client: AsyncVaultClient) -> AuthResult:
        """Obtain a token (without setting it on the client)."""
        ...


def auth_label(method: object) -> str:
    """``auth/<mount>`` for an auth method object: the name of its token's handle and metrics.

    Every login class here has a ``mount_point`` (``TokenAuth``'s is ``token``); another
    object is named after its class.
    """
    mount = getattr(method, "mount_point", None)
    if isinstance(mount, str) and mount.strip("/"):
        return f"auth/{mount.strip('/')}"
    return f"auth/{type(method).__name__}"


async def login_request(
    client: AsyncVaultClient, mount_point: str, route: str, payload: JSONObject
) -> AuthResult:
    """POST auth/<mount>/<route> without a token; a login is retried only if never sent.

    ``mount_point`` may have several segments (``team/approle``), each checked and quoted.
    """
    path = f"auth/{subpath(mount_point, 'mount_point')}/{route}"
    body = await client.request("POST", path, json=payload, idempotent=False, token=None)
    return to_auth(body)


def read_secret_file(path: str | Path, what: str) -> str:
    """Read a credential from a file (stripped); the error names the file, never its contents."""
    try:
        value = Path(path).read_text().strip()
    except OSError as exc:
        raise InvalidConfig(f"cannot read {what} file {str(path)!r}: {exc.strerror}") from None
    if not value:
        raise InvalidConfig(f"{what} file {str(path)!r} is empty")
    return value
