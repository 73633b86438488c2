"""A request path's route template (``database/creds/{role}``), for spans and metric labels.

Where :func:`~vault_async._redact.display_path` cuts a lease id to a suffix for a person
to read, a template drops every name after the mount point: role, key and user names, KV
paths and lease ids become placeholders, so a span or a label says which Vault route (and
which mount, as configured) was called without saying for whom, and a service has a
bounded number of them.

The rules follow how this package builds paths (``_paths``): a mount point of one or more
segments, then the route's keyword, then its name(s); an auth method's mount is always a
placeholder (``auth/{mount}/login``), being the same for every method of one kind. A path
with no keyword known here keeps ``auth/token/<word>`` and the first three segments of a
``sys/`` route (a token, an accessor, a namespace or a name after them becomes a
placeholder), and becomes ``<first segment>/{path}`` otherwise. Token paths, lease ids
and ``sys/raw`` storage keys are templated before the cache, so it never holds one.
"""

from __future__ import annotations

from functools import lru_cache

from ._redact import LEASE_ID_PATHS

__all__ = ["route_template"]

# Keyword -> what follows it: one name, or the rest of the path (a KV path).
_ONE_NAME = {
    "creds": "{role}",
    "static-creds": "{role}",
    "roles": "{role}",
    "static-roles": "{role}",
    "rotate-role": "{role}",
    "role": "{role}",
    "encrypt": "{key}",
    "decrypt": "{key}",
    "rewrap": "{key}",
    "keys": "{key}",
    "hmac": "{key}",
    "sign": "{key}",
    "verify": "{key}",
    "login": "{username}",
}
_REST = {"data", "metadata", "delete", "undelete", "destroy", "subkeys"}
# Fixed words that may follow a name (keys/{key}/rotate, role/{role}/secret-id, ...).
_TRAILING = {"rotate", "config", "secret-id", "role-id", "trim", "export", "lookup", "destroy"}
# sys/ routes whose last part is a parameter (lease ids: LEASE_ID_PATHS).
_SYS_PARAMETER = {
    "sys/leases/revoke-prefix/": "{prefix}",
    "sys/leases/revoke-force/": "{prefix}",
    "sys/leases/lookup/": "{prefix}",
    "sys/policies/acl/": "{name}",
    "sys/policy/": "{name}",
    "sys/mounts/": "{path}",
    "sys/auth/": "{path}",
    "sys/audit/": "{path}",
    "sys/plugins/catalog/": "{path}",
    "sys/namespaces/": "{namespace}",
}
# auth/token/<word>/<parameter>: the parameter (a token, by default) is never kept.
_TOKEN_PARAMETER = {
    "create": "{role}",
    "roles": "{role}",
    "lookup-accessor": "{accessor}",
    "revoke-accessor": "{accessor}",
    "renew-accessor": "{accessor}",
}
_SYS_DEPTH = 3
"""An unknown sys/ route keeps this many segments; the rest becomes ``{path}``."""


def route_template(path: str) -> str:
    """The template of ``path`` (already quoted, no query string): names become placeholders."""
    path = path.strip("/")
    for prefix in LEASE_ID_PATHS:  # before the cache: a lease id is never kept in it
        if path.startswith(prefix):
            return prefix + "{lease_id}"
    if path.startswith("auth/token/"):  # nor a token or an accessor
        return _token_template(path.split("/")[2:])
    if path.startswith("sys/raw/"):  # nor a storage key (which may hold a token's hash)
        return "sys/raw/{path}"
    return _template(path)


def _token_template(segments: list[str]) -> str:
    """``auth/token/<word>``, kept, then a placeholder for what follows."""
    word = segments[0]
    if len(segments) == 1:
        return "auth/token/" + word  # lookup-self, renew-self, create-orphan, roles...
    if len(segments) == 2:
        return f"auth/token/{word}/" + _TOKEN_PARAMETER.get(word, "{token}")
    return "auth/token/{path}"


@lru_cache(maxsize=1024)
def _template(path: str) -> str:
    if path.startswith("sys/"):
        for prefix, placeholder in _SYS_PARAMETER.items():
            if path.startswith(prefix):
                return prefix + placeholder
        if path.startswith("sys/policies/password/"):
            generate = path.endswith("/generate")
            return "sys/policies/password/{name}" + ("/generate" if generate else "")
        segments = path.split("/")
        if len(segments) > _SYS_DEPTH:
            return "/".join([*segments[:_SYS_DEPTH], "{path}"])
        return path
    segments = path.split("/")
    if segments[0] == "auth" and len(segments) > 1:
        found = _split(segments[1:])
        return "auth/{mount}/" + found[1] if found else "auth/{mount}/{path}"
    found = _split(segments)
    if found:
        return found[0] + "/" + found[1]
    return segments[0] if len(segments) == 1 else segments[0] + "/{path}"


def _split(segments: list[str]) -> tuple[str, str] | None:
    """The mount point and the templated rest (``creds/{role}``); None with no keyword."""
    for i in range(1, len(segments)):
        word = segments[i]
        rest = segments[i + 1 :]
        mount = "/".join(segments[:i])
        if word in _REST:
            return mount, word + ("/{path}" if rest else "")
        if word == "datakey":
            return mount, "datakey/{kind}/{key}"
        if word in _ONE_NAME:
            tail = [word]
            if rest:
                tail.append(_ONE_NAME[word])
                tail += [w if w in _TRAILING else "{name}" for w in rest[1:]]
            return mount, "/".join(tail)
    return None
