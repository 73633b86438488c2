"""Django on Vault-issued PostgreSQL credentials.

Settings::

    INSTALLED_APPS = [..., "vault_async.django"]   # start at boot, stop (revoke) at exit
    DATABASES = {
        "default": {
            "ENGINE": "vault_async.django",
            "HOST": "db", "PORT": 5432, "NAME": "app",    # no USER, no PASSWORD
            "CONN_MAX_AGE": 60,
            "OPTIONS": {
                "vault_role": "app",        # else VAULT_DB_ROLE, else VAULT_DB_STATIC_ROLE
                "static": False,            # True: a static role (rotated password)
                "vault_mount": "database",  # else VAULT_DB_MOUNT
                "assume_role": "app_rw",    # optional: SET ROLE on every new connection
                "startup_timeout": 30,      # seconds to wait for the first credential
            },
        }
    }

Vault's address and the login come from the environment as for the service (``VAULT_ADDR``,
``VAULT_AUTH_METHOD``, ...), read by :func:`vault_async.sync.start`. The backend is in
:mod:`vault_async.django.base`, the engines in :mod:`vault_async.django._runtimes`.
"""

from __future__ import annotations

from ._runtimes import registry

__all__ = ["shutdown"]


def shutdown() -> None:
    """Close this thread's and the parked connections, then stop every engine of this process
    (revoking the leases). Registered with atexit when the first engine starts; a later
    connection starts its engine again. Connections other threads hold in a request at that
    moment are reconnected on their next use."""
    registry.shutdown()
