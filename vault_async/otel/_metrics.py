"""The runtime's Prometheus metrics, mirrored as OpenTelemetry instruments.

There is one source: :func:`vault_async._prometheus.metric_families`. Each family found at
instrumentation becomes an observable counter or gauge of the same name whose callback reads
the families again at collection time, so both exporters show the same numbers. The latency
histogram is fed by the same ``LatencyRecorder.observe`` call as the Prometheus one.
Several runtimes may share a meter: their points are told apart by a ``runtime`` label.
Counters keep Prometheus' family name (``vault_async_renewals``): an OpenTelemetry
Prometheus exporter adds ``_total`` as ``prometheus_client`` does.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from prometheus_client.core import Metric

from .._prometheus import LATENCY_BUCKETS, LATENCY_HELP, LATENCY_METRIC, metric_families

if TYPE_CHECKING:
    from ..runtime import VaultRuntime

__all__ = ["RuntimeInstruments"]


class RuntimeInstruments:
    """A runtime's metric families mirrored on a meter, and its latency histogram."""

    def __init__(self, runtime: VaultRuntime, meter: Meter) -> None:
        self._runtime = runtime
        self._mirror = _mirror_of(meter)
        self._serial = self._mirror.attach(runtime, meter)
        histogram = meter.create_histogram(  # the SDK hands every runtime the same histogram
            LATENCY_METRIC,
            unit="s",
            description=LATENCY_HELP,
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        runtime.latency.mirror = histogram.record

    def close(self) -> None:
        """Stop reporting this runtime (an instrument cannot be removed, only left empty)."""
        self._mirror.detach(self._serial)
        self._runtime.latency.mirror = None


class _MeterMirror:
    """One meter's observable instruments, each read from every runtime attached to it.

    The SDK registers an instrument name once per meter: a second ``create_observable_*``
    returns the first instrument and drops the new callback. So each name is created once,
    and its callback reads every runtime attached at collection time; while several are,
    their points carry a ``runtime`` label (1, 2... in order of attachment).
    """

    def __init__(self) -> None:
        self._names: set[str] = set()
        self._runtimes: weakref.WeakValueDictionary[int, VaultRuntime] = (
            weakref.WeakValueDictionary()
        )
        self._serials = itertools.count(1)

    def attach(self, runtime: VaultRuntime, meter: Meter) -> int:
        serial = next(self._serials)
        self._runtimes[serial] = runtime
        for family in metric_families(runtime):
            if family.name in self._names:
                continue
            self._names.add(family.name)
            create = (
                meter.create_observable_counter
                if family.type == "counter"
                else meter.create_observable_gauge
            )
            create(
                family.name, callbacks=[self._reader(family.name)], description=family.documentation
            )
        return serial

    def detach(self, serial: int) -> None:
        self._runtimes.pop(serial, None)

    def _reader(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def read(options: CallbackOptions) -> Iterable[Observation]:
            attached = sorted(self._runtimes.items())
            found: list[Observation] = []
            for serial, runtime in attached:
                label = {"runtime": str(serial)} if len(attached) > 1 else {}
                for family in metric_families(runtime):
                    if family.name == name:
                        found += _observations(family, label)
            return found

        return read


_MIRRORS: weakref.WeakKeyDictionary[Meter, _MeterMirror] = weakref.WeakKeyDictionary()


def _mirror_of(meter: Meter) -> _MeterMirror:
    """The mirror of ``meter`` (it never refers to the meter, so the meter can go)."""
    mirror = _MIRRORS.get(meter)
    if mirror is None:
        mirror = _MIRRORS[meter] = _MeterMirror()
    return mirror


def _observations(family: Metric, extra: dict[str, str]) -> list[Observation]:
    """The family's samples (plus ``extra`` labels); a counter's ``_created`` are not values."""
    wanted = family.name + "_total" if family.type == "counter" else family.name
    return [
        Observation(sample.value, dict(sample.labels) | extra)
        for sample in family.samples
        if sample.name == wanted
    ]
