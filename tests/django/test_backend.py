"""The Django backend against the real dev stack, on the service's 1 h role (``app``): login,
SET ROLE, a refused login, a statement's error, rotation with parked and busy connections."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from django.db import ProgrammingError, connections

from tests.django.conftest import admin
from vault_async.devstack import DevStack
from vault_async.django.base import DatabaseWrapper

pytestmark = pytest.mark.integration


@pytest.fixture
def wrappers(django_site: DevStack) -> Iterator[Callable[..., DatabaseWrapper]]:
    """Make backend connections on role ``app`` with the given OPTIONS; closed at the end."""
    made: list[DatabaseWrapper] = []

    def make(**options: object) -> DatabaseWrapper:
        settings = {
            **connections.settings["default"], "CONN_MAX_AGE": None,
            "OPTIONS": {"vault_role": django_site.dynamic_role, **options},
        }
        wrapper = DatabaseWrapper(settings, alias=f"probe{len(made)}")
        made.append(wrapper)
        return wrapper

    yield make
    for wrapper in made:
        wrapper.close()


def one(wrapper: DatabaseWrapper, sql: str) -> tuple[object, ...]:
    with wrapper.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    assert row is not None
    return tuple(row)


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def past_min_force_interval() -> None:
    """Rotations closer than ``LeaseConfig.min_force_interval`` (1 s) to the last one share
    it: let the engine's first credential age past that."""
    time.sleep(1.2)


def sessions(stack: DevStack, pid: object) -> int:
    with admin(stack) as conn:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        row = conn.execute(sql, (pid,)).fetchone()
    assert row is not None
    return int(str(row[0]))


def role_exists(stack: DevStack, name: str) -> bool:
    with admin(stack) as conn:
        sql = "SELECT 1 FROM pg_roles WHERE rolname = %s"
        return conn.execute(sql, (name,)).fetchone() is not None


def test_a_connection_logs_in_with_the_current_credential_and_sets_the_role(
    wrappers: Callable[..., DatabaseWrapper],
) -> None:
    wrapper = wrappers(assume_role="app_rw")
    session_user, current_user = one(wrapper, "SELECT session_user, current_user")
    assert session_user == wrapper.vault_entry.credentials.current().username
    assert str(session_user).startswith("v-")
    assert current_user == "app_rw"


def test_a_static_role_logs_in_as_its_fixed_user(
    wrappers: Callable[..., DatabaseWrapper], django_site: DevStack
) -> None:
    wrapper = wrappers(vault_role=django_site.static_role, static=True)
    assert one(wrapper, "SELECT session_user") == ("app_static",)


def test_a_refused_login_rotates_once_and_is_retried(
    wrappers: Callable[..., DatabaseWrapper], django_site: DevStack
) -> None:
    first = wrappers()
    one(first, "SELECT 1")
    entry = first.vault_entry
    before = entry.credentials.current()
    retries = entry.stats.login_retries
    with admin(django_site) as conn:  # the password Vault issued no longer works
        conn.execute(f'ALTER ROLE "{before.username}" PASSWORD \'changed-elsewhere\'')
    past_min_force_interval()
    second = wrappers()
    (session_user,) = one(second, "SELECT session_user")
    after = entry.credentials.current()
    assert entry.stats.login_retries == retries + 1
    assert after.generation > before.generation
    assert session_user == after.username != before.username


def test_a_statement_error_keeps_the_connection_and_the_credential(
    wrappers: Callable[..., DatabaseWrapper],
) -> None:
    wrapper = wrappers()
    (pid,) = one(wrapper, "SELECT pg_backend_pid()")
    entry = wrapper.vault_entry
    generation, retries = entry.credentials.current().generation, entry.stats.login_retries
    with pytest.raises(ProgrammingError):
        one(wrapper, "SELECT * FROM no_such_table")
    wrapper.close_if_unusable_or_obsolete()  # what Django runs at the request's end
    assert one(wrapper, "SELECT pg_backend_pid()") == (pid,)
    assert entry.credentials.current().generation == generation
    assert entry.stats.login_retries == retries


def test_a_rotation_closes_parked_connections_at_once_and_busy_ones_after_their_request(
    wrappers: Callable[..., DatabaseWrapper], django_site: DevStack
) -> None:
    parked, busy = wrappers(), wrappers()
    (parked_pid, old_user) = one(parked, "SELECT pg_backend_pid(), session_user")
    (busy_pid,) = one(busy, "SELECT pg_backend_pid()")
    entry = parked.vault_entry
    parked.vault_park()  # between two requests
    closed_before = entry.parking.closed_parked
    past_min_force_interval()
    new = entry.credentials.force_rotate("test")
    wait_until(lambda: sessions(django_site, parked_pid) == 0)
    assert entry.parking.closed_parked == closed_before + 1
    # The busy connection finishes its request on the old login, which is not revoked yet.
    assert one(busy, "SELECT pg_backend_pid(), session_user") == (busy_pid, old_user)
    assert role_exists(django_site, str(old_user))
    stale_before = entry.stats.stale_closed
    busy.vault_park()  # its request ends: closed, not parked
    assert busy.connection is None
    assert entry.stats.stale_closed == stale_before + 1
    wait_until(lambda: not role_exists(django_site, str(old_user)))
    # The parked one reconnects on its next use, with the new login.
    assert one(parked, "SELECT session_user") == (new.username,)
