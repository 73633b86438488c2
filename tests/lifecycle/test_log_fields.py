"""Every lease.* log record says which secret, how much lease is left, which generation,
and on a failure the error's class and Vault's words; never a password or a token."""

from __future__ import annotations

import logging

import pytest

from vault_async._exceptions import InvalidRequest
from vault_async.lifecycle import Grant, LeaseManager, SecretSource, VirtualClock
from vault_async.lifecycle._logfields import error_fields

from .conftest import FakeClient, FakeVault

LOGGER = "vault_async.lifecycle"
PASSWORD_PREFIX = "pw-"


def lease_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("lease.")]


def by_event(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in lease_records(caplog) if r.getMessage() == event]


def assert_no_secret(caplog: pytest.LogCaptureFixture, secrets: list[str]) -> None:
    shown = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert secrets
    leaked = [s for s in secrets if s in shown]
    assert not leaked


async def test_renewed_rotated_and_revoked_records_carry_the_fields(
    manager: LeaseManager, fake_vault: FakeVault, clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    handle = manager.manage(fake_vault.source())
    await clock.advance(fake_vault.max_ttl + 30)  # renewals up to the max TTL, then a rotation
    assert handle.renewals >= 2
    assert handle.rotations >= 1
    for event in ("lease.acquired", "lease.renewed", "lease.rotated", "lease.revoked"):
        assert by_event(caplog, event), event
    for record in lease_records(caplog):
        assert record.__dict__["secret"] == "database/creds/app", record.getMessage()
        assert isinstance(record.__dict__["generation"], int), record.getMessage()
        ttl = record.__dict__["ttl"]
        assert isinstance(ttl, int), record.getMessage()
        assert 0 <= ttl <= fake_vault.max_ttl
    [acquired] = by_event(caplog, "lease.acquired")
    assert acquired.__dict__["ttl"] == round(fake_vault.ttl)
    assert acquired.__dict__["generation"] == 1
    rotated = by_event(caplog, "lease.rotated")[0]
    assert rotated.__dict__["generation"] == 2
    assert rotated.__dict__["ttl"] == round(fake_vault.ttl)
    revoked = by_event(caplog, "lease.revoked")[0]
    assert revoked.__dict__["generation"] == 1  # the replaced lease's, not the one in force
    assert_no_secret(caplog, [lease.password for lease in fake_vault.leases.values()])


async def test_a_failed_renewal_names_the_error_and_the_lease_left(
    manager: LeaseManager, fake_vault: FakeVault, clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    handle = manager.manage(fake_vault.source())
    await clock.advance(1)
    assert handle.ready
    fake_vault.down = True
    await clock.advance(fake_vault.ttl * 0.9)
    failed = by_event(caplog, "lease.failed")
    assert failed
    first = failed[0]
    assert first.__dict__["secret"] == "database/creds/app"
    assert first.__dict__["generation"] == 1
    assert first.__dict__["error_class"] == "VaultConnectionError"
    assert first.__dict__["error"] == "connection refused (fake)"
    assert 0 < first.__dict__["ttl"] < fake_vault.ttl
    assert_no_secret(caplog, [lease.password for lease in fake_vault.leases.values()])


async def test_a_refused_acquisition_quotes_vault(
    manager: LeaseManager, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def acquire() -> Grant:
        raise InvalidRequest(
            "Bad Request", status=400, method="GET", path="database/creds/nosuchrole",
            errors=["unknown role: nosuchrole"],
        )

    manager.manage(SecretSource("database_dynamic", "database/creds/nosuchrole", acquire))
    await clock.advance(1)
    [failed, *_] = by_event(caplog, "lease.failed")
    assert failed.__dict__["secret"] == "database/creds/nosuchrole"
    assert failed.__dict__["error_class"] == "InvalidRequest"
    assert failed.__dict__["error"] == "unknown role: nosuchrole"
    assert failed.__dict__["ttl"] is None  # no lease yet
    assert failed.__dict__["generation"] == 0


async def test_token_records_never_show_the_token(
    clock: VirtualClock, fake_vault: FakeVault, manager: LeaseManager,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    client = FakeClient(fake_vault)
    token = manager.manage_token(client, object())  # type: ignore[arg-type]
    creds = manager.manage_database_credentials(client, role="app")  # type: ignore[arg-type]
    await clock.advance(fake_vault.token_max_ttl + 30)
    assert creds.ready
    records = [r for r in lease_records(caplog) if r.__dict__.get("secret") == token.name]
    assert {r.getMessage() for r in records} >= {"lease.acquired", "lease.rotated"}
    for record in records:
        assert isinstance(record.__dict__["ttl"], int)
        assert isinstance(record.__dict__["generation"], int)
    tokens = [f"s.token-{accessor}" for accessor in fake_vault.tokens]
    assert_no_secret(caplog, tokens + [lease.password for lease in fake_vault.leases.values()])


@pytest.mark.parametrize(
    ("errors", "shown"),
    [
        (["1 error occurred:\n\t* permission denied\n\n"], "permission denied"),
        (["2 errors occurred:\n\t* a\n\t* b\n\n"], "a; b"),
        (["unknown role: x", "line\nbreak"], "unknown role: x; line; break"),
    ],
)
def test_vault_errors_are_shown_on_one_line(errors: list[str], shown: str) -> None:
    assert error_fields(InvalidRequest("Bad Request", errors=errors))["error"] == shown


def test_other_exceptions_show_their_class_only() -> None:
    assert error_fields(RuntimeError("password=hunter2")) == {"error_class": "RuntimeError"}
