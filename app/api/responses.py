"""The error answers of the routes, as the OpenAPI document lists them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["CONFLICT", "NOT_FOUND", "TOO_LARGE", "UNAVAILABLE", "Detail"]


class Detail(BaseModel):
    """An error answer other than a 422: one sentence, never the input."""

    detail: str


Responses = dict[int | str, dict[str, Any]]

NOT_FOUND: Responses = {404: {"model": Detail, "description": "No user with that id"}}
CONFLICT: Responses = {409: {"model": Detail, "description": "The username is taken"}}
TOO_LARGE: Responses = {
    413: {"model": Detail, "description": "Body over MAX_REQUEST_BODY_BYTES (default 64 KiB)"}
}
UNAVAILABLE: Responses = {
    503: {
        "model": Detail,
        "description": "The database is briefly unreachable (e.g. its credential is being "
        "replaced); retry",
        "headers": {
            "Retry-After": {
                "description": "seconds to wait before retrying",
                "schema": {"type": "integer"},
            }
        },
    }
}
