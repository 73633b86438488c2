"""``manage.py migrate --settings=django_site.settings_migrate``: the migrations' login.

Run with the migrations' environment (the dev stack's ``migration_env()``, like
``alembic upgrade head``): the login comes from ``VAULT_DB_MIGRATION_ROLE`` (default
``VAULT_DB_ROLE``) and every session runs ``SET ROLE <DB_OWNER_ROLE>``, so the tables belong
to the owner role and never to a login Vault will drop.
"""

from __future__ import annotations

import os

from .settings import *  # noqa: F403
from .settings import DATABASES

DATABASES["default"] = {
    **DATABASES["default"],
    "CONN_MAX_AGE": 0,
    "OPTIONS": {
        "vault_role": os.environ.get("VAULT_DB_MIGRATION_ROLE") or os.environ["VAULT_DB_ROLE"],
        "vault_mount": os.environ.get("VAULT_DB_MOUNT", "database"),
        "assume_role": os.environ["DB_OWNER_ROLE"],
    },
}
