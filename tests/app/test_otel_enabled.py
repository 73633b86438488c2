"""OTEL_ENABLED=true: the service's first login and credential are traced, its metrics mirrored.

Run in a subprocess, which sets OpenTelemetry's global providers (set once per process) to
in-memory ones, as ``opentelemetry-instrument`` or FastAPI's auto-configuration would set
exporting ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, json
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.db import open_service_runtime
from app.settings import load_settings

spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

async def main():
    async with open_service_runtime(load_settings()):
        data = reader.get_metrics_data()
        return sorted({m.name for r in (data.resource_metrics if data else ())
                       for s in r.scope_metrics
                       for m in s.metrics})

names = asyncio.run(main())
print(json.dumps({"spans": sorted({s.name for s in spans.get_finished_spans()}),
                  "metrics": names}))
"""


def test_the_service_traces_its_start(migrated: DevStack) -> None:
    env = {**os.environ, **migrated.env(), "OTEL_ENABLED": "true", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.splitlines()[-1])
    assert {
        "POST auth/{mount}/login",
        f"GET {migrated.db_mount}/creds/{{role}}",
        "vault_async.lease.login",
        "vault_async.lease.acquire",
    } <= set(seen["spans"])
    assert {"vault_async_renewals", "vault_async_ttl_remaining_seconds"} <= set(seen["metrics"])
