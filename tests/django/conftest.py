"""The example Django site on the session's dev stack: migrated as the owner role, then set up
in this process with the service's environment (``DJANGO_SETTINGS_MODULE`` and
``django.setup()`` only from here: the backend's app starts the lease engine in ``ready()``,
which needs the stack, so Django cannot be configured when pytest starts)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from vault_async.devstack import DevStack

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "django_site"
ROLE = "djload"  # at most 8 characters: Vault truncates it in the login name
"""The site's dynamic role: 5 s leases, 15 s max TTL."""


def migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``manage.py migrate`` with the migrations' settings, as the README runs it."""
    return subprocess.run(
        [sys.executable, "manage.py", "migrate", "--settings=django_site.settings_migrate"],
        cwd=EXAMPLE, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120, check=False,
    )


def admin(stack: DevStack) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=stack.pg_host, port=stack.pg_port, dbname=stack.database,
        user=stack.pg_superuser, password=stack.pg_superuser_password, autocommit=True,
    )


@pytest.fixture(scope="session")
def django_site(migrated: DevStack) -> Iterator[DevStack]:
    """The example site migrated and set up (``django.setup()``), 100 notes in its table."""
    migrated.create_dynamic_role(ROLE, "5s", "15s")
    done = migrate(migrated.migration_env())
    assert done.returncode == 0, done.stderr[-2000:]
    service = migrated.env() | {
        "VAULT_DB_ROLE": ROLE, "DJANGO_SETTINGS_MODULE": "django_site.settings"
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in service.items():
            patch.setenv(name, value)
        patch.syspath_prepend(str(EXAMPLE))
        import django

        django.setup()
        from notes.models import Note  # type: ignore[import-not-found]

        missing = 100 - Note.objects.count()
        Note.objects.bulk_create(Note(title=f"note {n}") for n in range(max(0, missing)))
        yield migrated


@pytest.fixture(scope="module", autouse=True)
def _engines_stop_with_the_module() -> Iterator[None]:
    """The engines a module started stop (and revoke) when it ends: none keeps rotating.

    The example site's ``LOGGING`` (applied by ``django.setup()``) gives the ``vault_async``
    logger a level and a handler of its own; both are taken off again, so the modules after
    this one see the library's records as they would without Django.
    """
    yield
    library = logging.getLogger("vault_async")
    library.setLevel(logging.NOTSET)
    for handler in list(library.handlers):
        library.removeHandler(handler)
    library.propagate = True
    if "vault_async.django" in sys.modules:
        from vault_async.django import shutdown

        shutdown()
