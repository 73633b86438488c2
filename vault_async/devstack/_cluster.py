"""A cluster of OpenBao servers on 127.0.0.1: raft storage, a static seal, one active node."""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from ._errors import DevStackError
from ._openbao import OpenBaoServer
from ._private import create_private_file, make_private_dir, write_private_file
from ._processes import ServerProcess, free_port_pair

# What `sys/health` answers with its default codes, and "down" when nothing answers.
_HEALTH_STATES = {200: "active", 429: "standby", 501: "uninitialized", 503: "sealed"}
# Standbys join as non-voters; autopilot promotes them once stable this long (default 10 s).
_STABILIZATION = "1s"
# How often autopilot gathers the nodes' health and looks for standbys to promote
# (defaults 2 s and 10 s).
_AUTOPILOT_UPDATE = "500ms"
_AUTOPILOT_INTERVAL = "1s"
# Raft's timeouts are its defaults times this: 1 elects a new leader within seconds of a loss
# on loopback (OpenBao's default, 5, suits networks with real latency).
_RAFT_TIMING = 1


def checked_nodes(nodes: int, *, tls: bool, audit_log: bool) -> int:
    """The number of OpenBao nodes asked for, if the stack can run it."""
    if nodes < 1:
        raise DevStackError("set up the dev stack", f"nodes={nodes}: give 1 or more")
    if nodes > 1 and (tls or audit_log):
        raise DevStackError(
            "set up the dev stack", f"nodes={nodes} runs without TLS and audit log: give nodes=1"
        )
    return nodes


def node_config(
    node_dir: Path, node_id: str, port: int, peers: Sequence[str], seal_key: Path
) -> str:
    """The HCL of one node: its API on `port`, raft traffic on `port + 1`, joining `peers`."""
    joins = "".join(f'  retry_join {{ leader_api_addr = "{peer}" }}\n' for peer in peers)
    return (
        f'storage "raft" {{\n  path = "{node_dir / "raft"}"\n  node_id = "{node_id}"\n'
        f"  performance_multiplier = {_RAFT_TIMING}\n"
        f'  autopilot_update_interval = "{_AUTOPILOT_UPDATE}"\n'
        f'  autopilot_reconcile_interval = "{_AUTOPILOT_INTERVAL}"\n{joins}}}\n'
        'listener "tcp" {\n'
        f'  address = "127.0.0.1:{port}"\n  cluster_address = "127.0.0.1:{port + 1}"\n'
        "  tls_disable = true\n}\n"
        f'seal "static" {{\n  current_key_id = "devstack-1"\n  current_key = "file://{seal_key}"\n}}\n'
        f'api_addr = "http://127.0.0.1:{port}"\ncluster_addr = "https://127.0.0.1:{port + 1}"\n'
        'log_level = "warn"\n'
    )


def _distinct_port_pairs(count: int) -> list[int]:
    """`count` free ports p, each with p + 1 free too, no two pairs overlapping."""
    ports: list[int] = []
    taken: set[int] = set()
    while len(ports) < count:
        port = free_port_pair()
        if not {port, port + 1} & taken:
            ports.append(port)
            taken |= {port, port + 1}
    return ports


