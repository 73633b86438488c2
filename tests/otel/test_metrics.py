"""Mirrored metrics of several runtimes on one meter provider (no server needed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from tests.otel.conftest import Telemetry
from vault_async._pool_binding import PoolStats
from vault_async._prometheus import LatencyRecorder
from vault_async.lifecycle import SecretState
from vault_async.otel import instrument_metrics
from vault_async.runtime import VaultRuntime


@dataclass
class _Binding:
    stats: PoolStats = field(default_factory=PoolStats)


@dataclass
class _Runtime:
    """What the metric families read from a runtime, and nothing else."""

    binding: _Binding = field(default_factory=_Binding)
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    vault_nodes: tuple[()] = ()
    vault_last_node: None = None

    def snapshot(self) -> Mapping[str, SecretState]:
        return {}


def _swaps(telemetry: Telemetry) -> dict[str, float]:
    return {
        str(dict(p.attributes or {}).get("runtime", "")): p.value
        for p in telemetry.points("vault_async_pool_swaps")
    }


def test_each_runtime_on_one_meter_provider_is_reported(telemetry: Telemetry) -> None:
    first, second = _Runtime(), _Runtime()
    first.binding.stats.pool_swaps, second.binding.stats.pool_swaps = 3, 5
    provider = telemetry.meter_provider
    one = instrument_metrics(cast(VaultRuntime, first), meter_provider=provider)
    assert _swaps(telemetry) == {"": 3}
    one.uninstrument()
    two = instrument_metrics(cast(VaultRuntime, second), meter_provider=provider)
    assert _swaps(telemetry) == {"": 5}  # the new runtime, not silence
    three = instrument_metrics(cast(VaultRuntime, first), meter_provider=provider)
    assert _swaps(telemetry) == {"2": 5, "3": 3}  # both live: a label tells them apart
    assert second.latency.mirror is not None
    two.uninstrument()
    assert second.latency.mirror is None
    assert _swaps(telemetry) == {"": 3}
    three.uninstrument()
    assert _swaps(telemetry) == {}
