"""The runtime's Prometheus metrics, mirrored as OpenTelemetry instruments.

There is one source: :func:`vault_async._prometheus.metric_families`. Each family found at
instrumentation becomes an observable counter or gauge of the same name whose callback reads
the families again at collection time, so both exporters show the same numbers. The latency
histogram is fed by the same ``LatencyRecorder.observe`` call as the Prometheus one.
Counters keep Prometheus' family name (``vault_async_renewals``): an OpenTelemetry
Prometheus exporter adds ``_total`` as ``prometheus_client`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from prometheus_client.core import Metric

from .._prometheus import LATENCY_BUCKETS, LATENCY_HELP, LATENCY_METRIC, metric_families

if TYPE_CHECKING:
    from ..runtime import VaultRuntime

__all__ = ["RuntimeInstruments"]


class RuntimeInstruments:
    """Observable instruments over a runtime's metric families, and its latency histogram."""

    def __init__(self, runtime: VaultRuntime, meter: Meter) -> None:
        self._runtime = runtime
        self._open = True
        for family in metric_families(runtime):
            create = (
                meter.create_observable_counter
                if family.type == "counter"
                else meter.create_observable_gauge
            )
            create(
                family.name, callbacks=[self._reader(family.name)], description=family.documentation
            )
        histogram = meter.create_histogram(
            LATENCY_METRIC,
            unit="s",
            description=LATENCY_HELP,
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        runtime.latency.mirror = histogram.record

    def _reader(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def read(options: CallbackOptions) -> Iterable[Observation]:
            if not self._open:
                return []
            for family in metric_families(self._runtime):
                if family.name == name:
                    return _observations(family)
            return []

        return read

    def close(self) -> None:
        """Stop reporting (an OpenTelemetry instrument cannot be removed, only silenced)."""
        self._open = False
        self._runtime.latency.mirror = None


def _observations(family: Metric) -> list[Observation]:
    """The family's samples; a counter's ``_created`` samples are not values."""
    wanted = family.name + "_total" if family.type == "counter" else family.name
    return [
        Observation(sample.value, dict(sample.labels))
        for sample in family.samples
        if sample.name == wanted
    ]
