"""Lease log records against a real OpenBao: the fields are there, Vault's words are quoted,
and no password or token issued by Vault appears in any record."""

from __future__ import annotations

import logging
import uuid

import anyio
import pytest

from vault_async import AppRoleAuth, AsyncVaultClient
from vault_async.devstack import DevStack
from vault_async.lifecycle import LeaseEvent, LeaseManager

pytestmark = [pytest.mark.integration]

LOGGER = "vault_async.lifecycle"


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == event]


async def test_lease_records_carry_the_fields_and_no_secret(
    devstack: DevStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    role = f"logs-{uuid.uuid4().hex[:8]}"
    devstack.create_dynamic_role(role, "4s", "8s")
    passwords: list[str] = []
    tokens: list[str] = []
    auth = AppRoleAuth(devstack.role_id, devstack.secret_id, mount_point=devstack.approle_mount)
    async with (
        AsyncVaultClient(addr=devstack.vault_addr, token="", timeout=5.0) as client,
        LeaseManager(client) as manager,
    ):
        token = manager.manage_token(client, auth)
        creds = manager.manage_database_credentials(role=role, mount=devstack.db_mount)
        missing = manager.manage_database_credentials(role="nosuchrole", mount=devstack.db_mount)

        rotated, refused = anyio.Event(), anyio.Event()

        def remember(event: LeaseEvent | None = None) -> None:
            if creds.current is not None:
                passwords.append(creds.current.data["password"])
            if client.token:
                tokens.append(client.token)
            if event is not None and event.kind == "rotated":
                rotated.set()

        creds.subscribe(remember)
        missing.subscribe(lambda event: refused.set() if event.kind == "failed" else None)
        await creds.wait_ready(timeout=15)
        remember()
        with anyio.fail_after(30):
            await rotated.wait()
            await refused.wait()
        assert token.ready
        assert missing.current is None
    assert passwords
    assert tokens

    for event in ("lease.acquired", "lease.renewed", "lease.rotated", "lease.revoked"):
        found = [r for r in records(caplog, event) if r.__dict__["secret"] == creds.name]
        assert found, event
        for record in found:
            assert isinstance(record.__dict__["generation"], int)
            assert isinstance(record.__dict__["ttl"], int)
            assert 0 <= record.__dict__["ttl"] <= 8
    [rotated, *_] = [
        r for r in records(caplog, "lease.rotated") if r.__dict__["secret"] == creds.name
    ]
    assert rotated.__dict__["generation"] == 2

    [failed, *_] = records(caplog, "lease.failed")
    assert failed.__dict__["secret"] == missing.name
    # The service policy does not cover the role: Vault's answer is quoted.
    assert failed.__dict__["error_class"] == "Forbidden"
    assert failed.__dict__["error"] == "permission denied"
    assert failed.__dict__["status"] == 403
    assert failed.__dict__["ttl"] is None

    shown = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    secrets = {*passwords, *tokens, devstack.secret_id, devstack.root_token}
    assert not [s[:4] for s in secrets if s in shown]
