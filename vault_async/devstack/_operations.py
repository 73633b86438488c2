"""What tests and tools do to a running dev stack: root-token calls, roles, pauses.

`StackServers` is `DevStack`'s base: it holds the running servers (none before the stack is
started) and acts on them; `DevStack` starts, configures and stops them.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from .._config import check_namespace
from . import _configure as cfg
from ._cluster import OpenBaoCluster
from ._errors import DevStackError
from ._namespace import AdminApi, NamespacedApi
from ._openbao import OpenBaoServer
from ._postgres import PostgresCluster

__all__ = ["StackServers"]


class StackServers:
    """The OpenBao node(s) and PostgreSQL of a dev stack, and the operations on them.

    `namespace`: the OpenBao namespace the stack is configured in (None: the root).
    """

    database = cfg.DATABASE

    def __init__(self, namespace: str | None) -> None:
        self.namespace = None if namespace is None else check_namespace(namespace, "namespace")
        self._bao: OpenBaoServer | None = None  # the only node, or the cluster's first
        self._cluster: OpenBaoCluster | None = None
        self._pg: PostgresCluster | None = None

    def _started_bao(self) -> OpenBaoServer:
        if self._bao is None:
            raise DevStackError("use the dev stack", "it is not started")
        return self._bao

    def _started_pg(self) -> PostgresCluster:
        if self._pg is None:
            raise DevStackError("use the dev stack", "it is not started")
        return self._pg

    def _root_api(self) -> OpenBaoServer:
        """Where root-token calls go: the only node, or the cluster's active one."""
        return self._cluster.active() if self._cluster is not None else self._started_bao()

    def _api(self, namespace: str | None = None) -> AdminApi:
        """The root-token API in `namespace`, by default the stack's own (if it has one)."""
        namespace = namespace or self.namespace
        root = self._root_api()
        return root if namespace is None else NamespacedApi(root, namespace)

    # -- operating the stack from tests ----------------------------------------------------------

    def vault_call(
        self, method: str, path: str, body: Any = None, *, namespace: str | None = None
    ) -> dict[str, Any]:
        """A root-token API call, for tests and tooling that set things up; in `namespace`
        if given, else in the stack's own."""
        return self._api(namespace).call(method, path, f"{method} {path}", body)

    def unseal_key(self) -> str:
        """The dev server's unseal key (for tests that seal it and unseal it again)."""
        return self._started_bao().unseal_key()

    def create_dynamic_role(
        self, name: str, default_ttl: str, max_ttl: str, *, migrator: bool = False,
        namespace: str | None = None,
    ) -> None:
        """Add (or replace) a dynamic database role with its own TTLs (in `namespace`, one
        `add_namespace` configured, if given)."""
        cfg.write_dynamic_role(
            self._api(namespace), name, default_ttl, max_ttl, migrator=migrator
        )

    def create_approle_role(
        self, name: str, *, token_ttl: str, token_max_ttl: str,
        policies: Sequence[str] = (cfg.POLICY,), namespace: str | None = None,
    ) -> cfg.AppRoleCredentials:
        """Add an AppRole role with `policies` (the service's) and other TTLs; its credentials."""
        return cfg.write_approle_role(
            self._api(namespace), name, policies, token_ttl=token_ttl,
            token_max_ttl=token_max_ttl,
        )

    @contextlib.asynccontextmanager
    async def admin_connection(
        self, database: str | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        """A superuser connection (closed on exit), for tests that inspect or disturb the data."""
        conn = await self._started_pg().connect(database or self.database)
        try:
            yield conn
        finally:
            await conn.close()

    async def v_roles(self) -> list[str]:
        """Names of the Vault-made (`v-…`) roles that exist now."""
        async with self.admin_connection() as conn:
            rows = await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%'")
        return sorted(r["rolname"] for r in rows)

    def pause_vault(self) -> None:
        """SIGSTOP the OpenBao process: it keeps its sockets but answers nothing."""
        process = self._started_bao().process
        assert process is not None
        process.signal(signal.SIGSTOP)

    def resume_vault(self) -> None:
        process = self._started_bao().process
        assert process is not None
        process.signal(signal.SIGCONT)

    def restart_postgres(self) -> float:
        """Fast-shutdown PostgreSQL and start it again; returns the monotonic time it was back."""
        self._started_pg().restart()
        return time.monotonic()
