"""One request's headers and body, built from the client's base headers and its options."""

from __future__ import annotations

from collections.abc import Mapping

from ._config import check_header_value
from ._json import JSONObject, encode_json

__all__ = ["request_headers"]


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
        check_header_value(namespace, "namespace")
        headers["X-Vault-Namespace"] = namespace
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
