"""OpenBao namespaces for the dev stack: create one (nested too), and call the API inside it.

The configuration code takes any :class:`AdminApi`: the server itself (the root namespace)
or a :class:`NamespacedApi` over it, so one code path configures the root or a namespace.
"""

from __future__ import annotations

from typing import Any, Protocol

from .._config import check_namespace

__all__ = ["AdminApi", "NamespacedApi", "create_namespace"]


class AdminApi(Protocol):
    """A root-token API call; a failure raises ``DevStackError`` naming ``step``."""

    def call(self, method: str, path: str, step: str, body: Any = None) -> dict[str, Any]:
        """Send one request to ``/v1/<path>``; Vault's JSON answer ({} when it has none)."""
        ...


class NamespacedServer(Protocol):
    """What :class:`NamespacedApi` wraps: a server whose calls take a namespace."""

    def call(
        self, method: str, path: str, step: str, body: Any = None, *, namespace: str | None = None
    ) -> dict[str, Any]:
        """Send one request to ``/v1/<path>`` in ``namespace``."""
        ...


class NamespacedApi:
    """The same root-token calls, sent inside ``namespace`` (``X-Vault-Namespace``)."""

    __slots__ = ("namespace", "server")

    def __init__(self, server: NamespacedServer, namespace: str) -> None:
        self.server = server
        self.namespace = namespace

    def call(self, method: str, path: str, step: str, body: Any = None) -> dict[str, Any]:
        """Send one request to ``/v1/<path>`` inside the namespace."""
        return self.server.call(method, path, step, body, namespace=self.namespace)


def create_namespace(server: NamespacedServer, namespace: str) -> str:
    """Create ``namespace`` and each parent it names (``a/b``: ``a``, then ``b`` inside it).

    Returns the namespace in its canonical form (no leading or trailing ``/``). Creating
    one that exists already leaves it as it is.
    """
    path = check_namespace(namespace, "dev stack namespace")
    parent: str | None = None
    for part in path.split("/"):
        server.call(
            "POST", f"sys/namespaces/{part}", f"create namespace {part!r}", namespace=parent
        )
        parent = part if parent is None else f"{parent}/{part}"
    return path
