"""The engine binding's pure parts: role quoting, SQLSTATE classes, static source, the login
check's cache and the use counter."""

from __future__ import annotations

import asyncio

import asyncpg
import psycopg
import psycopg.errors
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.util import await_only, greenlet_spawn

from vault_async._login_check import LoginCheck
from vault_async._use_counter import UseCounter
from vault_async.fastapi import is_transient_database_error
from vault_async.sqlalchemy import (
    CredentialSource,
    StaticCredentials,
    UseTrackingSource,
    is_login_rejected,
    is_permission_denied,
    is_server_unavailable,
    quote_role,
)

DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("app_owner", '"app_owner"'),
        ("App Owner", '"App Owner"'),
        ('x"; DROP TABLE users; --', '"x""; DROP TABLE users; --"'),
        ("'; SELECT pg_sleep(10); --", "\"'; SELECT pg_sleep(10); --\""),
        ('"', '""""'),
        ("rôle", '"rôle"'),
    ],
)
def test_role_is_always_a_single_quoted_identifier(name: str, quoted: str) -> None:
    result = quote_role(name, DIALECT)
    assert result == quoted
    inner = result[1:-1]
    # Every quote inside is doubled, so the identifier cannot be closed early.
    assert inner.replace('""', "").count('"') == 0


@pytest.mark.parametrize("name", ["", "a" * 64, "é" * 32, "bad\x00name", "new\nline", "\x7f"])
def test_unusable_role_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="role name"):
        quote_role(name, DIALECT)


def test_login_rejection_is_found_through_wrappers() -> None:
    original = asyncpg.InvalidPasswordError("password authentication failed for user")
    wrapped = OperationalError("connect", {}, original)
    assert is_login_rejected(original)
    assert is_login_rejected(wrapped)
    gone = asyncpg.InvalidAuthorizationSpecificationError('role "v-x" does not exist')
    assert is_login_rejected(gone)
    assert not is_login_rejected(asyncpg.InsufficientPrivilegeError("permission denied"))
    assert not is_login_rejected(ConnectionRefusedError())


def test_psycopg_login_rejection_is_read_from_the_servers_fatal_line() -> None:
    # libpq gives a failed connection attempt no SQLSTATE: psycopg's error is text only.
    prefix = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
    bad_password = psycopg.OperationalError(
        prefix + 'FATAL:  password authentication failed for user "v-token-app-x"'
    )
    no_role = psycopg.OperationalError(prefix + 'FATAL:  role "v-token-app-x" does not exist')
    assert bad_password.sqlstate is None
    assert is_login_rejected(bad_password)
    assert is_login_rejected(OperationalError("connect", {}, bad_password))
    assert is_login_rejected(no_role)
    assert not is_login_rejected(psycopg.OperationalError(prefix + "Connection refused"))
    starting = psycopg.OperationalError(
        prefix + "FATAL:  the database system is starting up"
    )
    assert not is_login_rejected(starting)
    # SET ROLE to a missing role words it alike, but as a statement's error with a SQLSTATE.
    set_role = psycopg.errors.InvalidParameterValue('role "nobody" does not exist')
    assert not is_login_rejected(ProgrammingError("SET ROLE", {}, set_role))


async def test_static_credentials_never_change_and_hide_the_password() -> None:
    source = StaticCredentials("svc", "pw-123-secret")
    assert isinstance(source, CredentialSource)
    assert source.current.data == {"username": "svc", "password": "pw-123-secret"}
    assert await source.force_rotate("test") is source.current
    assert source.generation == 0
    assert "pw-123-secret" not in repr(source)
    assert "pw-123-secret" not in repr(source.current)
    source.subscribe(lambda event: None)()


def test_static_credentials_track_use_is_a_no_op() -> None:
    source = StaticCredentials("svc", "pw")
    assert isinstance(source, UseTrackingSource)
    source.track_use(0, 1)
    source.track_use(0, -1)


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (asyncpg.UndefinedTableError('relation "nope" does not exist'), "42P01"),
        (asyncpg.InsufficientPrivilegeError("permission denied for table t"), "42501"),
    ],
)
def test_permission_errors_are_neither_transient_nor_a_login_problem(
    error: Exception, state: str
) -> None:
    wrapped = ProgrammingError("SELECT 1", {}, error)
    assert is_permission_denied(wrapped)
    assert not is_login_rejected(wrapped)
    assert not is_server_unavailable(wrapped)
    assert not is_transient_database_error(wrapped)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_login_check_asks_once_per_interval_and_login() -> None:
    asked: list[str] = []
    answers = {"alive": True, "gone": False}

    def probe(username: str) -> bool:
        asked.append(username)
        return answers[username]

    clock = Clock()
    check = LoginCheck(probe, interval=5.0, clock=clock)
    assert await greenlet_spawn(check.exists, "alive") is True
    assert await greenlet_spawn(check.exists, "gone") is False
    clock.now = 4.9
    assert await greenlet_spawn(check.exists, "alive") is True
    assert await greenlet_spawn(check.exists, "gone") is False
    assert asked == ["alive", "gone"]
    clock.now = 5.0
    assert await greenlet_spawn(check.exists, "alive") is True
    assert asked == ["alive", "gone", "alive"]


async def test_concurrent_login_checks_share_one_probe() -> None:
    asked: list[str] = []

    def probe(username: str) -> bool:
        asked.append(username)
        await_only(asyncio.sleep(0.01))
        return False

    check = LoginCheck(probe, interval=60.0)
    answers = await asyncio.gather(*(greenlet_spawn(check.exists, "v-1") for _ in range(5)))
    assert answers == [False] * 5
    assert asked == ["v-1"]


async def test_failed_login_check_counts_as_present_and_is_not_kept() -> None:
    calls = 0

    def probe(username: str) -> bool:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError("down")

    check = LoginCheck(probe, interval=60.0)
    assert await greenlet_spawn(check.exists, "v-1") is True
    assert await greenlet_spawn(check.exists, "v-1") is True
    assert calls == 2


def test_use_counter_answers_every_checkout_once() -> None:
    calls: list[tuple[int, int]] = []
    counter = UseCounter(lambda generation, delta: calls.append((generation, delta)))
    a, b = object(), object()
    counter.back(a)  # never counted (a failed connect is "returned" too)
    counter.out(a, 1)
    counter.out(a, 2)  # refused and reconnected: the first checkout is over
    counter.out(b, 2)
    counter.back(a)
    counter.back(a)
    counter.release_all()
    assert calls == [(1, 1), (1, -1), (2, 1), (2, 1), (2, -1), (2, -1)]