class ClusterNode(OpenBaoServer):
    """One `bao server` of the cluster; its config, raft data and log in its own 0700 directory."""

    def __init__(self, binary: Path, node_dir: Path, index: int, port: int) -> None:
        super().__init__(binary, node_dir, port)
        self.index = index
        self.node_id = f"node-{index}"
        self.config_path = node_dir / "bao.hcl"
        self.root_token = ""  # known once the cluster is initialised

    def prepare(self, peers: Sequence[str], seal_key: Path) -> None:
        """Create the node's private directories and its config file."""
        for path in (self.workdir, self.workdir / "raft", self.workdir / "bao-home"):
            make_private_dir(path)
        write_private_file(
            self.config_path, node_config(self.workdir, self.node_id, self.port, peers, seal_key)
        )

    def spawn(self) -> None:
        """Start `bao server` (from the thread that will outlive it: it dies with that thread)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(self.workdir / "bao-home")
        argv = [str(self.binary), "server", f"-config={self.config_path}"]
        self.process = ServerProcess(f"bao {self.node_id}", argv, self.log_path, env=env)

    def use_token(self, token: str) -> None:
        """Send `token` with every later call (the cluster's root token)."""
        if self._http is not None:
            self._http.close()
            self._http = None
        self.root_token = token

    def state(self) -> str:
        """active, standby, sealed, uninitialized, or down (no process or no answer)."""
        if self.process is None or not self.process.running():
            return "down"
        http = self._client()
        assert http is not None
        try:
            code = http.get("/v1/sys/health", timeout=2.0).status_code
        except httpx.TransportError:
            return "down"
        return _HEALTH_STATES.get(code, f"http-{code}")

    def seal(self, timeout: float) -> None:
        """PUT sys/seal; again while the node answers 500 (it does just after stepping down)."""
        http = self._client()
        assert http is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                # Just after a step-down the call can take about 10 s before it returns.
                response = http.put("/v1/sys/seal", timeout=timeout)
            except httpx.TransportError as exc:
                raise DevStackError(f"seal {self.node_id}", str(exc), self.tail()) from exc
            if response.status_code < 400:
                return
            if response.status_code != 500 or time.monotonic() > deadline:
                raise DevStackError(
                    f"seal {self.node_id}", f"PUT /v1/sys/seal -> {response.status_code}",
                    self.tail(),
                )
            time.sleep(0.2)

    def tail(self) -> str:
        return self.process.tail() if self.process is not None else ""

    def unseal_key(self) -> str:
        raise DevStackError(
            "read the unseal key", "a cluster node has none: its static seal unseals it at start"
        )


class OpenBaoCluster:
    """`size` OpenBao servers sharing raft storage, initialised through the API.

    Each node unseals itself from one 32-byte key file (OpenBao's `static` seal), so a node
    that is killed or stopped comes back unsealed when started again. The root token and the
    recovery key go to `bao-init.json`; both files are 0600 inside the stack's 0700 work dir.
    Start, stop and kill nodes from the thread that started the stack: a node dies with the
    thread that spawned it.
    """

    def __init__(self, binary: Path, workdir: Path, size: int) -> None:
        self.seal_key = workdir / "bao-seal.key"
        self.init_file = workdir / "bao-init.json"
        self.nodes = [
            ClusterNode(binary, workdir / f"bao-node-{i}", i, port)
            for i, port in enumerate(_distinct_port_pairs(size))
        ]
        self._init_thread: threading.Thread | None = None
        self._init_error: Exception | None = None

    @property
    def addrs(self) -> list[str]:
        return [node.addr for node in self.nodes]

    @property
    def root_token(self) -> str:
        return self.nodes[0].root_token

    # -- lifecycle -----------------------------------------------------------------------------

    def spawn(self) -> None:
        """Write the seal key and the configs, start every node."""
        with os.fdopen(create_private_file(self.seal_key), "wb") as key:
            key.write(secrets.token_bytes(32))
        for node in self.nodes:
            node.prepare([peer.addr for peer in self.nodes if peer is not node], self.seal_key)
        for node in self.nodes:
            node.spawn()
        # Initialising takes seconds; it runs while the caller starts PostgreSQL.
        self._init_thread = threading.Thread(
            target=self._initialise_in_background, name="openbao-init", daemon=True
        )
        self._init_thread.start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the cluster is initialised and its first node active."""
        if self._init_thread is not None:
            self._init_thread.join(timeout)
            if self._init_thread.is_alive():
                raise DevStackError("initialise OpenBao", f"not done in {timeout:.0f} s")
            self._init_thread = None
        if self._init_error is not None:
            raise self._init_error

    def _initialise_in_background(self) -> None:
        try:
            self._initialise(timeout=60.0)
        except Exception as exc:  # handed to wait_ready, raised there
            self._init_error = exc

    def _initialise(self, timeout: float) -> None:
        """Initialise the cluster through its first node and wait until that node is active."""
        first = self.nodes[0]
        for node in self.nodes:
            self._wait_node(node, lambda n: n.state() != "down", timeout, "answer")
        answer = first.call(
            "PUT", "sys/init", "initialise the OpenBao cluster",
            {"recovery_shares": 1, "recovery_threshold": 1},
        )
        token: str = answer["root_token"]
        write_private_file(
            self.init_file,
            json.dumps({"root_token": token, "recovery_keys_b64": answer["recovery_keys_base64"]}),
        )
        for node in self.nodes:
            node.use_token(token)
        self._wait_node(first, lambda n: n.state() == "active", timeout, "become active")
        first.call(
            "POST", "sys/storage/raft/autopilot/configuration", "configure autopilot",
            {"server_stabilization_time": _STABILIZATION},
        )

    def wait_formed(self, timeout: float = 60.0) -> None:
        """Wait until one node is active, the others standbys, and every node votes."""
        deadline = time.monotonic() + timeout
        states: list[str] = []
        while time.monotonic() < deadline:
            states = self.states()
            if sorted(states) == ["active"] + ["standby"] * (len(states) - 1):
                leader = self.nodes[states.index("active")]
                config = leader.call(
                    "GET", "sys/storage/raft/configuration", "read the raft configuration"
                )
                servers = config["data"]["config"]["servers"]
                if len(servers) == len(self.nodes) and all(s["voter"] for s in servers):
                    return
            time.sleep(0.2)
        raise DevStackError(
            "form the OpenBao cluster", f"nodes not all voting after {timeout:.0f} s: {states}"
        )

    def stop(self) -> None:
        """Stop every node by PID: all are told at once, then each is waited for."""
        for node in self.nodes:
            if node.process is not None:
                node.process.signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()
        if self._init_thread is not None:
            self._init_thread.join(15)  # its nodes are gone: it ends at once

    # -- operating the cluster from tests ----------------------------------------------------------

    def states(self) -> list[str]:
        """Each node's state, in node order: active, standby, sealed, uninitialized or down."""
        return [node.state() for node in self.nodes]

    def active(self, timeout: float = 30.0) -> ClusterNode:
        """The node that is active now, waiting (up to `timeout`) while an election runs."""
        deadline = time.monotonic() + timeout
        states: list[str] = []
        while time.monotonic() < deadline:
            states = self.states()
            if states.count("active") == 1:
                return self.nodes[states.index("active")]
            time.sleep(0.1)
        raise DevStackError("find the active node", f"none after {timeout:.0f} s: {states}")

    def step_down(self, timeout: float = 30.0) -> ClusterNode:
        """Ask the active node to step down; return the node that becomes active instead."""
        old = self.active(timeout)
        old.call("PUT", "sys/step-down", f"step down {old.node_id}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.active(max(deadline - time.monotonic(), 0.1))
            if new is not old:
                return new
            time.sleep(0.1)
        raise DevStackError("step down", f"{old.node_id} still active after {timeout:.0f} s")

    def kill(self, index: int) -> None:
        """SIGKILL node `index` (by PID): no chance to hand over leadership."""
        process = self.nodes[index].process
        if process is not None:
            process.kill()

    def stop_node(self, index: int) -> None:
        """Stop node `index` politely (SIGTERM by PID)."""
        self.nodes[index].stop()

    def start_node(self, index: int, timeout: float = 60.0) -> None:
        """Start node `index` again; wait until it is unsealed (its static seal) and serving."""
        node = self.nodes[index]
        node.stop()
        node.spawn()
        self._wait_node(node, lambda n: n.state() in ("active", "standby"), timeout, "rejoin")

    def seal(self, index: int, timeout: float = 30.0) -> None:
        """Seal node `index` through its API; it stays sealed until started again."""
        node = self.nodes[index]
        node.seal(timeout)
        self._wait_node(node, lambda n: n.state() == "sealed", timeout, "seal")

    @staticmethod
    def _wait_node(
        node: ClusterNode, ready: Callable[[ClusterNode], bool], timeout: float, what: str
    ) -> None:
        assert node.process is not None
        node.process.wait_until(
            lambda: ready(node), timeout=timeout, step=f"wait for {node.node_id} to {what}"
        )
