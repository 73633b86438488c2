"""What a ``DATABASES`` entry on ``vault_async.django`` asks for, read and checked once.

Each mistake is one line naming the setting to fix (``ImproperlyConfigured``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from .._roles import set_role_sql

__all__ = ["ENGINE", "VAULT_OPTION_KEYS", "VaultDbOptions", "read_options"]

ENGINE = "vault_async.django"

VAULT_OPTION_KEYS = ("vault_role", "vault_mount", "static", "startup_timeout", "assume_role")
"""OPTIONS this backend reads itself; none of them reaches psycopg."""

DEFAULT_MOUNT = "database"
DEFAULT_STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class VaultDbOptions:
    """The Vault database role an alias logs in with, and the role its sessions assume."""

    role: str
    mount: str = DEFAULT_MOUNT
    static: bool = False
    assume_role: str | None = None
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT

    @property
    def key(self) -> tuple[str, str, bool]:
        """Aliases with the same key share one lease engine (one login, one lease)."""
        return (self.mount, self.role, self.static)

    @property
    def role_sql(self) -> str | None:
        """``SET ROLE "<assume_role>"``, or None."""
        return set_role_sql(self.assume_role)


def _where(alias: str, key: str) -> str:
    return f"DATABASES[{alias!r}]['OPTIONS'][{key!r}]"


def _text(alias: str, options: Mapping[str, object], key: str) -> str | None:
    value = options.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"{_where(alias, key)} must be a string")
    return value


def read_options(
    alias: str,
    settings_dict: Mapping[str, object],
    environ: Mapping[str, str] | None = None,
) -> VaultDbOptions:
    """Read an alias's settings: OPTIONS first, then the service's environment variables.

    The role: ``OPTIONS['vault_role']`` (dynamic, or static with ``OPTIONS['static']``),
    else ``VAULT_DB_ROLE`` (dynamic), else ``VAULT_DB_STATIC_ROLE`` (static). The mount:
    ``OPTIONS['vault_mount']``, else ``VAULT_DB_MOUNT``, else ``database``.
    """
    env = os.environ if environ is None else environ
    raw = settings_dict.get("OPTIONS") or {}
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"DATABASES[{alias!r}]['OPTIONS'] must be a dict")
    options: Mapping[str, object] = raw
    for key in ("USER", "PASSWORD"):
        if settings_dict.get(key):
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}][{key!r}] must be empty: {ENGINE} logs in with the "
                "credential Vault issues"
            )
    if options.get("pool"):
        raise ImproperlyConfigured(
            f"{_where(alias, 'pool')} is not supported by {ENGINE}: use CONN_MAX_AGE for "
            "persistent connections"
        )
    static = options.get("static", False)
    if not isinstance(static, bool):
        raise ImproperlyConfigured(f"{_where(alias, 'static')} must be True or False")
    role = _text(alias, options, "vault_role")
    if role is None:
        if env.get("VAULT_DB_ROLE"):
            role = env["VAULT_DB_ROLE"]
        elif env.get("VAULT_DB_STATIC_ROLE"):
            role, static = env["VAULT_DB_STATIC_ROLE"], True
        else:
            raise ImproperlyConfigured(
                f"{_where(alias, 'vault_role')} (or VAULT_DB_ROLE) is required: the Vault "
                "database role to log in with"
            )
    mount = _text(alias, options, "vault_mount") or env.get("VAULT_DB_MOUNT") or DEFAULT_MOUNT
    timeout = options.get("startup_timeout", DEFAULT_STARTUP_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ImproperlyConfigured(f"{_where(alias, 'startup_timeout')} must be seconds > 0")
    assume_role = _text(alias, options, "assume_role")
    try:
        set_role_sql(assume_role)
    except ValueError as error:
        raise ImproperlyConfigured(f"{_where(alias, 'assume_role')}: {error}") from None
    return VaultDbOptions(role, mount, static, assume_role, float(timeout))
