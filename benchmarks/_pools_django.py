"""The Django row of ``benchmarks/pools.py``: the ``vault_async.django`` backend, one request
per query on WORKERS threads.

Both kinds run the same backend with the example site's settings (``CONN_MAX_AGE=None``,
``CONN_HEALTH_CHECKS=True``): one persistent connection per thread and alias, which Django
checks at a request's first use, and which the backend parks between requests. Each alias's
engine is the registry's ``starter`` hook giving the backend a ready credential source instead
of starting a runtime from the environment: the fixed alias gets ``StaticSyncCredentials``
(the plain user), the rotating one the lease engine's credential through ``SyncCredentials``.
A query is a request: ``request_started`` (Django closes an unusable or rotated-away
connection), ``connection.cursor()`` and one ``SELECT``, ``request_finished`` (the backend
parks the connection).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext

from sqlalchemy.engine import make_url

from benchmarks._pools_bindings import SELECT_PYFORMAT, WORKERS, sync_credentials
from tests.support.pools import Query, in_threads
from vault_async._credential_source import CredentialSource
from vault_async.lifecycle import ManagedSecret
from vault_async.sync import SyncCredentialSource

ALIASES = ("fixed", "rotating")
_sources: dict[str, SyncCredentialSource] = {}
"""The credential source of each alias (its ``vault_role`` names the alias)."""


class BenchRequest:
    """The sender of the request signals."""


def _setup(dsn: str) -> None:
    """Configure Django once per process: one alias per kind, on this backend."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    url = make_url(dsn)

    def alias(name: str) -> dict[str, object]:
        return {
            "ENGINE": "vault_async.django",
            "HOST": url.host, "PORT": url.port, "NAME": url.database,
            "CONN_MAX_AGE": None, "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {"vault_role": name},
        }

    settings.configure(
        DATABASES={"default": {"ENGINE": "django.db.backends.dummy"}}
        | {name: alias(name) for name in ALIASES},
        INSTALLED_APPS=[], USE_TZ=True,
    )
    django.setup()
    from vault_async.django._options import VaultDbOptions
    from vault_async.django._runtimes import registry

    def starter(options: VaultDbOptions) -> AbstractContextManager[SyncCredentialSource]:
        return nullcontext(_sources[options.role])

    registry.starter = starter


@asynccontextmanager
async def django_query(dsn: str, source: CredentialSource) -> AsyncIterator[Query]:
    _setup(dsn)
    from django.core.signals import request_finished, request_started
    from django.db import connections

    from vault_async.django._runtimes import registry

    name = "rotating" if isinstance(source, ManagedSecret) else "fixed"
    _sources[name] = sync_credentials(source)

    def query(user_id: int) -> object:
        request_started.send(sender=BenchRequest)
        try:
            with connections[name].cursor() as cursor:
                cursor.execute(SELECT_PYFORMAT, (user_id,))
                return cursor.fetchone()
        finally:
            request_finished.send(sender=BenchRequest)

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as threads:
        try:
            yield in_threads(query, threads)
        finally:
            # Every connection is parked between requests: stopping the engines closes them.
            registry.shutdown()
            _sources.pop(name, None)
