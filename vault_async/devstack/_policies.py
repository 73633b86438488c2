"""The Vault policies of the service and of its migrations: each reaches its own leases only.

A lease is renewed and revoked through ``sys/leases/{renew,revoke}/<lease_id>``, so the
policy names the leases it may touch: ``<mount>/creds/<role>/*``. ``allowed_parameters``
keeps a ``lease_id`` out of the body, where Vault would prefer it to the URL's. Vault's
``default`` policy (renew and look up any lease by id) is left off the tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._errors import DevStackError
from ._namespace import AdminApi

__all__ = [
    "grant_dynamic_role",
    "role_rules",
    "service_policy",
    "static_role_rules",
    "token_self_rules",
]

_ROLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _checked(value: str, what: str) -> str:
    """A mount or role name that cannot widen a policy path (no glob, no segment change)."""
    if not all(_ROLE_NAME.fullmatch(part) for part in value.split("/")):
        raise ValueError(f"{what} {value!r}: use letters, digits, '_', '.' and '-' only")
    return value


def token_self_rules() -> str:
    """The token's own lookup, renewal and revocation (what the lease engine does with it)."""
    return (
        'path "auth/token/lookup-self" {\n  capabilities = ["read"]\n}\n'
        'path "auth/token/renew-self" {\n  capabilities = ["update"]\n}\n'
        'path "auth/token/revoke-self" {\n  capabilities = ["update"]\n}\n'
    )


def role_rules(mount: str, role: str) -> str:
    """Read a dynamic role's credentials; renew and revoke its leases, by URL only."""
    prefix = f"{_checked(mount, 'mount')}/creds/{_checked(role, 'role')}"
    return (
        f'path "{prefix}" {{\n  capabilities = ["read"]\n}}\n'
        f'path "sys/leases/renew/{prefix}/*" {{\n  capabilities = ["update"]\n'
        '  allowed_parameters = { "increment" = [] }\n}\n'
        f'path "sys/leases/revoke/{prefix}/*" {{\n  capabilities = ["update"]\n'
        '  allowed_parameters = { "sync" = [] }\n}\n'
    )


def static_role_rules(mount: str, role: str) -> str:
    """Read a static role's credentials (no lease: nothing to renew or revoke)."""
    path = f"{_checked(mount, 'mount')}/static-creds/{_checked(role, 'role')}"
    return f'path "{path}" {{\n  capabilities = ["read"]\n}}\n'


def service_policy(mount: str, roles: Iterable[str], static_roles: Iterable[str] = ()) -> str:
    """A policy for a login that uses ``roles`` (dynamic) and ``static_roles`` on ``mount``."""
    parts = [token_self_rules()]
    parts += [role_rules(mount, role) for role in roles]
    parts += [static_role_rules(mount, role) for role in static_roles]
    return "".join(parts)


def grant_dynamic_role(bao: AdminApi, policy: str, mount: str, role: str) -> None:
    """Add a dynamic role's rules to an existing policy (a no-op when it has them)."""
    path = f"sys/policies/acl/{policy}"
    current = bao.call("GET", path, f"read policy {policy!r}")
    text = current.get("data", current).get("policy")
    if not isinstance(text, str):
        raise DevStackError(f"read policy {policy!r}", "the answer has no policy text")
    rules = role_rules(mount, role)
    if rules not in text:
        bao.call("PUT", path, f"grant role {role!r} in {policy!r}", {"policy": text + rules})
