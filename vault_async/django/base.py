"""``ENGINE: "vault_async.django"``: Django's PostgreSQL backend (psycopg 3) on Vault credentials.

How a connection follows the credential (the guarantees of the other bindings):

* a new connection logs in with the engine's current username and password (never written
  into ``settings.DATABASES``), then runs ``SET ROLE`` (quoted) when ``OPTIONS['assume_role']``
  is given;
* a login the server refuses (a wrong or expired password, a dropped role) forces one
  rotation and is retried once;
* a persistent connection (``CONN_MAX_AGE``) made with a rotated-away credential is closed:
  parked between requests, at once by the rotation (its thread reconnects on next use); in a
  request, by its own thread at the request's end (Django's ``close_if_unusable_or_obsolete``,
  which Celery's Django support also runs around each task, and the ``request_finished``
  signal);
* each connection counts +1 for its generation while open and -1 once it is closed (or
  collected with its thread), so the engine revokes a rotated-away lease once its
  connections are gone;
* a statement's own error (a missing table, a refused privilege) is left to Django, which
  keeps the connection.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.signals import request_finished
from django.db import connections
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper

from .._sqlerrors import is_login_rejected
from .._sync_credentials import SyncCredential, SyncCredentialSource
from ._options import VAULT_OPTION_KEYS, VaultDbOptions, read_options
from ._parking import Held
from ._runtimes import Entry, registry

__all__ = ["DatabaseWrapper"]

logger = logging.getLogger("vault_async.django")


class DatabaseWrapper(PostgresDatabaseWrapper):
    """A PostgreSQL connection whose login comes from the Vault lease engine."""

    vault_options: VaultDbOptions
    vault_held: Held | None
    """The open connection's login (None while closed)."""
    vault_held_by: Entry | None
    """The engine the open connection's login came from."""

    def __init__(self, settings_dict: dict[str, Any], alias: str = "default") -> None:
        super().__init__(settings_dict, alias)
        self.vault_options = read_options(alias, settings_dict)
        self.vault_held = None
        self.vault_held_by = None

    @property
    def vault_entry(self) -> Entry:
        """This alias's engine, started if it is not running yet."""
        return registry.get(self.vault_options)

    # connecting ----------------------------------------------------------------------------

    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        for key in VAULT_OPTION_KEYS:
            params.pop(key, None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        entry = self.vault_entry
        credential = _counted_current(entry.credentials)
        try:
            connection = self._connect_as(conn_params, credential, entry.credentials)
        except Exception as error:
            if not is_login_rejected(error):
                raise
            entry.stats.login_retries += 1
            logger.warning(
                "django.login_rejected",
                extra={"alias": self.alias, "generation": credential.generation},
            )
            try:
                entry.credentials.force_rotate(
                    "database rejected the login", generation=credential.generation
                )
            except Exception as rotate_error:
                logger.warning(
                    "django.refresh_failed", extra={"error_class": type(rotate_error).__name__}
                )
                raise error from None  # the database's answer is the one to report
            credential = _counted_current(entry.credentials)
            connection = self._connect_as(conn_params, credential, entry.credentials)
        entry.stats.connects += 1
        self.vault_held = Held(connection, credential.generation, entry.credentials.track_use)
        self.vault_held_by = entry
        return connection

    def _connect_as(
        self,
        conn_params: dict[str, Any],
        credential: SyncCredential,
        credentials: SyncCredentialSource,
    ) -> Any:
        """Connect with ``credential`` (counted already); a failure gives its count back."""
        login = {"user": credential.username, "password": credential.password}
        try:
            return super().get_new_connection({**conn_params, **login})
        except BaseException:
            credentials.track_use(credential.generation, -1)
            raise

    def init_connection_state(self) -> None:
        try:
            super().init_connection_state()
        except BaseException:
            # A new connection whose SET ROLE (or time zone) failed must not be used later
            # without it: closed here, the next use connects afresh.
            try:
                self.close()
            except Exception as error:
                logger.warning(
                    "django.close_failed", extra={"error_class": type(error).__name__}
                )
            raise

    def _configure_role(self, connection: Any) -> bool:
        sql = self.vault_options.role_sql
        if sql is None:
            return False
        with connection.cursor() as cursor:
            cursor.execute(sql)
        return True

    def _close(self) -> None:
        held, entry = self.vault_held, self.vault_held_by
        self.vault_held = self.vault_held_by = None
        if entry is not None and entry.inherited:
            # Forked with the connection: the socket is the parent's, closing it here would
            # end the parent's session. Django drops the reference; psycopg does not close a
            # connection collected in another process than the one that opened it.
            return
        if held is not None and entry is not None:
            entry.parking.unpark(held)  # first: a rotation must not close this socket too
        try:
            super()._close()  # type: ignore[misc]  # not in the stubs
        finally:
            if held is not None:
                held.release()

    # following the credential ----------------------------------------------------------------

    def _take_back(self, *, obsolete_too: bool) -> None:
        """Unpark the connection before use: close it if a rotation closed it meanwhile, or
        (at a request's start or end, ``obsolete_too``) if its credential was rotated away."""
        held, entry = self.vault_held, self.vault_held_by
        if held is None or entry is None or self.connection is None:
            return
        if held.parked:
            entry.parking.unpark(held)
        if held.closed or (
            (obsolete_too or entry.stopped)
            and not self.in_atomic_block
            and entry.obsolete(held.generation)
        ):
            if not held.closed:
                entry.count_stale_closed()
            self.close()

    def ensure_connection(self) -> None:
        # Within a request only a connection a rotation closed, or whose engine stopped, is
        # replaced: the others keep their session (SET commands, temporary tables) until the
        # request ends.
        self._take_back(obsolete_too=False)
        super().ensure_connection()

    def close_if_unusable_or_obsolete(self) -> None:
        self._take_back(obsolete_too=True)
        super().close_if_unusable_or_obsolete()

    def vault_park(self) -> None:
        """Between requests: park the connection (a rotation may close it from another
        thread), or close it now if its credential was rotated away."""
        held, entry = self.vault_held, self.vault_held_by
        if held is None or entry is None or self.connection is None or self.in_atomic_block:
            return
        if entry.stopped or not entry.parking.park(held, entry.credentials.current().generation):
            entry.count_stale_closed()
            self.close()


def _counted_current(credentials: SyncCredentialSource) -> SyncCredential:
    """The credential in force, counted +1 before use: counted first, then checked still in
    force, so a rotation in between cannot revoke it before the count arrives."""
    while True:
        credential = credentials.current()
        credentials.track_use(credential.generation, 1)
        if credentials.current().generation == credential.generation:
            return credential
        credentials.track_use(credential.generation, -1)


def park_connections(**_kwargs: object) -> None:
    """``request_finished``: park this thread's open connections on this backend."""
    for wrapper in connections.all(initialized_only=True):
        if isinstance(wrapper, DatabaseWrapper):
            wrapper.vault_park()


def close_connections(**_kwargs: object) -> None:
    """Close this thread's open connections on this backend (before the engines stop)."""
    for wrapper in connections.all(initialized_only=True):
        if isinstance(wrapper, DatabaseWrapper):
            wrapper.close()


request_finished.connect(park_connections, dispatch_uid="vault_async.django.park")
registry.before_shutdown = close_connections
