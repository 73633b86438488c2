"""One request's headers and body, built from the client's base headers and its options."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final, Literal, TypedDict

from ._config import check_header_value, check_namespace
from ._json import JSONObject, encode_json

__all__ = ["CLIENT_NAMESPACE", "Namespace", "NamespaceOption", "in_namespace", "request_headers"]


class _Default(enum.Enum):
    CLIENT = "the client's namespace"


CLIENT_NAMESPACE: Final = _Default.CLIENT
"""The default of the typed calls' ``namespace`` keyword: the client's (VAULT_NAMESPACE)."""

Namespace = str | None | Literal[_Default.CLIENT]
"""A typed call's ``namespace``: a namespace path, None for the root namespace, or
:data:`CLIENT_NAMESPACE` for the client's own."""


class NamespaceOption(TypedDict, total=False):
    """The ``namespace`` request option alone (absent: the client's namespace)."""

    namespace: str | None


def in_namespace(namespace: Namespace) -> NamespaceOption:
    """The request option for a typed call's ``namespace`` keyword."""
    return {} if namespace is CLIENT_NAMESPACE else {"namespace": namespace}


def request_headers(
    base: Mapping[str, str],
    namespace: str | None,
    token: str | None,
    wrap_ttl: str | None,
    body: JSONObject | None,
    content_type: str,
) -> tuple[dict[str, str], bytes | None]:
    """The headers to send (namespace, token, wrap TTL, content type added) and the body."""
    headers = dict(base)
    if namespace:
        headers["X-Vault-Namespace"] = check_namespace(namespace, "namespace")
    if token:
        headers["X-Vault-Token"] = token
    if wrap_ttl is not None:
        check_header_value(wrap_ttl, "wrap_ttl")
        headers["X-Vault-Wrap-TTL"] = wrap_ttl
    content = None
    if body is not None:
        content = encode_json(body)
        headers["Content-Type"] = content_type
    return headers, content
