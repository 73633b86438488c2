"""Secret sources: the acquire / renew / revoke calls the engine drives.

The engine never looks at a client. A source is a few callables plus facts about
them, in the spirit of Vault's ``LifetimeWatcher``, which takes the renew call as a
function. The adapters below build sources for the async client's database engine
and for the client's own token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import _exceptions as errors
from .._request import CLIENT_NAMESPACE, Namespace, in_namespace
from ._models import Grant, Lease, SecretKind

if TYPE_CHECKING:
    from .._client import AsyncVaultClient
    from .._models import AuthResult, Secret
    from ..auth import AuthMethod

__all__ = [
    "AcquireFn",
    "CheckFn",
    "RenewFn",
    "RevokeFn",
    "SecretSource",
    "database_dynamic",
    "database_static",
    "token_login",
]

AcquireFn = Callable[[], Awaitable[Grant]]
RenewFn = Callable[[Lease], Awaitable[Grant]]
RevokeFn = Callable[[Lease], Awaitable[None]]
CheckFn = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class SecretSource:
    """How to obtain, extend and give back one kind of secret.

    ``renew`` is None for secrets that cannot be extended (a static-role password
    is re-read instead). ``revoke`` is None when there is nothing to give back.
    ``revoke_replaced`` says whether a lease that was rotated away is revoked once
    drained. ``client_key`` groups the sources riding on one client token, so leases
    follow when that token is replaced. ``check`` (tokens only) answers whether
    Vault still accepts the token, when a call made with it was refused.
    """

    kind: SecretKind
    name: str
    acquire: AcquireFn
    renew: RenewFn | None = None
    revoke: RevokeFn | None = None
    revoke_replaced: bool = True
    client_key: int | None = None
    check: CheckFn | None = None


def _digest(*parts: str) -> str:
    """A stable identity for values that must not be kept twice in clear."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _grant_from_secret(secret: Secret, data: Mapping[str, Any] | None = None) -> Grant:
    lease_id = str(secret.lease_id or "")
    duration = float(secret.lease_duration or 0)
    return Grant(
        lease_id=lease_id,
        lease_duration=duration,
        renewable=bool(secret.renewable),
        data=dict(secret.data or {}) if data is None else data,
        identity=lease_id,
        expires=duration > 0,
    )


def database_dynamic(
    client: AsyncVaultClient,
    role: str,
    mount: str = "database",
    *,
    namespace: Namespace = CLIENT_NAMESPACE,
) -> SecretSource:
    """A dynamic database role: ``{mount}/creds/{role}``, renewed through ``sys/leases``.

    ``namespace`` (None: the root one; by default the client's) is where the credentials
    are asked for, and where their leases are renewed and revoked.
    """
    where = in_namespace(namespace)

    async def acquire() -> Grant:
        secret = await client.secrets.database.generate_credentials(
            role, mount_point=mount, **where
        )
        return _grant_from_secret(secret)

    async def renew(lease: Lease) -> Grant:
        # in the namespace that issued it: OpenBao finds a root lease only from the root
        secret = await client.sys.leases.renew(lease.lease_id, **where)
        grant = _grant_from_secret(secret, data=lease.data)
        return Grant(
            lease.lease_id,
            grant.lease_duration,
            grant.renewable,
            lease.data,
            identity=lease.identity,
            expires=grant.expires,
        )

    async def revoke(lease: Lease) -> None:
        if lease.lease_id:
            await client.sys.leases.revoke(lease.lease_id, **where)

    return SecretSource(
        kind="database_dynamic",
        name=f"{mount}/creds/{role}",
        acquire=acquire,
        renew=renew,
        revoke=revoke,
        client_key=id(client),
    )


def database_static(
    client: AsyncVaultClient,
    role: str,
    mount: str = "database",
    *,
    namespace: Namespace = CLIENT_NAMESPACE,
) -> SecretSource:
    """A static database role: ``{mount}/static-creds/{role}``, re-read after each rotation.

    There is no lease: the response's ``ttl`` (seconds until Vault rotates the
    password) plays the lease duration, and the credential is not renewable. Only a
    changed username or password is a rotation: a re-read of the same one is not.
    ``namespace`` as for :func:`database_dynamic`.
    """
    where = in_namespace(namespace)

    async def acquire() -> Grant:
        secret = await client.secrets.database.get_static_credentials(
            role, mount_point=mount, **where
        )
        data = dict(secret.data or {})
        return Grant(
            lease_id="",
            lease_duration=float(data.get("ttl") or 0),
            renewable=False,
            data=data,
            identity=_digest(str(data.get("username", "")), str(data.get("password", ""))),
        )

    return SecretSource(
        kind="database_static",
        name=f"{mount}/static-creds/{role}",
        acquire=acquire,
        client_key=id(client),
    )


def token_login(
    client: AsyncVaultClient, auth_method: AuthMethod, name: str | None = None
) -> SecretSource:
    """The client's own token: log in with ``auth_method``, renew-self, revoke.

    Named ``auth/<mount>`` after the auth method (``auth/approle``, ``auth/token``, ...)
    unless ``name`` is given.

    A token handed to the service (``TokenAuth``) is the operator's: renewed, never
    revoked; looking it up again is no rotation. A token read from a file (an Agent's
    sink, ``TokenAuth(token_file=...)``) is the Agent's: neither renewed nor revoked; before
    it expires the file is read again (a "login"), which finds the token the Agent renewed
    or replaced. A batch token is neither renewed nor revoked (Vault cannot). A replaced
    token is revoked by the engine only once no lease obtained with it is left (revoking a
    token revokes its leases).
    """
    from ..auth import TokenAuth, auth_label

    given = isinstance(auth_method, TokenAuth)
    owned_elsewhere = isinstance(auth_method, TokenAuth) and auth_method.owned_elsewhere
    issued: dict[str, str] = {}  # identity -> token, for the tokens this source may revoke

    def grant_from_auth(auth: AuthResult) -> Grant:
        batch = auth.token_type == "batch"
        duration = float(auth.lease_duration or 0)
        # ttl 0 means "never" only for a token without an expiry time; a given token
        # whose ttl rounded down to 0 is about to expire, not immortal.
        expires = duration > 0 or auth.expire_time is not None
        identity = auth.accessor or _digest(auth.client_token)
        if not (given or batch):
            issued[identity] = auth.client_token
        return Grant(
            lease_id=auth.accessor,
            lease_duration=duration,
            renewable=bool(auth.renewable) and not batch,
            data={"accessor": auth.accessor, "policies": list(auth.policies)},
            identity=identity,
            expires=expires,
            revocable=not (given or batch),
        )

    async def acquire() -> Grant:
        return grant_from_auth(await client.login(auth_method))

    async def renew(lease: Lease) -> Grant:
        return grant_from_auth(await client.auth.token.renew_self())

    async def revoke(lease: Lease) -> None:
        token = issued.get(lease.identity)
        if token is None:
            return
        await client.request("POST", "auth/token/revoke-self", idempotent=True, token=token)
        del issued[lease.identity]  # only once revoked: a failed attempt is retried
        if client.token == token:
            client.set_token(None)

    async def check() -> bool:
        try:
            await client.auth.token.lookup_self()
        except errors.Forbidden:
            return False
        return True

    return SecretSource(
        kind="token",
        name=name or auth_label(auth_method),
        acquire=acquire,
        renew=None if owned_elsewhere else renew,
        revoke=revoke,
        revoke_replaced=False,  # the token guard revokes it, once its leases are gone
        client_key=id(client),
        check=check,
    )
