"""Which node of an HA cluster the client talks to, and what it knows of each node.

The client sends to the node that last answered. When that node fails (no connection, sealed,
a standby without a leader) it moves to the next node, preferring one last seen active, then
a standby, then one not checked yet, in the configured order after the failed one. With two
or more nodes a background task asks each node's ``sys/health`` every
:data:`HEALTH_INTERVAL` seconds, and at once after a failure, so the classification never
sits on the request path; it also moves the client off a node it finds sealed or down.
With one address (a load balancer, a DNS name) nothing here runs: no task, no request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import urlsplit

import httpx

from ._exceptions import ResponseTooLarge
from ._transport import RawResponse, Transport

__all__ = [
    "HEALTH_INTERVAL",
    "HEALTH_QUERY",
    "HEALTH_TIMEOUT",
    "NODE_STATES",
    "NodeState",
    "NodeStatus",
    "Nodes",
    "health_state",
]

logger = logging.getLogger("vault_async.client")

NodeState = Literal["active", "standby", "sealed", "down", "unknown"]
NODE_STATES: tuple[NodeState, ...] = get_args(NodeState)

HEALTH_INTERVAL = 5.0
"""Seconds between two rounds of ``sys/health`` checks (a failure starts one at once)."""
HEALTH_TIMEOUT = 2.0
"""Seconds a node has to answer ``sys/health`` before it counts as down."""
HEALTH_QUERY = (
    "sys/health?standbycode=429&perfstandbyok=false&performancestandbycode=473"
    "&drsecondarycode=472&sealedcode=503&uninitcode=501"
)
"""Vault's own defaults, spelled out so that each kind of node answers its own code."""

_HEALTH_HEADERS = {"X-Vault-Request": "true", "Accept-Encoding": "identity"}
"""The probe's headers: no token, and no namespace (OpenBao answers 400 in a namespace)."""

