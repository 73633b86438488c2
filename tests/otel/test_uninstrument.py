"""Taking instrumentation off a client in any order leaves the observer still wanted."""

from __future__ import annotations

import pytest

from tests.otel.conftest import Telemetry
from vault_async import AsyncVaultClient
from vault_async.otel import instrument


@pytest.mark.parametrize("order", ["first-first", "last-first"])
async def test_uninstrument_in_any_order_restores_no_removed_observer(
    telemetry: Telemetry, order: str
) -> None:
    client = AsyncVaultClient(addr="http://127.0.0.1:9", token="")
    first = instrument(client, tracer_provider=telemetry.tracer_provider)
    by_first = client.request_observer
    second = instrument(client, tracer_provider=telemetry.tracer_provider)
    by_second = client.request_observer
    assert by_first is not None
    assert by_second is not by_first
    if order == "first-first":
        first.uninstrument()
        assert client.request_observer is by_second  # still instrumented by the second
        second.uninstrument()
    else:
        second.uninstrument()
        assert client.request_observer is by_first
        first.uninstrument()
    assert client.request_observer is None
    await client.aclose()


async def test_taking_off_the_middle_one_skips_it_later(telemetry: Telemetry) -> None:
    client = AsyncVaultClient(addr="http://127.0.0.1:9", token="")
    first = instrument(client, tracer_provider=telemetry.tracer_provider)
    by_first = client.request_observer
    middle = instrument(client, tracer_provider=telemetry.tracer_provider)
    last = instrument(client, tracer_provider=telemetry.tracer_provider)
    middle.uninstrument()
    last.uninstrument()
    assert client.request_observer is by_first  # not the middle one, taken off before
    first.uninstrument()
    assert client.request_observer is None
    await client.aclose()
