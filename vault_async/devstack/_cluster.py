"""A cluster of OpenBao servers on 127.0.0.1: raft storage, a static seal, one active node."""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ._cluster_node import ClusterNode, checked_nodes, distinct_port_pairs
from ._errors import DevStackError
from ._private import create_private_file, write_private_file

__all__ = ["ClusterNode", "OpenBaoCluster", "checked_nodes"]

# Standbys join as non-voters; autopilot promotes them once stable this long (default 10 s).
_STABILIZATION = "1s"


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
            for i, port in enumerate(distinct_port_pairs(size))
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
