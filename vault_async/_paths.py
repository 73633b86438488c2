"""Build request paths: every segment is quoted, because a role name is data, not a path."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote

from ._exceptions import InvalidConfig

__all__ = ["name", "subpath"]


@lru_cache(maxsize=4096)
def name(value: str, what: str = "name") -> str:
    """One path segment; slashes inside it are escaped, empty/'.'/'..' rejected."""
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise InvalidConfig(f"{what} must be a non-empty string other than '.' and '..'")
    return quote(value, safe="")


@lru_cache(maxsize=4096)
def subpath(value: str, what: str = "path") -> str:
    """A hierarchical path (a KV path, a mount point): each '/'-separated segment quoted."""
    if not isinstance(value, str):
        raise InvalidConfig(f"{what} must be a string")
    parts = value.strip("/").split("/")
    if parts == [""] or any(p in ("", ".", "..") for p in parts):
        raise InvalidConfig(f"{what} {value!r} has an empty, '.' or '..' segment")
    return "/".join(quote(p, safe="") for p in parts)
