"""Secret sources: the acquire / renew / revoke calls the scheduler drives.

The scheduler never looks at a client. A source is three callables plus a few
facts about them, in the spirit of Vault's ``LifetimeWatcher`` which takes the
renew call as a function. The adapters below build sources for the async
client's database engine and for the client's own token.

The client is typed ``Any`` on purpose: the adapters only need a handful of
methods and should work with the real client, a wrapper or a test fake alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._models import Grant, Lease, SecretKind

__all__ = [
    "AcquireFn",
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


@dataclass(frozen=True, slots=True)
class SecretSource:
    """How to obtain, extend and give back one kind of secret.

    ``renew`` is None for secrets that cannot be extended (a static-role password
    is re-read instead). ``revoke`` is None when there is nothing to give back.
    ``revoke_replaced`` says whether a lease that was rotated away is revoked
    after the drain period (False for tokens: revoking a token also revokes every
    lease it created). ``client_key`` groups the sources riding on one client
    token, so leases follow when that token is replaced.
    """

    kind: SecretKind
    name: str
    acquire: AcquireFn
    renew: RenewFn | None = None
    revoke: RevokeFn | None = None
    revoke_replaced: bool = True
    client_key: int | None = None


def _grant_from_secret(secret: Any, data: Mapping[str, Any] | None = None) -> Grant:
    return Grant(
        lease_id=str(secret.lease_id or ""),
        lease_duration=float(secret.lease_duration or 0),
        renewable=bool(secret.renewable),
        data=dict(secret.data or {}) if data is None else data,
    )


def database_dynamic(client: Any, role: str, mount: str = "database") -> SecretSource:
    """A dynamic database role: ``{mount}/creds/{role}``, renewed through ``sys/leases``."""

    async def acquire() -> Grant:
        secret = await client.secrets.database.generate_credentials(role, mount_point=mount)
        return _grant_from_secret(secret)

    async def renew(lease: Lease) -> Grant:
        secret = await client.sys.leases.renew(lease.lease_id)
        grant = _grant_from_secret(secret, data=lease.data)
        if not grant.lease_id:
            grant = Grant(lease.lease_id, grant.lease_duration, grant.renewable, lease.data)
        return grant

    async def revoke(lease: Lease) -> None:
        if lease.lease_id:
            await client.sys.leases.revoke(lease.lease_id)

    return SecretSource(
        kind="database_dynamic",
        name=f"{mount}/creds/{role}",
        acquire=acquire,
        renew=renew,
        revoke=revoke,
        client_key=id(client),
    )


def database_static(client: Any, role: str, mount: str = "database") -> SecretSource:
    """A static database role: ``{mount}/static-creds/{role}``, re-read after each rotation.

    There is no lease: the response's ``ttl`` (seconds until Vault rotates the
    password) plays the lease duration, and the credential is not renewable.
    """

    async def acquire() -> Grant:
        secret = await client.secrets.database.get_static_credentials(role, mount_point=mount)
        data = dict(secret.data or {})
        return Grant(
            lease_id="", lease_duration=float(data.get("ttl") or 0), renewable=False, data=data
        )

    return SecretSource(
        kind="database_static",
        name=f"{mount}/static-creds/{role}",
        acquire=acquire,
        client_key=id(client),
    )


def token_login(client: Any, auth_method: Any, name: str = "auth/token") -> SecretSource:
    """The client's own token: log in with ``auth_method``, renew-self, revoke-self.

    A replaced token is not revoked: that would revoke the database leases it
    created while they drain. It expires on its own.
    """

    def grant_from_auth(auth: Any) -> Grant:
        accessor = str(getattr(auth, "accessor", "") or "")
        policies = list(getattr(auth, "policies", None) or [])
        return Grant(
            lease_id=accessor,
            lease_duration=float(auth.lease_duration or 0),
            renewable=bool(auth.renewable),
            data={"accessor": accessor, "policies": policies},
        )

    async def acquire() -> Grant:
        return grant_from_auth(await client.login(auth_method))

    async def renew(lease: Lease) -> Grant:
        return grant_from_auth(await client.auth.token.renew_self())

    async def revoke(lease: Lease) -> None:
        await client.auth.token.revoke_self()

    return SecretSource(
        kind="token",
        name=name,
        acquire=acquire,
        renew=renew,
        revoke=revoke,
        revoke_replaced=False,
        client_key=id(client),
    )