_RANK: dict[NodeState, int] = {"active": 0, "standby": 1, "unknown": 2, "sealed": 3, "down": 3}
_NOT_ACTIVE = b"local node not active"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def health_state(status: int) -> NodeState:
    """A node's state from its ``sys/health`` status code (asked with :data:`HEALTH_QUERY`)."""
    if status == 200:
        return "active"
    if status in (429, 472, 473):
        return "standby"
    if status in (501, 503):
        return "sealed"  # an uninitialized node is sealed too
    return "down"


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What the client last knew of one node: its address, state and when it was checked.

    ``last_checked`` is on the client's clock (``time.monotonic`` unless one was given);
    None until the node was first checked or failed.
    """

    addr: str
    state: NodeState
    last_checked: float | None


def _origin(addr: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(addr)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


class Nodes:
    """The node list, the node in use, each node's last-known state, and the watcher task."""

    def __init__(self, addrs: Sequence[str], clock: Callable[[], float]) -> None:
        self.addrs = tuple(addrs)
        self.bases = tuple(addr + "/v1/" for addr in self.addrs)
        """Each node's API root, ready for a path to be appended."""
        self.many = len(self.addrs) > 1
        self.current = 0
        """The index of the node requests go to: the one that last answered."""
        self.last_node: str | None = None
        self._clock = clock
        self._states: list[NodeState] = ["unknown"] * len(self.addrs)
        self._checked: list[float | None] = [None] * len(self.addrs)
        self._origins = [_origin(addr) for addr in self.addrs]
        self._watcher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._warned: set[tuple[int, str]] = set()
        """(node, error class) pairs already logged: each unexpected check error once."""

    def statuses(self) -> tuple[NodeStatus, ...]:
        return tuple(
            NodeStatus(addr, state, checked)
            for addr, state, checked in zip(self.addrs, self._states, self._checked, strict=True)
        )

    # -- the request path ------------------------------------------------------------------

    def answered(self, index: int) -> None:
        """Node ``index`` answered: it is the one requests go to from now on."""
        self.current = index
        self.last_node = self.addrs[index]

    def failed(self, index: int, reason: str, state: NodeState | None) -> int:
        """Node ``index`` failed (``state``: what that says of it); the node to use next.

        Only the first of several requests failing on the same node moves the client.
        """
        if state is not None:
            self._set(index, state)
        if index == self.current:
            self._move(self._next_after(index), reason)
        self._wake.set()
        return self.current

    def unfit_reason(self, response: RawResponse) -> tuple[str, NodeState | None] | None:
        """Why an answer means this node cannot serve now (and what state that shows), or None."""
        status = response.status
        if status == 503:
            return "status 503 (sealed)", "sealed"
        if status == 500 and _NOT_ACTIVE in response.content[:2000]:
            return "status 500 (local node not active)", None
        return None

    def redirect(self, index: int, location: str | None) -> int | None:
        """Where a 307 from node ``index`` sends the request again, or None: not followed.

        Only to a listed node (never an arbitrary ``Location``). When that node was last seen
        down or sealed (a standby still pointing at a dead leader), the client moves on from
        ``index`` instead and the request goes to the node it moved to.
        """
        target = self._listed(location)
        if target is None or _RANK[self._states[target]] < _RANK["down"]:
            return target
        return self.failed(index, f"status 307 to a node that is {self._states[target]}", None)

    def _listed(self, location: str | None) -> int | None:
        origin = _origin(location) if location else None
        if origin is None:
            return None
        with contextlib.suppress(ValueError):
            return self._origins.index(origin)
        return None

    # -- choosing a node ---------------------------------------------------------------------

    def _next_after(self, index: int) -> int:
        """The best other node by last-known state, the first in list order after ``index``."""
        count = len(self.addrs)
        others = [(index + step) % count for step in range(1, count)]
        if not others:
            return index
        return min(others, key=lambda i: _RANK[self._states[i]])

    def untried(self, index: int, tried: Collection[int]) -> int | None:
        """The best node not in ``tried`` (ranked as :meth:`_next_after`), or None: all were."""
        count = len(self.addrs)
        others = [(index + step) % count for step in range(1, count)]
        left = [i for i in others if i not in tried]
        return min(left, key=lambda i: _RANK[self._states[i]]) if left else None

    def _move(self, to: int, reason: str) -> None:
        if to == self.current:
            return
        logger.info(
            "client.failover",
            extra={
                "from_node": self.addrs[self.current],
                "to_node": self.addrs[to],
                "reason": reason,
            },
        )
        self.current = to

    def _set(self, index: int, state: NodeState) -> None:
        self._states[index] = state
        self._checked[index] = self._clock()

    # -- the watcher --------------------------------------------------------------------------

    def watch(self, transport: Transport) -> None:
        """Start the ``sys/health`` watcher (once; only for two or more nodes)."""
        if self.many and self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(
                self._run(transport), name="vault-async-node-health"
            )

    async def stop(self) -> None:
        """Stop the watcher (the client's ``aclose``); it may be started again later."""
        task = self._watcher
        if task is not None:
            task.cancel()
            try:  # still set while it stops: no second watcher starts meanwhile
                await asyncio.wait((task,))  # never raises what the task raised
            finally:
                self._watcher = None
            if not task.cancelled() and task.exception() is not None:
                logger.warning(
                    "client.node_watcher_failed",
                    extra={"error_class": type(task.exception()).__name__},
                )

    async def _run(self, transport: Transport) -> None:
        while True:
            self._wake.clear()
            states = await asyncio.gather(
                *(self._check(transport, index) for index in range(len(self.bases)))
            )
            for index, state in enumerate(states):
                self._set(index, state)
            current = self.current
            if _RANK[self._states[current]] == _RANK["down"]:
                best = self._next_after(current)
                if _RANK[self._states[best]] < _RANK["down"]:
                    self._move(best, f"sys/health: {self._states[current]}")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEALTH_INTERVAL):
                    await self._wake.wait()

    async def _check(self, transport: Transport, index: int) -> NodeState:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                response = await transport.send(
                    "GET", self.bases[index] + HEALTH_QUERY, _HEALTH_HEADERS, None
                )
        except (httpx.TransportError, ResponseTooLarge, TimeoutError):
            return "down"
        except Exception as exc:  # one odd answer (or a bug) must not end the watcher
            kind = type(exc).__name__
            if (index, kind) not in self._warned:
                self._warned.add((index, kind))
                logger.warning(
                    "client.node_check_failed",
                    extra={"node": self.addrs[index], "error_class": kind},
                )
            return "unknown"
        return health_state(response.status)
