"""`DevStack`: a real OpenBao and a real PostgreSQL, configured, on free loopback ports.

One job, the façade tests and tools hold; the work is elsewhere (servers in `_openbao`,
`_cluster`, `_postgres`; configuration in `_configure`, `_policies`, `_namespace`; what tests
do to the running servers in `_operations`; files in `_envfile`, `_stale`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import TracebackType

from . import _configure as cfg
from ._binaries import find_bao, find_pg_bindir
from ._cluster import OpenBaoCluster, checked_nodes
from ._errors import DevStackError
from ._namespace import create_namespace
from ._openbao import OpenBaoServer
from ._operations import StackServers
from ._postgres import PostgresCluster
from ._private import private_temp_dir, write_private_file
from ._processes import RunAs, free_port, free_port_pair
from ._stale import mark_owned, remove_stale


class DevStack(StackServers):
    """Start OpenBao (dev mode) and PostgreSQL (scram-sha-256), configure them, clean up on exit.

    Usage::

        with DevStack(db_ttl="30s", db_max_ttl="2m") as stack:
            os.environ.update(stack.env())
            ...

    Both servers listen on 127.0.0.1 only and keep their data in temporary directories that
    only they can read (0700: OpenBao's in `workdir`, owned by this user; PostgreSQL's in
    `pg_workdir`, owned by the user it runs as). They are stopped by PID (and the directories
    removed) when the block exits, whatever the reason. They also die with the thread that
    started them, so enter this from the main thread.

    `nodes=3` runs OpenBao as a raft cluster (`cluster`); `vault_addrs` lists every node.

    `namespace="team-a"` (or `"team-a/app"`, nested) creates that OpenBao namespace and
    configures everything inside it instead of in the root namespace: `env()` then carries
    VAULT_NAMESPACE, and `vault_call` and the `create_*` methods act inside it.
    `add_namespace` configures one more namespace on a running stack.
    """

    approle_mount = cfg.APPROLE_MOUNT
    approle_role = cfg.APPROLE_ROLE
    migrator_approle_role = cfg.MIGRATOR_APPROLE_ROLE
    examples_approle_role = cfg.EXAMPLES_APPROLE_ROLE
    db_mount = cfg.DB_MOUNT
    dynamic_role = cfg.DYNAMIC_ROLE
    migrator_role = cfg.MIGRATOR_ROLE
    static_role = cfg.STATIC_ROLE
    owner_role = cfg.OWNER_ROLE
    group_role = cfg.GROUP_ROLE
    transit_key = cfg.TRANSIT_KEY
    pg_host = "127.0.0.1"

    def __init__(
        self, *, db_ttl: str = "1h", db_max_ttl: str = "24h", tls: bool = False,
        audit_log: bool = False, nodes: int = 1, namespace: str | None = None,
    ) -> None:
        super().__init__(namespace)
        self.nodes = checked_nodes(nodes, tls=tls, audit_log=audit_log)
        self.tls = tls
        self.audit = audit_log
        self.db_ttl = db_ttl
        self.db_max_ttl = db_max_ttl
        self.workdir: Path | None = None
        self._vault_admin_password = ""
        # AppRole logins, one per job: the service's (role_id, secret_id), the migrations',
        # the client examples' (KV, transit).
        self.role_id = ""
        self.secret_id = ""
        self.migrator_login = cfg.AppRoleCredentials("", "")
        self.examples_login = cfg.AppRoleCredentials("", "")
        self._files: list[Path] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> DevStack:
        """Start and configure both servers; on any failure stop what started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        remove_stale(owner_uids={RunAs.for_postgres().owner_uid})
        bao_binary = find_bao()
        pg_bindir = find_pg_bindir()
        self.workdir = private_temp_dir("vault-async-devstack-")
        bao: OpenBaoServer | OpenBaoCluster
        if self.nodes > 1:
            bao = self._cluster = OpenBaoCluster(bao_binary, self.workdir, self.nodes)
            self._bao = self._cluster.nodes[0]
        else:
            bao = self._bao = OpenBaoServer(
                bao_binary, self.workdir, free_port_pair(), tls=self.tls, audit=self.audit
            )
        self._pg = PostgresCluster(pg_bindir, free_port())
        # initdb is the slow step: let OpenBao come up meanwhile.
        bao.spawn()
        self._pg.init()
        self._pg.start()
        bao.wait_ready()
        self._vault_admin_password = cfg.configure_postgres(self._pg)
        if self.namespace is not None:
            create_namespace(self._root_api(), self.namespace)
        logins = cfg.configure_openbao(
            self._api(), self._pg, self._vault_admin_password,
            db_ttl=self.db_ttl, db_max_ttl=self.db_max_ttl,
        )
        if self._cluster is not None:
            self._cluster.wait_formed()
        self.role_id, self.secret_id = logins.service.role_id, logins.service.secret_id
        self.migrator_login, self.examples_login = logins.migrator, logins.examples

    def stop(self) -> None:
        """Stop both servers by PID and remove the data directory. Safe to call twice."""
        for server in (self._cluster or self._bao, self._pg):
            if server is not None:
                server.stop()
        if self._pg is not None:
            self._pg.remove()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DevStack(vault_addr={self.vault_addr!r}, pg_port={self.pg_port!r})"

    # -- what clients need ---------------------------------------------------------------------

    def add_namespace(self, namespace: str) -> cfg.DevNamespace:
        """Create `namespace` on the running stack and configure the service's engines in it.

        The same configuration as the stack's own, on the same PostgreSQL, except the static
        role (its login belongs to the stack's own mount). Pass the result to `env()`.
        """
        path = create_namespace(self._root_api(), namespace)
        logins = cfg.configure_openbao(
            self._api(path), self._started_pg(), self._vault_admin_password,
            db_ttl=self.db_ttl, db_max_ttl=self.db_max_ttl, static_role=False,
        )
        return cfg.DevNamespace(path, logins)

    @property
    def cluster(self) -> OpenBaoCluster:
        """With `nodes` > 1, the OpenBao nodes: states, step-down, kill, stop, start, seal."""
        if self._cluster is None:
            raise DevStackError("use the OpenBao cluster", "the stack runs one node (nodes=1)")
        return self._cluster

    @property
    def vault_addr(self) -> str:
        """OpenBao's address; with a cluster, its first node's."""
        return self._started_bao().addr

    @property
    def vault_addrs(self) -> list[str]:
        """Every OpenBao node's address, the first node's first."""
        return self._cluster.addrs if self._cluster is not None else [self.vault_addr]

    @property
    def ca_cert(self) -> Path | None:
        """In TLS mode, the CA file that signs OpenBao's certificate (VAULT_CACERT)."""
        return self._started_bao().ca_cert

    @property
    def audit_log(self) -> Path | None:
        """With `audit_log=True`, OpenBao's raw audit log: every token and secret it issued."""
        return self._started_bao().audit_log

    @property
    def root_token(self) -> str:
        return self._started_bao().root_token

    def own_file(self, path: Path) -> None:
        """Note a file written for this stack (an env file): a later start removes it if killed."""
        if self.workdir is None:
            raise DevStackError("note an env file", "the dev stack is not started")
        self._files.append(path)
        mark_owned(self.workdir, files=self._files)

    def write_root_token_file(self) -> Path:
        """Write the root token to a new 0600 file in the private work dir (removed with it)."""
        if self.workdir is None:
            raise DevStackError("write the root token file", "the dev stack is not started")
        path = self.workdir / "root-token"
        write_private_file(path, self.root_token + "\n")
        return path

    @property
    def pg_workdir(self) -> Path:
        """PostgreSQL's own directory: its data, its log."""
        return self._started_pg().workdir

    @property
    def pg_port(self) -> int:
        return self._started_pg().port

    @property
    def pg_superuser(self) -> str:
        return self._started_pg().superuser

    @property
    def pg_superuser_password(self) -> str:
        return self._started_pg().superuser_password

    @property
    def database_url(self) -> str:
        """The service's DATABASE_URL: no credentials, Vault supplies them."""
        return f"postgresql+asyncpg://{self.pg_host}:{self.pg_port}/{self.database}"

    @property
    def bao_pid(self) -> int:
        process = self._started_bao().process
        assert process is not None
        return process.pid

    @property
    def pg_pid(self) -> int:
        process = self._started_pg().process
        assert process is not None
        return process.pid

    def _login_env(
        self, login: cfg.AppRoleCredentials, namespace: str | None
    ) -> dict[str, str]:
        tls = {"VAULT_CACERT": str(self.ca_cert)} if self.ca_cert else {}
        tls |= {"VAULT_NAMESPACE": namespace} if namespace else {}
        others = self.vault_addrs[1:]
        failover = {"VAULT_FAILOVER_ADDRS": ",".join(others)} if others else {}
        return tls | failover | {
            "VAULT_ADDR": self.vault_addr,
            "VAULT_AUTH_METHOD": "approle",
            "VAULT_ROLE_ID": login.role_id,
            "VAULT_SECRET_ID": login.secret_id,
            "DATABASE_URL": self.database_url,
            "VAULT_DB_MOUNT": self.db_mount,
        }

    def env(self, within: cfg.DevNamespace | None = None) -> dict[str, str]:
        """The service's environment: its AppRole login (policy `app-service`) and its role.

        `within`: the login of a namespace `add_namespace` configured, with VAULT_NAMESPACE.
        """
        service = cfg.AppRoleCredentials(self.role_id, self.secret_id)
        namespace = self.namespace
        if within is not None:
            service, namespace = within.logins.service, within.path
        return self._login_env(service, namespace) | {"VAULT_DB_ROLE": self.dynamic_role}

    def migration_env(self, within: cfg.DevNamespace | None = None) -> dict[str, str]:
        """`alembic upgrade head`'s environment: the migrations' AppRole (`app-migrator`)."""
        login, namespace = (
            (within.logins.migrator, within.path) if within is not None
            else (self.migrator_login, self.namespace)
        )
        return self._login_env(login, namespace) | {
            "VAULT_DB_ROLE": self.migrator_role,
            "VAULT_DB_MIGRATION_ROLE": self.migrator_role,
            "DB_OWNER_ROLE": self.owner_role,
        }
