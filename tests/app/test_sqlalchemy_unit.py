"""The engine binding's pure parts: role quoting, login-rejection detection, static source."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import OperationalError

from vault_async.sqlalchemy import (
    CredentialSource,
    StaticCredentials,
    is_login_rejected,
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


async def test_static_credentials_never_change_and_hide_the_password() -> None:
    source = StaticCredentials("svc", "pw-123-secret")
    assert isinstance(source, CredentialSource)
    assert source.current.data == {"username": "svc", "password": "pw-123-secret"}
    assert await source.force_rotate("test") is source.current
    assert source.generation == 0
    assert "pw-123-secret" not in repr(source)
    assert "pw-123-secret" not in repr(source.current)
    source.subscribe(lambda event: None)()
