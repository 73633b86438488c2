"""OTEL_ENABLED: the service's Vault requests and lease events as spans, its metrics mirrored.

The service only attaches ``vault_async.otel`` to its lease manager (before start-up, so the
first login and credential are traced) and to its runtime (the metrics). Where the spans
and metrics go is OpenTelemetry's own configuration: the global providers, set up from the
standard ``OTEL_*`` variables by ``opentelemetry-instrument`` or by the deployment's own
SDK set-up. With the API alone they are no-ops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the settings import this module: it stays light
    from vault_async.lifecycle import LeaseManager
    from vault_async.runtime import VaultRuntime

__all__ = ["OTEL_MISSING", "otel_installed", "traced"]

OTEL_MISSING = "is true but OpenTelemetry is not installed: pip install 'vault-async[otel]'"


def otel_installed() -> bool:
    """True when the OpenTelemetry API can be imported."""
    try:
        import opentelemetry.metrics
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return False
    return True


@asynccontextmanager
async def traced(
    opened: AbstractAsyncContextManager[VaultRuntime], manager: LeaseManager | None
) -> AsyncIterator[VaultRuntime]:
    """``opened`` with ``manager`` (None in plain mode) traced and the runtime's metrics."""
    from vault_async.otel import instrument, instrument_metrics

    traces = None if manager is None else instrument(manager)
    try:
        async with opened as runtime:
            measures = instrument_metrics(runtime)
            try:
                yield runtime
            finally:
                measures.uninstrument()
    finally:
        if traces is not None:
            traces.uninstrument()
