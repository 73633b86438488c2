"""The pool bindings (SQLAlchemy, asyncpg, psycopg) while the credential cannot be refreshed:
every request's rejected login is not a WARNING.

One WARNING per condition per interval, with the count of repeats logged at DEBUG since;
no password in any line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.util import greenlet_spawn

from vault_async._credential_source import credential_of
from vault_async._exceptions import VaultConnectionError
from vault_async._log_limit import LogLimiter
from vault_async.asyncpg import PoolBinding
from vault_async.psycopg import PsycopgPoolBinding
from vault_async.sqlalchemy import EngineBinding

PASSWORD = "pw-very-secret-123"


class FailingSource:
    """A credential Vault cannot replace (down), which the database rejects."""

    generation = 3
    current = SimpleNamespace(data={"username": "v-app", "password": PASSWORD})

    async def force_rotate(self, reason: str, *, generation: int | None = None) -> Any:
        raise VaultConnectionError("connection refused")

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        return lambda: None


class RejectingDialect:
    def connect(self, *args: Any, **kwargs: Any) -> Any:
        raise asyncpg.InvalidPasswordError("password authentication failed for user")


async def test_rejected_logins_warn_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = create_async_engine("postgresql+asyncpg://127.0.0.1:1/app")
    binding = EngineBinding(engine, FailingSource())
    now = [100.0]
    binding.log_limit = LogLimiter(interval=10.0, clock=lambda: now[0])

    def connect() -> None:
        record = SimpleNamespace(info={}, record_info={})  # a ConnectionPoolEntry's parts
        with pytest.raises(asyncpg.InvalidPasswordError):
            binding._on_do_connect(RejectingDialect(), record, (), {})  # type: ignore[arg-type]

    caplog.set_level(logging.DEBUG, logger="vault_async.sqlalchemy")
    for _ in range(50):  # 50 requests within one second
        await greenlet_spawn(connect)
        now[0] += 0.02
    now[0] += 10.0
    await greenlet_spawn(connect)
    await engine.dispose()

    def records(name: str, level: int) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == name and r.levelno == level]

    for name in ("pool.login_rejected", "pool.refresh_failed"):
        warnings = records(name, logging.WARNING)
        assert len(warnings) == 2, name
        assert len(records(name, logging.DEBUG)) == 49, name
        assert getattr(warnings[0], "suppressed", None) == 0
        assert getattr(warnings[1], "suppressed", None) == 49
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
        assert PASSWORD not in str(record.__dict__)


def test_distinct_conditions_are_limited_separately() -> None:
    now = [0.0]
    limit = LogLimiter(interval=10.0, clock=lambda: now[0])
    assert limit.check("a") == (logging.WARNING, 0)
    assert limit.check("b") == (logging.WARNING, 0)
    assert limit.check("a") == (logging.DEBUG, 1)
    now[0] = 10.0
    assert limit.check("a") == (logging.WARNING, 1)
    with pytest.raises(ValueError, match="interval"):
        LogLimiter(interval=-1.0)


async def test_asyncpg_and_psycopg_bindings_limit_the_same_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def reject(*args: Any, **kwargs: Any) -> Any:
        raise asyncpg.InvalidPasswordError("password authentication failed for user")

    now = [100.0]
    pool = PoolBinding(FailingSource(), connect=reject)
    pool.log_limit = LogLimiter(interval=10.0, clock=lambda: now[0])
    psyco = PsycopgPoolBinding(FailingSource())
    psyco.log_limit = LogLimiter(interval=10.0, clock=lambda: now[0])
    credential = credential_of(FailingSource())
    assert credential is not None
    caplog.set_level(logging.DEBUG, logger="vault_async")
    for _ in range(20):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await pool._connect()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await psyco._refresh_after(asyncpg.InvalidPasswordError("rejected"), credential)
    for name in ("pool.login_rejected", "pool.refresh_failed"):
        records = [r for r in caplog.records if r.getMessage() == name]
        assert len(records) == 40, name
        assert sum(r.levelno == logging.WARNING for r in records) == 2, name  # one per binding
    for record in caplog.records:
        assert PASSWORD not in str(record.__dict__)
