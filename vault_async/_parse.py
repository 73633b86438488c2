"""Turn Vault's JSON bodies into typed results; every failure is a MalformedResponse."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ._exceptions import MalformedResponse
from ._models import EMPTY, AuthResult, Secret, TokenInfo, WrapInfo

__all__ = [
    "decode_body",
    "error_messages",
    "to_auth",
    "to_secret",
    "to_token_info",
    "to_wrap_info",
]

Body = dict[str, Any]


def decode_body(content: bytes) -> Body:
    """Decode a response body: empty is ``{}``; anything but a JSON object is malformed."""
    if not content or content.isspace():
        return {}
    try:
        obj = json.loads(content)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise MalformedResponse("response body is not valid JSON") from None
    if not isinstance(obj, dict):
        raise MalformedResponse(f"response body is a JSON {type(obj).__name__}, not an object")
    return obj


def error_messages(body: Body) -> tuple[str, ...]:
    """Vault's ``errors`` list, as strings (anything else in the body is ignored)."""
    errors = body.get("errors")
    if not isinstance(errors, list):
        return ()
    return tuple(e if isinstance(e, str) else "<non-string error>" for e in errors)


def _int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedResponse(f"field {key!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise MalformedResponse(f"field {key!r} is not a finite number")
    return int(value)


def _str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedResponse(f"field {key!r} is not a string")
    return value


def _opt_str(body: Mapping[str, Any], key: str) -> str | None:
    return _str(body, key) or None


def _bool(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedResponse(f"field {key!r} is not a boolean")
    return value


def _strs(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedResponse(f"field {key!r} is not a list of strings")
    return tuple(value)


def _map(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    if value is None:
        return EMPTY
    if not isinstance(value, dict):
        raise MalformedResponse(f"field {key!r} is not an object")
    return MappingProxyType(value)


def _section(body: Body, key: str) -> Body:
    value = body.get(key)
    if not isinstance(value, dict):
        raise MalformedResponse(f"response has no {key!r} object")
    return value


def to_secret(body: Body, *, data: Mapping[str, Any] | None = None) -> Secret:
    """A Secret from a standard response (``data`` overrides the body's ``data``)."""
    return Secret(
        lease_id=_str(body, "lease_id"),
        lease_duration=_int(body, "lease_duration"),
        renewable=_bool(body, "renewable"),
        data=_map(body, "data") if data is None else MappingProxyType(dict(data)),
        warnings=_strs(body, "warnings"),
        request_id=_str(body, "request_id"),
    )


def to_auth(body: Body) -> AuthResult:
    """An AuthResult from a login or renew response (its ``auth`` section)."""
    auth = _section(body, "auth")
    token = _str(auth, "client_token")
    if not token:
        raise MalformedResponse("auth response carries no client_token")
    return AuthResult(
        client_token=token,
        accessor=_str(auth, "accessor"),
        lease_duration=_int(auth, "lease_duration"),
        renewable=_bool(auth, "renewable"),
        policies=_strs(auth, "policies"),
        token_policies=_strs(auth, "token_policies"),
        metadata=_map(auth, "metadata"),
        entity_id=_str(auth, "entity_id"),
        orphan=_bool(auth, "orphan"),
        token_type=_str(auth, "token_type"),
    )


def to_token_info(body: Body) -> TokenInfo:
    """A TokenInfo from a token lookup response (the token id is dropped)."""
    data = _section(body, "data")
    return TokenInfo(
        accessor=_str(data, "accessor"),
        ttl=_int(data, "ttl"),
        creation_ttl=_int(data, "creation_ttl"),
        explicit_max_ttl=_int(data, "explicit_max_ttl"),
        renewable=_bool(data, "renewable"),
        policies=_strs(data, "policies"),
        display_name=_str(data, "display_name"),
        entity_id=_str(data, "entity_id"),
        expire_time=_opt_str(data, "expire_time"),
        issue_time=_opt_str(data, "issue_time"),
        num_uses=_int(data, "num_uses"),
        orphan=_bool(data, "orphan"),
        path=_str(data, "path"),
        type=_str(data, "type"),
        meta=_map(data, "meta"),
    )


def to_wrap_info(body: Body) -> WrapInfo:
    """The ``wrap_info`` section of a response-wrapped answer."""
    info = _section(body, "wrap_info")
    token = _str(info, "token")
    if not token:
        raise MalformedResponse("wrap_info carries no token")
    return WrapInfo(
        token=token,
        accessor=_str(info, "accessor"),
        ttl=_int(info, "ttl"),
        creation_time=_str(info, "creation_time"),
        creation_path=_str(info, "creation_path"),
    )


def data_section(body: Body) -> Body:
    """The ``data`` object of a response (malformed if absent)."""
    return _section(body, "data")


def optional_map(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested object that may be absent or null."""
    return _map(body, key)


def string_list(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A list of strings that may be absent."""
    return _strs(body, key)


def string_field(body: Mapping[str, Any], key: str) -> str:
    """A string field that may be absent."""
    return _str(body, key)


def int_field(body: Mapping[str, Any], key: str) -> int:
    """A numeric field that may be absent."""
    return _int(body, key)


def bool_field(body: Mapping[str, Any], key: str) -> bool:
    """A boolean field that may be absent."""
    return _bool(body, key)
