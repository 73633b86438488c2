"""The AWS Secrets Manager provider against moto's server on 127.0.0.1 (a real HTTP endpoint).

moto implements Secrets Manager's API and version stages; it does not check IAM policies
or signatures, so access denial is checked on the error table alone.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer

from vault_async.static import (
    MissingExtra,
    SecretAccessDenied,
    SecretChange,
    SecretConfigError,
    SecretNotFound,
    SecretUnavailable,
    aws_secrets_manager,
)
from vault_async.static import aws as aws_module

FIRST = "aws-first-value-never-shown"
SECOND = "aws-second-value-never-shown"
CREDS: dict[str, Any] = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's server on a free loopback port, stopped at the end of the module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
async def admin(endpoint: str) -> AsyncIterator[Any]:
    """A plain aiobotocore client that writes and rotates the secrets."""
    async with get_session().create_client("secretsmanager", endpoint_url=endpoint, **CREDS) as c:
        yield c


@contextmanager
def _unlogged() -> Iterator[None]:
    """The test's own writes: botocore logs their requests, which carry the value."""
    logging.disable(logging.DEBUG)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _name() -> str:
    return f"static/{uuid.uuid4().hex[:8]}"


async def test_a_secret_rotated_mid_run_fires_a_change_and_stages_stay_readable(
    endpoint: str, admin: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    name = _name()
    with _unlogged():
        created = await admin.create_secret(Name=name, SecretString=FIRST)
    changes: list[SecretChange] = []
    seen: list[str] = []
    async with aws_secrets_manager(endpoint_url=endpoint, ttl=600, **CREDS) as secrets:
        secrets.subscribe(name, changes.append)
        first = await secrets.get(name)
        assert (first.text(), first.version, first.stages) == (
            FIRST,
            created["VersionId"],
            ("AWSCURRENT",),
        )
        with _unlogged():
            rotated = await admin.put_secret_value(SecretId=name, SecretString=SECOND)
        assert [c.current.version for c in await secrets.refresh()] == [rotated["VersionId"]]
        assert [(c.previous.version, c.current.version) for c in changes] == [
            (created["VersionId"], rotated["VersionId"])
        ]
        assert (await secrets.get(name)).text() == SECOND
        previous = await secrets.get(name, version="AWSPREVIOUS")
        assert (previous.text(), previous.version) == (FIRST, created["VersionId"])
        assert previous.stages == ("AWSPREVIOUS",)
        assert (await secrets.get(name, version=created["VersionId"])).text() == FIRST
        assert (await secrets.get(name, version="AWSCURRENT")).text() == SECOND
        assert await secrets.refresh() == []  # nothing new since
        seen += [repr(first), str(previous), repr(changes[0]), repr(secrets)]
    seen += [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    assert any(r.getMessage() == "static_secret.changed" for r in caplog.records)
    for text in seen:
        assert FIRST not in text
        assert SECOND not in text


async def test_a_binary_secret_reads_as_bytes(endpoint: str, admin: Any) -> None:
    name = _name()
    await admin.create_secret(Name=name, SecretBinary=b"\x00\xffkey")
    async with aws_secrets_manager(endpoint_url=endpoint, **CREDS) as secrets:
        assert (await secrets.get(name)).binary() == b"\x00\xffkey"


async def test_missing_deleted_and_unreachable_secrets_are_one_line_errors(
    endpoint: str, admin: Any
) -> None:
    name = _name()
    await admin.create_secret(Name=name, SecretString=FIRST)
    await admin.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    async with aws_secrets_manager(endpoint_url=endpoint, **CREDS) as secrets:
        with pytest.raises(SecretNotFound) as absent:
            await secrets.get("static/absent")
        with pytest.raises(SecretNotFound) as deleted:
            await secrets.get(name)
        with pytest.raises(SecretNotFound) as no_version:
            await secrets.get(name, version="AWSPENDING")
    assert str(absent.value) == (
        "aws-secretsmanager secret 'static/absent': not found (ResourceNotFoundException)"
    )
    assert str(deleted.value) == (
        f"aws-secretsmanager secret '{name}': request rejected (InvalidRequestException)"
    )
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    once = AioConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2)
    async with aws_secrets_manager(endpoint_url=closed, config=once, **CREDS) as secrets:
        with pytest.raises(SecretUnavailable) as down:
            await secrets.get(name)
    assert str(down.value) == (
        f"aws-secretsmanager secret '{name}': request failed (EndpointConnectionError)"
    )
    for error in (absent.value, deleted.value, no_version.value, down.value):
        assert FIRST not in str(error) + repr(error)


async def test_a_server_that_never_answers_is_unavailable_within_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        async with aws_secrets_manager(endpoint_url=endpoint, timeout=1, **CREDS) as secrets:
            with pytest.raises(SecretUnavailable) as info:
                await asyncio.wait_for(secrets.get("db"), 20)
    assert str(info.value) == "aws-secretsmanager secret 'db': no answer in 1 s"


async def test_without_a_region_the_error_says_how_to_set_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    keys = {k: v for k, v in CREDS.items() if k != "region_name"}
    async with aws_secrets_manager(**keys) as secrets:
        with pytest.raises(SecretConfigError) as info:
            await secrets.get("db")
    assert str(info.value) == (
        "aws-secretsmanager secret 'db': no AWS region: set region_name or AWS_DEFAULT_REGION"
    )


def test_access_errors_map_to_access_denied() -> None:
    for code in ("AccessDeniedException", "DecryptionFailure", "UnrecognizedClientException"):
        error = aws_module._translate_client_error("db", code)
        assert isinstance(error, SecretAccessDenied)
        assert str(error) == f"aws-secretsmanager secret 'db': access denied ({code})"


async def test_without_aiobotocore_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "aiobotocore.session", None)
    async with aws_secrets_manager(**CREDS) as secrets:
        with pytest.raises(MissingExtra) as info:
            await secrets.get("db")
    assert str(info.value) == (
        "aws-secretsmanager: needs aiobotocore: pip install 'vault-async[aws]'"
    )
    assert isinstance(info.value, ImportError)
