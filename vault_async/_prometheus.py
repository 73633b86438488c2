"""Prometheus metrics of a :class:`VaultRuntime`, through ``prometheus_client``.

Each runtime has its own ``CollectorRegistry`` (never the process-wide default one, so two
runtimes in one process do not clash): a collector that reads the lease engine's snapshot
at scrape time, and a histogram of Vault request latency. Labels name secrets by their
mount path (``database/app``), never by lease id; no value is a password or a token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import httpx
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ._config import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT
from ._nodes import HEALTH_QUERY, NODE_STATES
from ._transport import RawResponse, Transport, as_transport

if TYPE_CHECKING:
    from .runtime import VaultRuntime

__all__ = [
    "LatencyRecorder",
    "LatencyTransport",
    "RuntimeCollector",
    "metric_families",
    "runtime_registry",
]

LATENCY_METRIC = "vault_async_vault_request_duration_seconds"
LATENCY_HELP = "Duration of Vault HTTP requests in seconds."
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SECRET_LABELS = ("kind", "secret")


class LatencyRecorder:
    """A histogram of Vault request durations, in seconds, and when Vault last answered.

    The histogram is not registered anywhere; each runtime registers it on its own registry.
    """

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.histogram = Histogram(
            LATENCY_METRIC,
            LATENCY_HELP,
            buckets=buckets,
            registry=None,
        )
        self.last_success: float | None = None
        """``time.monotonic()`` of the last request that got an HTTP response."""
        self.last_failure: float | None = None
        """``time.monotonic()`` of the last request that got no response (refused, timed out)."""
        self.mirror: Callable[[float], None] | None = None
        """Also given each duration (``vault_async.otel`` records it in its histogram)."""

    def observe(self, seconds: float, *, answered: bool) -> None:
        """Record one request's duration and whether Vault answered it."""
        self.histogram.observe(seconds)
        if self.mirror is not None:
            self.mirror(seconds)
        if answered:
            self.mark_answered()
        else:
            self.mark_failed()

    def mark_answered(self) -> None:
        """Note that Vault answered (for clients whose transport is not wrapped)."""
        self.last_success = time.monotonic()

    def mark_failed(self) -> None:
        """Note that Vault did not answer (for clients whose transport is not wrapped)."""
        self.last_failure = time.monotonic()


class LatencyTransport(Transport):
    """Wrap the client's transport and record how long each Vault request takes.

    It sits on the client's own interface, so the default (aiohttp) transport keeps its
    fast path underneath; an httpx transport is adapted as the client would adapt it, with
    ``timeout``, ``max_response_bytes`` and ``server_name`` (the TLS name verified), which
    should be the client's settings. A ``Transport`` passed in enforces its own.
    """

    def __init__(
        self,
        inner: Transport | httpx.AsyncBaseTransport,
        recorder: LatencyRecorder,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        server_name: str | None = None,
    ) -> None:
        self._inner = as_transport(inner, timeout, max_response_bytes, server_name)
        self.recorder = recorder

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None
    ) -> RawResponse:
        if url.endswith(HEALTH_QUERY):  # the node watcher's probe, not the service's traffic
            return await self._inner.send(method, url, headers, content)
        started = time.perf_counter()
        answered = False
        try:
            response = await self._inner.send(method, url, headers, content)
            answered = True
            return response
        finally:
            self.recorder.observe(time.perf_counter() - started, answered=answered)

    async def aclose(self) -> None:
        await self._inner.aclose()


def metric_families(runtime: VaultRuntime) -> list[Metric]:
    """Renewals, rotations, failures, ttl remaining per secret; pool swaps and login retries.

    Counters are named without ``_total``: ``prometheus_client`` adds it
    (``vault_async_renewals_total``).
    """
    renewals = CounterMetricFamily(
        "vault_async_renewals", "Successful renewals.", labels=_SECRET_LABELS
    )
    rotations = CounterMetricFamily(
        "vault_async_rotations", "Credential rotations.", labels=_SECRET_LABELS
    )
    failures = CounterMetricFamily(
        "vault_async_failures", "Failed renewals or acquisitions.", labels=_SECRET_LABELS
    )
    consecutive = GaugeMetricFamily(
        "vault_async_consecutive_failures",
        "Failures since the last success.",
        labels=_SECRET_LABELS,
    )
    ttl = GaugeMetricFamily(
        "vault_async_ttl_remaining_seconds", "Seconds of validity left.", labels=_SECRET_LABELS
    )
    for name, state in sorted(runtime.snapshot().items()):
        labels = [str(state.kind), str(name)]
        renewals.add_metric(labels, state.renewals)
        rotations.add_metric(labels, state.rotations)
        failures.add_metric(labels, state.total_failures)
        consecutive.add_metric(labels, state.consecutive_failures)
        if state.ttl_remaining is not None:
            ttl.add_metric(labels, state.ttl_remaining)
    stats = runtime.binding.stats
    return [
        *_node_families(runtime),
        renewals,
        rotations,
        failures,
        consecutive,
        ttl,
        CounterMetricFamily(
            "vault_async_pool_swaps", "Pool swaps on rotation.", value=stats.pool_swaps
        ),
        CounterMetricFamily(
            "vault_async_pool_connects",
            "Connections opened by the pool, pre-warmed ones included.",
            value=stats.connects,
        ),
        CounterMetricFamily(
            "vault_async_pool_prewarmed",
            "Connections a rotation opened before switching the pool to them.",
            value=getattr(stats, "prewarmed", 0),
        ),
        CounterMetricFamily(
            "vault_async_login_retries",
            "Connects retried after a rejected login.",
            value=stats.login_retries,
        ),
    ]


def _node_families(runtime: VaultRuntime) -> list[Metric]:
    """Each Vault node's state (1 for the state it is in) and which node answered last."""
    nodes = runtime.vault_nodes
    if not nodes:
        return []
    state = GaugeMetricFamily(
        "vault_async_vault_node_state",
        "1 for the Vault node's last-known state, 0 for the others.",
        labels=("node", "state"),
    )
    last = GaugeMetricFamily(
        "vault_async_vault_last_node",
        "1 for the Vault node that answered last.",
        labels=("node",),
    )
    last_node = runtime.vault_last_node
    for node in nodes:
        for name in NODE_STATES:
            state.add_metric([node.addr, name], float(node.state == name))
        last.add_metric([node.addr], float(node.addr == last_node))
    return [state, last]


class RuntimeCollector:
    """A ``prometheus_client`` collector: :func:`metric_families` read at scrape time."""

    def __init__(self, runtime: VaultRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(self._runtime)


def runtime_registry(runtime: VaultRuntime) -> CollectorRegistry:
    """A registry of the runtime's own: its lease engine's state and its Vault latency."""
    registry = CollectorRegistry()
    registry.register(RuntimeCollector(runtime))
    registry.register(runtime.latency.histogram)
    return registry
