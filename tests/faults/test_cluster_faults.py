"""The service on a three-node OpenBao cluster, under load, while nodes fail: no request fails.

One cluster for the module; the tests run in order, each with a service of its own (started
with the first node in VAULT_ADDR, the others in VAULT_FAILOVER_ADDRS) and a 20 s lease
renewed up to 1 min, then replaced (45 s under step-downs, see there). Every request of the
load is checked; the lease engine's work and the role's logins in PostgreSQL are watched
throughout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.failover import (
    LEASE_MAX_TTL,
    LEASE_TTL,
    ROLE,
    STEP_DOWN_LEASE,
    STEP_DOWN_ROLE,
    Loaded,
    failover_env,
    kill_active,
    step_downs,
    under_load,
    wait_until_due,
)
from tests.support.load import LoadResult
from tests.support.service import ServiceProcess, migrated_devstack
from vault_async.devstack import DevStack

STEP_DOWN_FOR = 30.0  # seconds of repeated step-downs (the benchmark runs a minute)
STEP_DOWN_HOLD = 3.0  # seconds each new active node keeps the lead before the next step-down
SETTLE = 30.0  # seconds for a replaced or orphaned login to be revoked or expire (20 s lease)


@pytest.fixture(scope="module")
def cluster() -> Iterator[DevStack]:
    with migrated_devstack(nodes=3) as stack:
        stack.create_dynamic_role(ROLE, LEASE_TTL, LEASE_MAX_TTL)
        stack.create_dynamic_role(STEP_DOWN_ROLE, *STEP_DOWN_LEASE)
        yield stack


@pytest.fixture
def service(cluster: DevStack) -> Iterator[ServiceProcess]:
    cluster.cluster.wait_formed()
    with ServiceProcess(failover_env(cluster)) as running:
        yield running


def failed(result: LoadResult | None, since: float) -> str:
    """The failed requests, each as (seconds after `since`, what)."""
    assert result is not None
    return repr([(round(o.started - since, 2), o.detail) for o in result.failures][:20])


def check_logins(loaded: Loaded, started: float) -> None:
    """Never more than two of the role's logins at once, and one when things settle."""
    most = loaded.watch.most_roles(since=started)
    assert most <= 2, f"{most} logins of the role at once"
    assert loaded.watch.wait_for_roles(1, within=SETTLE) == 1, loaded.watch.roles[-5:]


def test_sigkill_of_the_active_node_while_the_service_renews(
    cluster: DevStack, service: ServiceProcess
) -> None:
    with under_load(cluster, service) as loaded:
        watch = loaded.watch
        started = time.monotonic()
        due = wait_until_due(watch)
        kill = kill_active(cluster)
        resumed = watch.wait_for(lambda s: s.work > due.work, within=30, after=kill.killed_at)
        cluster.cluster.start_node(kill.index)
        check_logins(loaded, started)
    result = loaded.result
    assert result is not None
    assert due.ttl_remaining is not None
    since_election = max(0.0, resumed.at - kill.elected_at)
    print(
        f"active node SIGKILLed: {result.summary()}; election {kill.election:.2f} s, "
        f"renewal {resumed.at - kill.killed_at:.2f} s after the kill, {since_election:.2f} s "
        f"after the new active node; the lease had {due.ttl_remaining:.1f} s left"
    )
    assert result.errors == 0, failed(result, kill.killed_at)
    # Renewals resumed in time: before the lease would have expired.
    assert resumed.at < kill.killed_at + due.ttl_remaining
    assert resumed.status != "failing", resumed


