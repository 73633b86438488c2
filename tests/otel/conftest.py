"""In-memory OpenTelemetry providers, and the check that no secret reached what they hold."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass
class Telemetry:
    """A tracer provider and a meter provider whose output stays in memory."""

    spans: InMemorySpanExporter
    tracer_provider: TracerProvider
    reader: InMemoryMetricReader
    meter_provider: MeterProvider

    def finished(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.spans.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name == name]

    def points(self, metric: str) -> list[NumberDataPoint]:
        """The data points of ``metric`` (a counter or a gauge) collected now."""
        data = self.reader.get_metrics_data()
        found: list[NumberDataPoint] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    if m.name == metric:
                        found += [p for p in m.data.data_points if isinstance(p, NumberDataPoint)]
        return found

    def texts(self) -> Iterator[str]:
        """Every string a span or a metric carries: names, attributes, events, statuses."""
        for span in self.finished():
            yield span.name
            yield span.status.description or ""
            yield from _values(span.attributes)
            for event in span.events:
                yield event.name
                yield from _values(event.attributes)
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    for point in m.data.data_points:
                        yield from _values(point.attributes)


def _values(attributes: object) -> Iterable[str]:
    for key, value in dict(attributes or {}).items():  # type: ignore[call-overload]
        yield str(key)
        yield str(value)


def assert_nothing_secret(telemetry: Telemetry, secrets: Iterable[str]) -> None:
    """No secret string is part of any span or metric text."""
    texts = list(telemetry.texts())
    assert texts
    for secret in {s for s in secrets if s}:
        leaked = [t for t in texts if secret in t]
        assert not leaked, f"a secret ({len(secret)} chars) appears in {len(leaked)} texts"


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(spans, tracer_provider, reader, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()
