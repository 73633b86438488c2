"""Token auth: ``auth/token/*`` routes and the TokenAuth login object."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .._exceptions import InvalidConfig
from .._json import JSONObject, drop_none
from .._models import AuthResult, TokenInfo
from .._parse import to_auth, to_token_info
from .._request import CLIENT_NAMESPACE, Namespace, in_namespace
from ._method import read_secret_file

if TYPE_CHECKING:
    from .._client import AsyncVaultClient

__all__ = ["TokenApi", "TokenAuth"]


class TokenApi:
    """``client.auth.token``: the calling token's own lookup, renewal and revocation.

    ``namespace`` (the self calls): where the token was issued (None: the root
    namespace); by default the client's.
    """

    __slots__ = ("_client",)

    def __init__(self, client: AsyncVaultClient) -> None:
        self._client = client

    async def lookup_self(self, *, namespace: Namespace = CLIENT_NAMESPACE) -> TokenInfo:
        """GET auth/token/lookup-self."""
        body = await self._client.request(
            "GET", "auth/token/lookup-self", idempotent=True, **in_namespace(namespace)
        )
        return to_token_info(body)

    async def renew_self(
        self, increment: int | None = None, *, namespace: Namespace = CLIENT_NAMESPACE
    ) -> AuthResult:
        """POST auth/token/renew-self; ``increment`` in seconds (Vault may cap it)."""
        payload: JSONObject = drop_none(
            increment=None if increment is None else f"{int(increment)}s"
        )
        body = await self._client.request(
            "POST",
            "auth/token/renew-self",
            json=payload,
            idempotent=True,
            **in_namespace(namespace),
        )
        return to_auth(body)

    async def revoke_self(self, *, namespace: Namespace = CLIENT_NAMESPACE) -> None:
        """POST auth/token/revoke-self; the client forgets the token afterwards."""
        await self._client.request(
            "POST", "auth/token/revoke-self", idempotent=True, **in_namespace(namespace)
        )
        self._client.set_token(None)

    async def create(
        self,
        *,
        policies: list[str] | None = None,
        ttl: str | None = None,
        explicit_max_ttl: str | None = None,
        renewable: bool | None = None,
        no_parent: bool = False,
        display_name: str | None = None,
        meta: dict[str, str] | None = None,
    ) -> AuthResult:
        """POST auth/token/create (or create-orphan with ``no_parent``)."""
        payload: JSONObject = drop_none(
            policies=policies,
            ttl=ttl,
            explicit_max_ttl=explicit_max_ttl,
            renewable=renewable,
            display_name=display_name,
            meta=meta,
        )
        route = "auth/token/create-orphan" if no_parent else "auth/token/create"
        body = await self._client.request("POST", route, json=payload, idempotent=False)
        return to_auth(body)

    async def lookup_accessor(self, accessor: str) -> TokenInfo:
        """POST auth/token/lookup-accessor."""
        body = await self._client.request(
            "POST", "auth/token/lookup-accessor", json={"accessor": accessor}, idempotent=True
        )
        return to_token_info(body)

    async def revoke_accessor(self, accessor: str) -> None:
        """POST auth/token/revoke-accessor."""
        await self._client.request(
            "POST", "auth/token/revoke-accessor", json={"accessor": accessor}, idempotent=True
        )


class TokenAuth:
    """Use a given token, or one read from a file (e.g. a Vault Agent sink).

    With ``token_file`` the client re-reads the file when it changes (its inode, size or
    modification time; checked at most once a second, before a request), so a token the
    Agent's auto-auth replaced is used from the next request on. A file's token belongs
    to whoever writes the file: the lease engine neither renews nor revokes it, and a
    "login" reads the file again (see ``owned_elsewhere``).
    """

    mount_point = "token"
    """Token auth is always mounted at ``auth/token``."""

    def __init__(self, token: str | None = None, token_file: str | Path | None = None) -> None:
        if (token is None) == (token_file is None):
            raise InvalidConfig("TokenAuth needs exactly one of token or token_file")
        self._token = token
        self._file = Path(token_file) if token_file is not None else None
        self._stamp: tuple[int, int, int] | None = None

    def __repr__(self) -> str:
        source = f"file={str(self._file)!r}" if self._file is not None else "token=<given>"
        return f"TokenAuth({source})"

    @property
    def owned_elsewhere(self) -> bool:
        """True for a token file: its writer (an Agent's auto-auth) renews and replaces it."""
        return self._file is not None

    def _read(self) -> str:
        if self._file is None:
            assert self._token is not None
            return self._token
        try:
            before = _stamp(os.stat(self._file))
        except OSError:
            before = None
        token = read_secret_file(self._file, "token")
        self._stamp = before
        return token

    def poll_token(self) -> str | None:
        """The file's token if the file changed since it was last read, else None."""
        if self._file is None:
            return None
        try:
            stamp = _stamp(os.stat(self._file))
        except OSError:
            return None
        if stamp == self._stamp:
            return None
        try:
            return self._read()
        except InvalidConfig:
            return None

    async def login(self, client: AsyncVaultClient) -> AuthResult:
        """Look the token up (auth/token/lookup-self) to learn its TTL and policies."""
        token = self._read()
        body = await client.request("GET", "auth/token/lookup-self", idempotent=True, token=token)
        info = to_token_info(body)
        if self._file is not None:
            client.set_token_source(self)
        return AuthResult(
            client_token=token,
            accessor=info.accessor,
            lease_duration=info.ttl,
            renewable=info.renewable,
            policies=info.policies,
            token_policies=info.policies,
            metadata=info.meta,
            entity_id=info.entity_id,
            orphan=info.orphan,
            token_type=info.type,
            expire_time=info.expire_time,
        )


def _stamp(stat: os.stat_result) -> tuple[int, int, int]:
    """What tells a rewritten file: a rename brings a new inode, an edit a new size or time."""
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)
