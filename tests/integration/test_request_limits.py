"""The running service (uvicorn, dev stack) refuses large bodies with 413 and echoes no input."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.service import ServiceProcess
from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration

DEFAULT_LIMIT = 65536


@pytest.fixture(scope="module")
def service(migrated: DevStack) -> Iterator[ServiceProcess]:
    """`python -m app` with the default limit (no MAX_REQUEST_BODY_BYTES set)."""
    with ServiceProcess(migrated.env()) as running:
        yield running


async def test_a_1_mb_body_is_413(service: ServiceProcess) -> None:
    body = json.dumps({"username": "u" * 1_000_000, "email": "a@b.c"}).encode()
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
        response = await http.post(
            "/users", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body larger than {DEFAULT_LIMIT} bytes"}


async def test_a_chunked_body_over_the_limit_is_413(service: ServiceProcess) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(32):  # 512 KiB, no Content-Length
            yield b" " * 16384
            await asyncio.sleep(0)

    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
        response = await http.post(
            "/users", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert len(response.content) < 100


async def test_normal_requests_still_work(service: ServiceProcess) -> None:
    name = f"limits-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
        created = await http.post("/users", json={"username": name, "email": f"{name}@x.org"})
        assert created.status_code == 201, created.text
        fetched = await http.get(f"/users/{created.json()['id']}")
    assert fetched.json()["username"] == name


async def test_a_422_for_a_long_username_does_not_echo_it(service: ServiceProcess) -> None:
    username = "a" * 100 + "@" * 50_000
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
        response = await http.post("/users", json={"username": username, "email": "a@b.c"})
    assert response.status_code == 422
    assert "@@" not in response.text
    assert len(response.content) < 1000


async def test_a_60_kb_invalid_email_is_echoed_as_a_short_prefix(
    service: ServiceProcess,
) -> None:
    """Just under the body limit, a 422 still shows only the first 100 characters."""
    email = "e" * 60_000 + "-no-at-sign"
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
        response = await http.post("/users", json={"username": "u", "email": email})
    assert len(response.request.content) < DEFAULT_LIMIT
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "email"]
    assert error["input"] == email[:100]
    assert "e" * 101 not in response.text
    assert len(response.content) < 1000


async def test_invalid_utf8_is_a_422(service: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
        response = await http.post(
            "/users", content=b'{"username": "\xff", "email": "a@b.c"}',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert error["loc"] == ["body", 14]
