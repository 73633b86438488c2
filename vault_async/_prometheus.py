"""Prometheus text exposition for the lease engine's state, and a Vault latency recorder.

Kept dependency-free: the format is a few lines per metric
(https://prometheus.io/docs/instrumenting/exposition_formats/).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["LatencyRecorder", "LatencyTransport", "MetricFamily", "render"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class MetricFamily:
    """One metric: name, type, help, and samples as (labels, value)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[Mapping[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> MetricFamily:
        self.samples.append((labels, value))
        return self


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _format_labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(val)}"' for key, val in sorted(labels.items()))
    return "{" + inner + "}"


def render(families: Iterable[MetricFamily]) -> str:
    """The text exposition format (version 0.0.4) of ``families``."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            suffix = labels.get("__suffix__", "")
            shown = {k: v for k, v in labels.items() if k != "__suffix__"}
            lines.append(f"{family.name}{suffix}{_format_labels(shown)} {_format_value(value)}")
    return "\n".join(lines) + "\n"


class LatencyRecorder:
    """A histogram of Vault request durations, in seconds."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0
        self.last_success: float | None = None
        """``time.monotonic()`` of the last request that got an HTTP response."""
        self.last_failure: float | None = None
        """``time.monotonic()`` of the last request that got no response (refused, timed out)."""

    def observe(self, seconds: float, *, answered: bool) -> None:
        self.total += 1
        self.sum += seconds
        for index, bound in enumerate(self.buckets):
            if seconds <= bound:
                self.counts[index] += 1
        if answered:
            self.last_success = time.monotonic()
        else:
            self.last_failure = time.monotonic()

    def mark_answered(self) -> None:
        """Note that Vault answered (for clients whose transport is not wrapped)."""
        self.last_success = time.monotonic()

    def mark_failed(self) -> None:
        """Note that Vault did not answer (for clients whose transport is not wrapped)."""
        self.last_failure = time.monotonic()

    def family(self, name: str) -> MetricFamily:
        family = MetricFamily(name, "histogram", "Duration of Vault HTTP requests in seconds.")
        for bound, count in zip(self.buckets, self.counts, strict=True):
            family.add(count, __suffix__="_bucket", le=_format_value(bound))
        family.add(self.total, __suffix__="_bucket", le="+Inf")
        family.add(self.sum, __suffix__="_sum")
        family.add(self.total, __suffix__="_count")
        return family


class LatencyTransport(httpx.AsyncBaseTransport):
    """Wrap a transport and record how long each Vault request takes."""

    def __init__(self, inner: httpx.AsyncBaseTransport, recorder: LatencyRecorder) -> None:
        self._inner = inner
        self.recorder = recorder

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        answered = False
        try:
            response = await self._inner.handle_async_request(request)
            answered = True
            return response
        finally:
            self.recorder.observe(time.perf_counter() - started, answered=answered)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> LatencyTransport:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self._inner.__aexit__(*args)
