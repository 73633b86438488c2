"""Turn Vault's JSON bodies into typed results; every failure is a MalformedResponse."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import MappingProxyType

from ._exceptions import MalformedResponse
from ._json import JSONObject, JSONValue
from ._models import EMPTY, AuthResult, Secret, TokenInfo, WrapInfo

__all__ = [
    "decode_body",
    "error_messages",
    "to_auth",
    "to_secret",
    "to_token_info",
    "to_wrap_info",
]

Body = dict[str, JSONValue]


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


def int_field(body: Mapping[str, object], key: str) -> int:
    """A numeric field that may be absent (0)."""
    value = body.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedResponse(f"field {key!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise MalformedResponse(f"field {key!r} is not a finite number")
    return int(value)


def string_field(body: Mapping[str, object], key: str) -> str:
    """A string field that may be absent (empty)."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedResponse(f"field {key!r} is not a string")
    return value


def _opt_str(body: Mapping[str, object], key: str) -> str | None:
    return string_field(body, key) or None


def bool_field(body: Mapping[str, object], key: str) -> bool:
    """A boolean field that may be absent (False)."""
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedResponse(f"field {key!r} is not a boolean")
    return value


def string_list(body: Mapping[str, object], key: str) -> tuple[str, ...]:
    """A list of strings that may be absent (empty)."""
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedResponse(f"field {key!r} is not a list of strings")
    return tuple(value)


def optional_map(body: Mapping[str, object], key: str) -> JSONObject:
    """A nested object that may be absent or null (empty)."""
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


def to_secret(body: Body, *, data: JSONObject | None = None) -> Secret:
    """A Secret from a standard response (``data`` overrides the body's ``data``)."""
    return Secret(
        lease_id=string_field(body, "lease_id"),
        lease_duration=int_field(body, "lease_duration"),
        renewable=bool_field(body, "renewable"),
        data=optional_map(body, "data") if data is None else MappingProxyType(dict(data)),
        warnings=string_list(body, "warnings"),
        request_id=string_field(body, "request_id"),
    )


def to_auth(body: Body) -> AuthResult:
    """An AuthResult from a login or renew response (its ``auth`` section)."""
    auth = _section(body, "auth")
    token = string_field(auth, "client_token")
    if not token:
        raise MalformedResponse("auth response carries no client_token")
    return AuthResult(
        client_token=token,
        accessor=string_field(auth, "accessor"),
        lease_duration=int_field(auth, "lease_duration"),
        renewable=bool_field(auth, "renewable"),
        policies=string_list(auth, "policies"),
        token_policies=string_list(auth, "token_policies"),
        metadata=optional_map(auth, "metadata"),
        entity_id=string_field(auth, "entity_id"),
        orphan=bool_field(auth, "orphan"),
        token_type=string_field(auth, "token_type"),
    )


def to_token_info(body: Body) -> TokenInfo:
    """A TokenInfo from a token lookup response (the token id is dropped)."""
    data = _section(body, "data")
    return TokenInfo(
        accessor=string_field(data, "accessor"),
        ttl=int_field(data, "ttl"),
        creation_ttl=int_field(data, "creation_ttl"),
        explicit_max_ttl=int_field(data, "explicit_max_ttl"),
        renewable=bool_field(data, "renewable"),
        policies=string_list(data, "policies"),
        display_name=string_field(data, "display_name"),
        entity_id=string_field(data, "entity_id"),
        expire_time=_opt_str(data, "expire_time"),
        issue_time=_opt_str(data, "issue_time"),
        num_uses=int_field(data, "num_uses"),
        orphan=bool_field(data, "orphan"),
        path=string_field(data, "path"),
        type=string_field(data, "type"),
        meta=optional_map(data, "meta"),
    )


def to_wrap_info(body: Body) -> WrapInfo:
    """The ``wrap_info`` section of a response-wrapped answer."""
    info = _section(body, "wrap_info")
    token = string_field(info, "token")
    if not token:
        raise MalformedResponse("wrap_info carries no token")
    return WrapInfo(
        token=token,
        accessor=string_field(info, "accessor"),
        ttl=int_field(info, "ttl"),
        creation_time=string_field(info, "creation_time"),
        creation_path=string_field(info, "creation_path"),
    )


def data_section(body: Body) -> Body:
    """The ``data`` object of a response (malformed if absent)."""
    return _section(body, "data")
