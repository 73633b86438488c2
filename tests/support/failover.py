"""The reference service on a three-node OpenBao cluster, under load, watched while nodes fail.

Shared by tests/faults/test_cluster_faults.py and benchmarks/failover.py. The load runs on a
thread of its own (its own event loop); /healthz and the service's `v-` logins in PostgreSQL
are sampled on another. The calling thread stays free to kill, stop and start nodes, which
it must do itself: a node started from a thread dies with that thread.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.load import LoadResult, run_load
from tests.support.service import ServiceProcess
from vault_async.devstack import DevStack

__all__ = [
    "LEASE_MAX_TTL",
    "LEASE_TTL",
    "ROLE",
    "STEP_DOWN_LEASE",
    "STEP_DOWN_ROLE",
    "Kill",
    "LoadRun",
    "Sample",
    "Watch",
    "failover_env",
    "kill_active",
    "step_downs",
    "under_load",
    "wait_until_due",
]

ROLE = "failover"  # at most 8 characters: Vault truncates the role's name in the login name
LEASE_TTL, LEASE_MAX_TTL = "20s", "1m"
# A step-down leaves the cluster without an active node for 0.6 to about 8 s (measured on the
# dev stack): longer than a 20 s lease's last third. Its role has leases long enough that the
# renewal, due about a third of the lease before expiry, outlives such a gap.
STEP_DOWN_ROLE = "stepdown"
STEP_DOWN_LEASE = ("45s", "3m")
# With a 20 s lease the engine renews when about 5.3-6 s are left, and obtains a new
# credential 6.7 s before a capped lease ends (a third of the lease): a node lost while
# 6.7-7.5 s are left is lost just before the engine's next call to Vault.
DUE_WINDOW = (6.7, 7.5)


def failover_env(stack: DevStack, role: str = ROLE) -> dict[str, str]:
    """The service's environment: the first node in VAULT_ADDR, the others in
    VAULT_FAILOVER_ADDRS (as the stack gives them), `role` for its credentials."""
    env = stack.env() | {"VAULT_DB_ROLE": role, "VAULT_HEALTH_PROBE_INTERVAL": "1"}
    assert env["VAULT_FAILOVER_ADDRS"].split(",") == stack.vault_addrs[1:], "not a cluster"
    return env


@dataclass(frozen=True, slots=True)
class Sample:
    """One /healthz answer; `status` "no-answer" when the service did not answer."""

    at: float  # time.monotonic()
    status: str
    work: int  # the database credential's renewals plus rotations
    generation: int
    ttl_remaining: float | None
    last_node: str | None
    nodes: dict[str, str]

    @classmethod
    def parse(cls, at: float, body: dict[str, Any] | None) -> Sample:
        if body is None:
            return cls(at, "no-answer", -1, -1, None, None, {})
        db: dict[str, Any] = body.get("database") or {}
        vault: dict[str, Any] = body.get("vault") or {}
        return cls(
            at=at,
            status=str(body.get("status")),
            work=int(db.get("renewals", 0)) + int(db.get("rotations", 0)),
            generation=int(db.get("generation", 0)),
            ttl_remaining=db.get("ttl_remaining"),
            last_node=vault.get("last_node"),
            nodes={str(n["addr"]): str(n["state"]) for n in vault.get("nodes") or []},
        )


@dataclass
class Watch:
    """Samples /healthz every `every` s, and the role's live logins every `roles_every` s."""

    stack: DevStack
    base_url: str
    role: str = ROLE
    every: float = 0.1
    roles_every: float = 0.5
    samples: list[Sample] = field(default_factory=list)
    roles: list[tuple[float, int]] = field(default_factory=list)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="healthz-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        if self.error is not None:
            raise self.error

    def _main(self) -> None:
        try:
            asyncio.run(self._watch())
        except BaseException as exc:  # handed to stop(), raised there
            self.error = exc

    async def _watch(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as http:
            next_roles = 0.0
            while not self._stop.is_set():
                at = time.monotonic()
                try:
                    body: dict[str, Any] | None = (await http.get("/healthz")).json()
                except (httpx.HTTPError, ValueError):
                    body = None
                self.samples.append(Sample.parse(at, body))
                if at >= next_roles:
                    live = [r for r in await self.stack.v_roles() if f"-{self.role}-" in r]
                    self.roles.append((time.monotonic(), len(live)))
                    next_roles = at + self.roles_every
                await asyncio.sleep(max(0.0, at + self.every - time.monotonic()))

    def latest(self, within: float = 10) -> Sample:
        """The newest answered sample (waiting for the first one)."""
        return self.wait_for(lambda s: s.status != "no-answer", within, after=time.monotonic())

    def wait_for(
        self, predicate: Callable[[Sample], bool], within: float, *, after: float = -math.inf
    ) -> Sample:
        """The first sample taken at or after `after` that satisfies `predicate`."""
        deadline = time.monotonic() + within
        checked = 0
        while True:
            while checked < len(self.samples):
                sample = self.samples[checked]
                checked += 1
                if sample.at >= after and predicate(sample):
                    return sample
            if self.error is not None:
                raise self.error
            if time.monotonic() > deadline:
                last = self.samples[-1] if self.samples else None
                raise AssertionError(f"/healthz never got there in {within:g} s; last: {last}")
            time.sleep(0.05)

    def between(self, start: float, end: float = math.inf) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end]

    def most_roles(self, since: float = -math.inf) -> int:
        return max((count for at, count in self.roles if at >= since), default=0)

    def wait_for_roles(self, count: int, within: float) -> int:
        """Wait until the role's live logins number `count`; the last count seen."""
        deadline = time.monotonic() + within
        while True:
            seen = self.roles[-1][1] if self.roles else -1
            if seen == count or time.monotonic() > deadline or self.error is not None:
                return seen
            time.sleep(0.1)


