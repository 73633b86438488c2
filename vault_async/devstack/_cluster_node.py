"""One node of the dev stack's OpenBao cluster: its config, its process, its state."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from ._errors import DevStackError
from ._openbao import OpenBaoServer
from ._private import make_private_dir, write_private_file
from ._processes import ServerProcess, free_port_pair

# What `sys/health` answers with its default codes, and "down" when nothing answers.
_HEALTH_STATES = {200: "active", 429: "standby", 501: "uninitialized", 503: "sealed"}
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


def distinct_port_pairs(count: int) -> list[int]:
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
