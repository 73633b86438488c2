"""Database errors become 503 (retry) or 500 answers, never an exception left to the server."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from vault_async.fastapi import add_database_error_handlers


def shutting_down() -> Exception:
    return DBAPIError("SELECT 1", {}, asyncpg.CannotConnectNowError("shutting down"))


ERRORS: dict[str, tuple[Exception, int]] = {
    "refused": (ConnectionRefusedError(111, "refused"), 503),
    "reset": (ConnectionResetError(104, "reset"), 503),
    "operational": (OperationalError("SELECT 1", {}, Exception("gone")), 503),
    "shutting-down": (shutting_down(), 503),
    "login-rejected": (
        DBAPIError("connect", {}, asyncpg.InvalidPasswordError("password authentication")),
        503,
    ),
    "invalidated": (
        ProgrammingError("SELECT 1", {}, Exception("x"), connection_invalidated=True),
        503,
    ),
    "bad-sql": (ProgrammingError("SELEC 1", {}, asyncpg.PostgresSyntaxError("syntax")), 500),
}


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = FastAPI()
    add_database_error_handlers(app)

    @app.get("/raise/{name}")
    async def boom(name: str) -> None:
        raise ERRORS[name][0]

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


@pytest.mark.parametrize("name", sorted(ERRORS))
async def test_database_errors_are_answered(client: httpx.AsyncClient, name: str) -> None:
    async with client:
        response = await client.get(f"/raise/{name}")
    expected = ERRORS[name][1]
    assert response.status_code == expected
    if expected == 503:
        assert response.headers["retry-after"] == "1"
    assert "password" not in response.text
