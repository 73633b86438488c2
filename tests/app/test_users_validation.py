"""Bad input to the users API is a 422, whatever bytes it holds; no database is reached."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.main import create_app
from vault_async.fastapi import VaultRuntime
from vault_async.sqlalchemy import StaticCredentials, bind_credentials


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    engine = create_async_engine("postgresql+asyncpg://u:p@127.0.0.1:9/app")  # never reached
    binding = bind_credentials(engine, StaticCredentials("u", "p"))
    app.state.vault_runtime = VaultRuntime(
        engine=engine, sessionmaker=async_sessionmaker(engine), binding=binding
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http
    binding.detach()
    await engine.dispose()


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "u", "email": "x\\ud936@b.c"}',
        b'{"username": "u\\ud936", "email": "x@b.c"}',
        b'{"\\u008e": {"\\ud936": 1}}',
        b'{"username": "u", "email": "a\\u0000@b.c"}',
        b'{"username": "", "email": "a@b.c"}',
        b'{"username": "has space", "email": "a@b.c"}',
        b'{"username": "u", "email": "no-at-sign"}',
        b"not json",
    ],
)
async def test_bad_bodies_are_422(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/users", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "path", ["/users/0", "/users/99999999999999999999", "/users/abc",
             "/users?offset=99999999999999999999", "/users?limit=0", "/users?limit=101"],
)
async def test_out_of_range_parameters_are_422(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "u\xff", "email": "a@b.c"}',
        b'{"username": "u", "email": "\xc3(@b.c"}',
    ],
)
async def test_invalid_utf8_is_a_422_like_invalid_json(
    client: httpx.AsyncClient, body: bytes
) -> None:
    """Bytes that are not UTF-8 are malformed JSON: the same 422 as any other bad body."""
    response = await client.post(
        "/users", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    not_json = await client.post(
        "/users", content=b"not json", headers={"content-type": "application/json"}
    )
    [error] = response.json()["detail"]
    [reference] = not_json.json()["detail"]
    assert set(error) == set(reference)
    assert error["type"] == reference["type"] == "json_invalid"
    assert error["loc"][0] == "body"
    assert isinstance(error["loc"][1], int)
    assert "UTF-8" in error["ctx"]["error"]
