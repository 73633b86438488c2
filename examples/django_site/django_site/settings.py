"""A small Django site on Vault-issued PostgreSQL credentials (the service's settings).

Everything comes from the service's environment (``python -m vault_async.devstack`` prints
one): ``VAULT_ADDR`` and the login (``VAULT_AUTH_METHOD``, ...), ``VAULT_DB_ROLE``,
``DATABASE_URL`` for the host, port and database (its user and password, if any, are not used).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

_url = urlsplit(os.environ.get("DATABASE_URL", "postgresql://127.0.0.1:5432/app"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
ROOT_URLCONF = "django_site.urls"
WSGI_APPLICATION = "django_site.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "vault_async.django",  # starts the lease engine at boot, revokes at exit
    "notes",
]
MIDDLEWARE: list[str] = []

DATABASES = {
    "default": {
        "ENGINE": "vault_async.django",
        "HOST": _url.hostname or "127.0.0.1",
        "PORT": _url.port or 5432,
        "NAME": _url.path.lstrip("/") or "app",
        "CONN_MAX_AGE": None,  # persistent: closed when its credential is rotated away
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "vault_role": os.environ.get("VAULT_DB_ROLE", "app"),
            "vault_mount": os.environ.get("VAULT_DB_MOUNT", "database"),
            "assume_role": os.environ.get("DB_ASSUME_ROLE") or None,
        },
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"vault_async": {"handlers": ["console"], "level": "WARNING"}},
}
