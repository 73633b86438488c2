"""Build request paths: every segment is quoted, because a role name is data, not a path.

Quoting alone is not enough: OpenBao and Vault decode ``%2F`` before routing, so a quoted
slash inside a key name still splits the path (``keys/app%2Fconfig`` reaches the config
endpoint of the key ``app``). So a single-segment name (:func:`name`) refuses any slash,
raw or percent-encoded, and every segment refuses control characters (CR/LF, NUL, ...)
and lone surrogates.
Errors are :class:`InvalidConfig` (a ``ValueError`` too), raised before anything is sent;
they name the argument and the reason, not the value.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote

from ._exceptions import InvalidConfig

__all__ = ["name", "subpath"]

# C0 and C1 control characters and DEL: never part of a name, and CR/LF split headers/logs.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A lone surrogate (from surrogateescape'd bytes): not text, cannot be sent as UTF-8.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# A percent-encoded slash, also when the '%' itself is encoded again (%252F).
_ENCODED_SLASH = re.compile(r"%(?:25)*2f", re.IGNORECASE)


def _check_segment(segment: str, what: str) -> None:
    if segment in ("", ".", ".."):
        raise InvalidConfig(f"{what} has an empty, '.' or '..' segment")
    if _CONTROL.search(segment):
        raise InvalidConfig(f"{what} must not contain a control character (CR, LF, NUL, ...)")
    if _SURROGATE.search(segment):
        raise InvalidConfig(f"{what} must be valid Unicode text (it holds a lone surrogate)")
    if _ENCODED_SLASH.search(segment):
        raise InvalidConfig(f"{what} must not contain an encoded slash (%2F)")


@lru_cache(maxsize=4096)
def name(value: str, what: str = "name") -> str:
    """One path segment (a role, key or user name): no '/', no %2F, no control characters."""
    if not isinstance(value, str) or value == "":
        raise InvalidConfig(f"{what} must be a non-empty string")
    if "/" in value:
        raise InvalidConfig(f"{what} must not contain '/' (it is one path segment)")
    _check_segment(value, what)
    return quote(value, safe="")


@lru_cache(maxsize=4096)
def subpath(value: str, what: str = "path") -> str:
    """A hierarchical path (a KV path, a mount point such as ``team/database``).

    Each '/'-separated segment is checked like a :func:`name` and quoted; leading and
    trailing slashes are dropped.
    """
    if not isinstance(value, str):
        raise InvalidConfig(f"{what} must be a string")
    parts = value.strip("/").split("/")
    for part in parts:
        _check_segment(part, what)
    return "/".join(quote(p, safe="") for p in parts)
