"""``instrument``: attach the spans and instruments to a client, a lease manager or a runtime."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from .._client import AsyncVaultClient
from .._observe import RequestObserver
from ..lifecycle import LeaseManager, SecretKind
from ..runtime import VaultRuntime
from ._leases import LeaseSpans
from ._metrics import RuntimeInstruments
from ._requests import RequestSpans

__all__ = ["Instrumentation", "instrument", "instrument_metrics"]

SCOPE = "vault_async"
"""The instrumentation scope of every tracer and meter here."""


class Instrumentation:
    """What :func:`instrument` attached; :meth:`uninstrument` takes it all off again."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def uninstrument(self) -> None:
        """Detach, in reverse order; a client gets back the observer it had before, unless
        that one was taken off already (instrumentations removed out of order)."""
        while self._undo:
            self._undo.pop()()

    def _client(self, client: AsyncVaultClient, tracer: trace.Tracer) -> None:
        mine = RequestSpans(tracer, previous=client.request_observer)
        client.set_request_observer(mine)

        def undo() -> None:
            if client.request_observer is mine:
                client.set_request_observer(_still_wanted(mine.previous))
            else:  # another observer went on after this one: it stays, and skips this one
                mine.detached = True

        self._undo.append(undo)

    def _manager(self, manager: LeaseManager, tracer: trace.Tracer) -> None:
        def kind_of(name: str) -> SecretKind | None:
            try:
                return manager[name].kind
            except KeyError:
                return None

        if manager.client is not None:  # a client passed per secret is instrumented alone
            self._client(manager.client, tracer)
        self._undo.append(manager.subscribe(LeaseSpans(tracer, kind_of)))

    def _runtime(self, runtime: VaultRuntime, meter: metrics.Meter) -> None:
        instruments = RuntimeInstruments(runtime, meter)
        self._undo.append(instruments.close)


def _still_wanted(observer: RequestObserver | None) -> RequestObserver | None:
    """``observer``, or the first one behind it that was not taken off already."""
    while isinstance(observer, RequestSpans) and observer.detached:
        observer = observer.previous
    return observer


def instrument(
    target: AsyncVaultClient | LeaseManager | VaultRuntime,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Instrumentation:
    """Trace ``target``'s Vault requests; for a manager, its lease events; for a runtime, all
    of that and its metrics. The providers default to OpenTelemetry's global ones.

    A runtime's lease manager is traced when it is a :class:`LeaseManager`; instrument the
    client and manager before opening the runtime to see its first login and acquisition.
    """
    tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
    done = Instrumentation()
    if isinstance(target, AsyncVaultClient):
        done._client(target, tracer)
    elif isinstance(target, LeaseManager):
        done._manager(target, tracer)
    else:
        if isinstance(target.manager, LeaseManager):
            done._manager(target.manager, tracer)
        elif target.client is not None:
            done._client(target.client, tracer)
        done._runtime(target, metrics.get_meter(SCOPE, meter_provider=meter_provider))
    return done


def instrument_metrics(
    runtime: VaultRuntime, *, meter_provider: MeterProvider | None = None
) -> Instrumentation:
    """Only the runtime's metrics (its client and manager traced by :func:`instrument`)."""
    done = Instrumentation()
    done._runtime(runtime, metrics.get_meter(SCOPE, meter_provider=meter_provider))
    return done
