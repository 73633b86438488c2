"""The GCP Secret Manager provider: Google's async client over real gRPC to a fake service.

The fake (tests/support/gcp_secret_manager.py) runs on 127.0.0.1 and answers
AccessSecretVersion with the SDK's own messages. Not covered here: Google's authentication
(credentials, token refresh), IAM, and the real service's behaviour.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import sys
from collections.abc import AsyncIterator

import pytest
from google.cloud.secretmanager import SecretManagerServiceAsyncClient

from tests.support.gcp_secret_manager import FakeSecretManager, insecure_client, serving
from vault_async.static import (
    MissingExtra,
    SecretAccessDenied,
    SecretChange,
    SecretConfigError,
    SecretNotFound,
    SecretUnavailable,
    StaticSecretError,
    gcp_secret_manager,
)
from vault_async.static.gcp import resource_name

FIRST = b"gcp-first-value-never-shown"
SECOND = b"gcp-second-value-never-shown"
PROJECT = "demo-proj"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeSecretManager, SecretManagerServiceAsyncClient]]:
    service = FakeSecretManager()
    async with serving(service) as address:
        client = insecure_client(address)
        try:
            yield service, client
        finally:
            await client.transport.close()


async def test_a_version_added_mid_run_fires_a_change_and_both_stay_readable(
    fake: tuple[FakeSecretManager, SecretManagerServiceAsyncClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    service, client = fake
    service.add_version(PROJECT, "db", FIRST)
    service.add_version("other-proj", "api", b"{}")
    arrived = asyncio.Event()
    changes: list[SecretChange] = []

    def on_change(change: SecretChange) -> None:
        changes.append(change)
        arrived.set()

    async with gcp_secret_manager(
        project=PROJECT, client=client, ttl=600, refresh_interval=0.05
    ) as secrets:
        secrets.subscribe("db", on_change)
        first = await secrets.get("db")
        assert (first.binary(), first.version) == (FIRST, "1")
        service.add_version(PROJECT, "db", SECOND)
        await asyncio.wait_for(arrived.wait(), 10)
        assert (await secrets.get("db")).binary() == SECOND
        assert (await secrets.get("db", version=1)).binary() == FIRST
        assert (await secrets.get("projects/other-proj/secrets/api")).mapping() == {}
        seen = [repr(first), repr(changes[0]), repr(secrets)]
    assert [(c.previous.version, c.current.version) for c in changes] == [("1", "2")]
    assert service.requests[0] == "projects/demo-proj/secrets/db/versions/latest"
    assert "projects/demo-proj/secrets/db/versions/1" in service.requests
    assert "projects/other-proj/secrets/api/versions/latest" in service.requests
    seen += [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    assert any(r.getMessage() == "static_secret.changed" for r in caplog.records)
    forms = [FIRST.decode(), SECOND.decode()]
    forms += [base64.b64encode(v).decode() for v in (FIRST, SECOND)]  # as JSON shows bytes
    for text in seen:
        for form in forms:
            assert form not in text


async def test_service_errors_map_to_one_line_errors_naming_the_secret(
    fake: tuple[FakeSecretManager, SecretManagerServiceAsyncClient],
) -> None:
    service, client = fake
    for secret in ("denied", "disabled", "corrupt"):
        service.add_version(PROJECT, secret, FIRST)
    service.denied.add(f"projects/{PROJECT}/secrets/denied")
    service.disabled.add(f"projects/{PROJECT}/secrets/disabled/versions/1")
    service.corrupt.add(f"projects/{PROJECT}/secrets/corrupt/versions/1")
    expected: dict[str, tuple[type[StaticSecretError], str]] = {
        "absent": (SecretNotFound, "not found (NotFound)"),
        "denied": (SecretAccessDenied, "access denied (PermissionDenied)"),
        "disabled": (SecretNotFound, "version disabled or destroyed (FailedPrecondition)"),
        "corrupt": (SecretUnavailable, "the payload failed its CRC32C check"),
    }
    async with gcp_secret_manager(project=PROJECT, client=client) as secrets:
        for secret, (kind, message) in expected.items():
            with pytest.raises(kind) as info:
                await secrets.get(secret)
            assert str(info.value) == f"gcp-secretmanager secret {secret!r}: {message}"
            assert FIRST.decode() not in repr(info.value)


async def test_an_unreachable_service_is_unavailable_within_the_timeout() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    client = insecure_client(address)
    try:
        async with gcp_secret_manager(project=PROJECT, client=client, timeout=1.0) as secrets:
            with pytest.raises(SecretUnavailable) as info:
                await asyncio.wait_for(secrets.get("db"), 20)
    finally:
        await client.transport.close()
    assert str(info.value) == "gcp-secretmanager secret 'db': no answer in 1 s"


def test_names_map_to_resources_and_bad_ones_are_refused_before_sending() -> None:
    assert resource_name("p", "db", None) == "projects/p/secrets/db/versions/latest"
    assert resource_name("p", "db", "7") == "projects/p/secrets/db/versions/7"
    assert resource_name(None, "projects/q/secrets/db", None) == (
        "projects/q/secrets/db/versions/latest"
    )
    cases = {
        (None, "db", None): "no project: set project, or name it projects/P/secrets/N",
        ("p", "a/b", None): "a secret id has 1-255 letters, digits, '_' or '-'",
        ("p", "db", "1/2"): "version '1/2' is not a number or alias",
        ("Bad Proj", "db", None): "project 'Bad Proj' is not a project id",
    }
    for (project, name, version), message in cases.items():
        with pytest.raises(SecretConfigError) as info:
            resource_name(project, name, version)
        assert str(info.value) == f"gcp-secretmanager secret {name!r}: {message}"


async def test_without_the_sdk_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.secretmanager", None)
    async with gcp_secret_manager(project=PROJECT) as secrets:
        with pytest.raises(MissingExtra) as info:
            await secrets.get("db")
    assert str(info.value) == (
        "gcp-secretmanager: needs google-cloud-secret-manager: pip install 'vault-async[gcp]'"
    )
