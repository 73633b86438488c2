"""Spans and instruments against the real dev stack: requests, lease events, metrics.

Every test ends by checking that no token, password, secret id or lease id reached a
span or a metric.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import anyio
import pytest

from tests.otel.conftest import Telemetry, assert_nothing_secret
from vault_async import AppRoleAuth, AsyncVaultClient, InvalidRequest, VaultConnectionError
from vault_async._prometheus import LATENCY_METRIC, LatencyRecorder, LatencyTransport
from vault_async._transport import DefaultTransport
from vault_async.devstack import DevStack
from vault_async.lifecycle import EventKind, LeaseConfig, LeaseEvent, LeaseManager
from vault_async.otel import instrument, instrument_metrics
from vault_async.runtime import open_runtime

pytestmark = pytest.mark.integration

SHORT_ROLE = "otel-short"  # 4 s leases: the engine renews one within seconds


def refused_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def no_sleep(seconds: float) -> None:
    """The client's backoff, without the wait."""


async def test_request_spans_name_the_route_not_the_names(
    devstack: DevStack, telemetry: Telemetry
) -> None:
    client = AsyncVaultClient(addr=devstack.vault_addr, token=devstack.root_token, timeout=5.0)
    instrumentation = instrument(client, tracer_provider=telemetry.tracer_provider)
    async with client:
        creds = await client.secrets.database.generate_credentials(
            devstack.dynamic_role, devstack.db_mount
        )
        await client.sys.leases.renew(creds.lease_id)
        await client.sys.leases.revoke(creds.lease_id)
        with pytest.raises(InvalidRequest):
            await client.secrets.database.generate_credentials("no-such-role", devstack.db_mount)
    instrumentation.uninstrument()
    assert client.request_observer is None

    issued, failed = telemetry.named(f"GET {devstack.db_mount}/creds/{{role}}")
    assert issued.attributes == {
        "http.request.method": "GET",
        "url.template": f"{devstack.db_mount}/creds/{{role}}",
        "http.response.status_code": 200,
        "vault.node": devstack.vault_addr,
    }
    assert issued.status.is_ok
    assert failed.attributes is not None
    assert failed.attributes["http.response.status_code"] == 400
    assert failed.attributes["error.type"] == "InvalidRequest"
    assert not failed.status.is_ok
    assert not failed.events  # no exception event: its message is not copied
    (renew,) = telemetry.named("PUT sys/leases/renew/{lease_id}")
    (revoke,) = telemetry.named("PUT sys/leases/revoke/{lease_id}")
    for span in (renew, revoke):
        assert span.attributes is not None
        assert span.attributes["http.response.status_code"] in (200, 204)
    assert_nothing_secret(
        telemetry,
        [devstack.root_token, creds.lease_id, str(creds.data["password"]), "no-such-role"],
    )


async def test_retries_are_counted_on_one_span(telemetry: Telemetry) -> None:
    addr = f"http://127.0.0.1:{refused_port()}"
    client = AsyncVaultClient(addr=addr, token="s.not-a-real-token", max_retries=2, sleep=no_sleep)
    instrument(client, tracer_provider=telemetry.tracer_provider)
    async with client:
        with pytest.raises(VaultConnectionError):
            await client.secrets.kv_v2.read_secret("app/config")
    (span,) = telemetry.finished()
    assert span.name == "GET secret/data/{path}"
    assert span.attributes is not None
    assert span.attributes["http.request.resend_count"] == 2
    assert span.attributes["error.type"] == "VaultConnectionError"
    assert "http.response.status_code" not in span.attributes
    assert "vault.node" not in span.attributes  # no node answered
    assert_nothing_secret(telemetry, ["s.not-a-real-token", "app/config"])


async def next_event(manager: LeaseManager, name: str, kind: EventKind) -> LeaseEvent:
    """Wait (at most 20 s) for the next ``kind`` event of the secret ``name``."""
    send, receive = anyio.create_memory_object_stream[LeaseEvent](100)
    unsubscribe = manager[name].subscribe(send.send_nowait)
    try:
        with anyio.fail_after(20):
            while (event := await receive.receive()).kind != kind:
                pass
            return event
    finally:
        unsubscribe()
        send.close()
        receive.close()


def span_kinds(telemetry: Telemetry, secret: str) -> Iterator[tuple[str, str]]:
    for span in telemetry.finished():
        attributes = span.attributes or {}
        if attributes.get("vault.secret") == secret:
            yield span.name.removeprefix("vault_async.lease."), str(attributes["vault.secret.kind"])


async def test_lease_events_and_metrics(migrated: DevStack, telemetry: Telemetry) -> None:
    migrated.create_dynamic_role(SHORT_ROLE, "4s", "2m")
    latency = LatencyRecorder()
    transport = LatencyTransport(DefaultTransport(timeout=5.0), latency)
    client = AsyncVaultClient(addr=migrated.vault_addr, token="", transport=transport)
    manager = LeaseManager(client, LeaseConfig(drain_period=0.2))
    secrets: set[str] = {migrated.secret_id}

    def remember(event: LeaseEvent) -> None:  # every lease id, password and token seen
        current = manager[event.name].current
        if current is not None:
            secrets.add(current.lease_id)
            secrets.update(str(v) for k, v in current.data.items() if k != "username")
        secrets.add(client.token or "")

    manager.subscribe(remember)
    traces = instrument(manager, tracer_provider=telemetry.tracer_provider)
    async with open_runtime(
        migrated.database_url,
        client=client,
        manager=manager,
        auth=AppRoleAuth(migrated.role_id, secret_id=migrated.secret_id),
        db_role=SHORT_ROLE,
        latency=latency,
    ) as runtime:
        measures = instrument_metrics(runtime, meter_provider=telemetry.meter_provider)
        db, token = runtime.db_secret or "", runtime.token_secret or ""
        labels = {"kind": "database_dynamic", "secret": db}
        (before,) = [p.value for p in telemetry.points("vault_async_renewals")
                     if p.attributes == labels]
        await next_event(manager, db, "renewed")
        (after,) = [p.value for p in telemetry.points("vault_async_renewals")
                    if p.attributes == labels]
        assert after == before + 1
        await manager[db].force_rotate("otel test")
        await next_event(manager, db, "revoked")  # the old lease, after the drain period
        await manager[token].force_rotate("otel test")
        secrets.add(client.token or "")
        (histogram,) = [m for r in telemetry.reader.get_metrics_data().resource_metrics
                        for s in r.scope_metrics for m in s.metrics if m.name == LATENCY_METRIC]
        assert histogram.data.data_points[0].count > 0
    traces.uninstrument()
    measures.uninstrument()

    assert [*span_kinds(telemetry, token)][:1] == [("login", "token")]
    assert ("relogin", "token") in set(span_kinds(telemetry, token))
    db_spans = set(span_kinds(telemetry, db))
    for expected in ("acquire", "renew", "rotate", "revoke"):
        assert (expected, "database_dynamic") in db_spans
    (rotate,) = telemetry.named("vault_async.lease.rotate")
    assert rotate.attributes is not None
    assert rotate.attributes["vault.lease.reason"] == "otel test"
    assert rotate.attributes["vault.lease.generation"] == 2
    renewals = telemetry.named("PUT sys/leases/renew/{lease_id}")
    assert renewals
    assert all(
        (s.attributes or {}).get("vault.node") == migrated.vault_addr for s in renewals
    )
    assert telemetry.named("POST auth/{mount}/login")
    assert_nothing_secret(telemetry, secrets)
