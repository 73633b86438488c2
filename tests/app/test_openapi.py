"""The OpenAPI document describes every answer the users routes can give."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.main import create_app


@pytest.fixture(scope="module")
async def document() -> dict[str, Any]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    resolved: dict[str, Any] = node
    return resolved


def _error_schema(document: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    schema = _resolve(document, response["content"]["application/json"]["schema"])
    assert schema["properties"]["detail"]["type"] == "string"
    assert schema["required"] == ["detail"]
    return schema


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/users", {"201", "409", "413", "422", "503"}),
        ("get", "/users/{user_id}", {"200", "404", "422", "503"}),
        ("get", "/users", {"200", "422", "503"}),
    ],
)
def test_users_routes_list_their_answers(
    document: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    responses = document["paths"][path][method]["responses"]
    assert statuses <= set(responses), sorted(responses)
    for status in statuses - {"200", "201", "422"}:
        assert responses[status]["description"]
        _error_schema(document, responses[status])


@pytest.mark.parametrize(("method", "path"), [("post", "/users"), ("get", "/users/{user_id}")])
def test_503_documents_retry_after(document: dict[str, Any], method: str, path: str) -> None:
    unavailable = document["paths"][path][method]["responses"]["503"]
    header = unavailable["headers"]["Retry-After"]
    assert header["schema"]["type"] == "integer"
    assert "seconds" in header["description"]