@dataclass
class LoadRun:
    """The reference service's load generator on its own thread, until told to stop."""

    base_url: str
    concurrency: int = 4
    limit: float = 600.0  # seconds: the run ends by itself after this, whatever happens
    result: LoadResult | None = None
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="service-load", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            self.result = asyncio.run(run_load(
                self.base_url, concurrency=self.concurrency, duration=self.limit, stop=self._stop
            ))
        except BaseException as exc:  # handed to stop(), raised there
            self.error = exc

    def stop(self) -> LoadResult:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        if self.error is not None:
            raise self.error
        assert self.result is not None, "the load generator did not finish"
        return self.result


@dataclass
class Loaded:
    """What `under_load` yields: the watch now, the load's result once the block is left."""

    watch: Watch
    load: LoadRun
    result: LoadResult | None = None


@contextmanager
def under_load(
    stack: DevStack, service: ServiceProcess, *, concurrency: int = 4, role: str = ROLE
) -> Iterator[Loaded]:
    """Load `service` (on `role`'s credentials) and watch it for the duration of the block."""
    watch = Watch(stack, service.base_url, role)
    load = LoadRun(service.base_url, concurrency)
    loaded = Loaded(watch, load)
    watch.start()
    load.start()
    try:
        watch.latest()
        yield loaded
    finally:
        try:
            loaded.result = load.stop()
        finally:
            watch.stop()


def wait_until_due(watch: Watch, within: float = 40) -> Sample:
    """Wait for the moment just before the engine's next call to Vault for the credential."""
    low, high = DUE_WINDOW
    return watch.wait_for(
        lambda s: s.ttl_remaining is not None and low < s.ttl_remaining <= high,
        within, after=time.monotonic(),
    )


@dataclass(frozen=True, slots=True)
class Kill:
    """One SIGKILL of the active node: which, when, and when another node became active."""

    index: int
    addr: str
    killed_at: float
    elected_at: float
    new_addr: str

    @property
    def election(self) -> float:
        return self.elected_at - self.killed_at


def kill_active(stack: DevStack) -> Kill:
    """SIGKILL the active node; return once another node is active."""
    nodes = stack.cluster
    old = nodes.active()
    killed_at = time.monotonic()
    nodes.kill(old.index)
    new = nodes.active(timeout=60)
    return Kill(old.index, old.addr, killed_at, time.monotonic(), new.addr)


def step_downs(stack: DevStack, seconds: float, hold: float) -> list[tuple[str, float]]:
    """Step the active node down, again each time another has held the lead `hold` s.

    For `seconds`; each handover as (the node that became active, seconds without one).
    """
    handovers: list[tuple[str, float]] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        asked = time.monotonic()
        new = stack.cluster.step_down()
        handovers.append((new.addr, time.monotonic() - asked))
        time.sleep(hold)
    return handovers