def test_the_node_in_use_killed_and_restarted(
    cluster: DevStack, service: ServiceProcess
) -> None:
    nodes = cluster.cluster
    with under_load(cluster, service) as loaded:
        watch = loaded.watch
        started = time.monotonic()
        before = watch.wait_for(lambda s: s.last_node is not None, within=10)
        # VAULT_ADDR's node, unless it could not serve yet when the service started (the
        # previous test restarts a node): the one the service talks to is the one to lose.
        first = before.last_node
        assert first in nodes.addrs, before
        index = nodes.addrs.index(first)
        due = wait_until_due(watch)
        killed_at = time.monotonic()
        nodes.kill(index)
        moved = watch.wait_for(
            lambda s: s.last_node not in (None, first) and s.nodes.get(first) == "down",
            within=30, after=killed_at,
        )
        # The engine's next renewal goes through another node while the first is down.
        renewed = watch.wait_for(lambda s: s.work > due.work, within=30, after=killed_at)
        restarted_at = time.monotonic()
        nodes.start_node(index)
        back = watch.wait_for(
            lambda s: s.nodes.get(first) in ("standby", "active"), within=30, after=restarted_at
        )
        check_logins(loaded, started)
    result = loaded.result
    assert result is not None
    print(
        f"{first} killed, restarted: {result.summary()}; moved to {moved.last_node} "
        f"{moved.at - killed_at:.2f} s after the kill, renewed {renewed.at - killed_at:.2f} s "
        f"after it; seen {back.nodes[first]} {back.at - restarted_at:.2f} s after the restart"
    )
    assert result.errors == 0, failed(result, killed_at)
    assert renewed.status != "failing", renewed


def test_repeated_step_downs(cluster: DevStack) -> None:
    """Each step-down leaves no active node for up to ~8 s: the lease outlives such a gap
    (45 s, so its renewal is due with 12-13.5 s left), and the step-downs start some 10 s
    before that renewal is due, so it falls among them."""
    nodes = cluster.cluster
    nodes.wait_formed()
    with (
        ServiceProcess(failover_env(cluster, STEP_DOWN_ROLE)) as service,
        under_load(cluster, service, role=STEP_DOWN_ROLE) as loaded,
    ):
        watch = loaded.watch
        before = watch.wait_for(
            lambda s: s.ttl_remaining is not None and s.ttl_remaining <= 22, within=40
        )
        started = time.monotonic()
        handovers = step_downs(cluster, STEP_DOWN_FOR, hold=STEP_DOWN_HOLD)
        ended = time.monotonic()
        after = watch.wait_for(lambda s: s.work > before.work, within=30, after=started)
        statuses = {s.status for s in watch.between(started)}
        check_logins(loaded, started)
    result = loaded.result
    assert result is not None
    gaps = [gap for _, gap in handovers]
    print(
        f"{len(handovers)} step-downs in {ended - started:.0f} s: {result.summary()}; "
        f"no active node for {min(gaps):.2f}-{max(gaps):.2f} s each; renewed "
        f"{after.at - started:.1f} s into them; statuses {sorted(statuses)}"
    )
    assert len({addr for addr, _ in handovers}) >= 2, handovers
    assert result.errors == 0, failed(result, started)
    assert after.at < ended, "the renewal did not fall among the step-downs"
    assert "failing" not in statuses


def test_whole_cluster_down_for_less_than_the_lease(
    cluster: DevStack, service: ServiceProcess
) -> None:
    nodes = cluster.cluster
    with under_load(cluster, service) as loaded:
        watch = loaded.watch
        started = time.monotonic()
        # Just after a renewal or a new credential: the most validity left to ride out on.
        fresh = watch.wait_for(
            lambda s: s.ttl_remaining is not None and s.ttl_remaining >= 17,
            within=30, after=started,
        )
        assert fresh.ttl_remaining is not None
        down_at = time.monotonic()
        nodes.stop()
        degraded = watch.wait_for(lambda s: s.status == "degraded", within=10, after=down_at)
        time.sleep(max(0.0, down_at + 6 - time.monotonic()))
        up_at = time.monotonic()
        for index in range(len(nodes.nodes)):
            nodes.start_node(index)
        ok = watch.wait_for(
            lambda s: s.status == "ok" and s.work > fresh.work, within=30, after=up_at
        )
        statuses = {s.status for s in watch.between(down_at, ok.at)}
        check_logins(loaded, started)
    result = loaded.result
    assert result is not None
    print(
        f"whole cluster down {up_at - down_at:.1f} s, lease {fresh.ttl_remaining:.1f} s left: "
        f"{result.summary()}; degraded after {degraded.at - down_at:.2f} s, ok and renewed "
        f"{ok.at - up_at:.2f} s after the restart; statuses {sorted(statuses)}"
    )
    assert up_at - down_at < fresh.ttl_remaining
    assert result.errors == 0, failed(result, down_at)
    assert "failing" not in statuses
