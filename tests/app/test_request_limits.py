"""Request bodies are limited while they are read (413), and a 422 does not echo the input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.limits import DRAIN_BYTES
from app.main import create_app
from app.settings import Settings, SettingsError, load_settings
from vault_async.fastapi import VaultRuntime
from vault_async.sqlalchemy import StaticCredentials, bind_credentials

URL = "postgresql+asyncpg://u:p@127.0.0.1:9/app"  # never reached
LIMIT = 4096


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=URL, max_request_body_bytes=LIMIT)
    engine = create_async_engine(URL)
    binding = bind_credentials(engine, StaticCredentials("u", "p"))
    runtime = VaultRuntime(engine=engine, sessionmaker=async_sessionmaker(engine), binding=binding)
    app = create_app(settings, runtime=runtime)
    app.state.vault_runtime = runtime
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http
    binding.detach()
    await engine.dispose()


def assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body larger than {LIMIT} bytes"}
    assert len(response.content) < 100


async def test_a_declared_length_over_the_limit_is_refused_unread(
    client: httpx.AsyncClient,
) -> None:
    body = json.dumps({"username": "u" * 1_000_000, "email": "a@b.c"}).encode()
    response = await client.post(
        "/users", content=body, headers={"content-type": "application/json"}
    )
    assert_413(response)


async def test_a_chunked_body_is_refused_while_it_is_read(client: httpx.AsyncClient) -> None:
    sent = []

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(10_000):  # 10 MiB
            sent.append(i)
            yield b" " * 1024

    response = await client.post(
        "/users", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_413(response)
    # Past the limit, at most DRAIN_BYTES more were read (and dropped); the rest never was.
    assert len(sent) <= (LIMIT + DRAIN_BYTES) // 1024 + 2


async def test_a_false_small_length_does_not_get_past_the_count(
    client: httpx.AsyncClient,
) -> None:
    """The count holds even when the declared length understates the body (no trust in it)."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1024

    response = await client.post(
        "/users", content=chunks(),
        headers={"content-type": "application/json", "content-length": "10"},
    )
    assert_413(response)


async def test_a_body_at_the_limit_is_read(client: httpx.AsyncClient) -> None:
    body = json.dumps({"username": "", "email": "a@b.c"}).encode()
    body += b" " * (LIMIT - len(body))
    response = await client.post(
        "/users", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422  # validated, so it was read in full


async def test_a_422_does_not_echo_a_long_input(client: httpx.AsyncClient) -> None:
    username = "x" * 150 + "!" + "y" * 3000
    response = await client.post("/users", json={"username": username, "email": "a@b.c"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "username"]
    assert error["input"] == username[:100]
    assert "x" * 101 not in response.text
    assert len(response.content) < 1000


async def test_a_422_does_not_echo_a_whole_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/users", json={"username": "u", "other": "z" * 3000})
    assert response.status_code == 422
    assert "zzz" not in response.text
    assert all("input" not in error for error in response.json()["detail"])


def test_the_limit_setting() -> None:
    base = {"DATABASE_URL": "postgresql+asyncpg://me:pw@127.0.0.1/app"}
    assert load_settings(base).max_request_body_bytes == 65536
    assert load_settings(base | {"MAX_REQUEST_BODY_BYTES": "1024"}).max_request_body_bytes == 1024
    for bad in ("0", "-1", "lots"):
        with pytest.raises(SettingsError, match=r"^MAX_REQUEST_BODY_BYTES "):
            load_settings(base | {"MAX_REQUEST_BODY_BYTES": bad})
