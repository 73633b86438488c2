"""JSON value types for request and response bodies, and the payload helper every route uses."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TypeAlias, TypeVar

__all__ = ["JSONObject", "JSONValue", "drop_none", "encode_json"]

JSONValue: TypeAlias = (
    "str | int | float | bool | Sequence[JSONValue] | Mapping[str, JSONValue] | None"
)
"""Anything ``json.dumps`` turns into JSON (tuples and read-only mappings included)."""

JSONObject: TypeAlias = Mapping[str, JSONValue]
"""A request body: Vault takes a JSON object on every route."""

_T = TypeVar("_T")


def drop_none(**fields: _T | None) -> dict[str, _T]:
    """The fields that were given: ``None`` means "not set", so Vault applies its default."""
    return {key: value for key, value in fields.items() if value is not None}


def encode_json(body: JSONObject) -> bytes:
    """Compact UTF-8 JSON, as sent on the wire."""
    return json.dumps(body, separators=(",", ":")).encode()
