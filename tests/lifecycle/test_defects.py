"""The lease engine's ten reviewed defects, on virtual time against the in-memory Vault.

Each test states the behaviour the review required; every one of them failed on the
engine before its redesign (commit 883f9e6). The same defects against the real servers
are in ``test_defects_real.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault_async._exceptions import Forbidden
from vault_async._health import health_status
from vault_async.auth import TokenAuth
from vault_async.lifecycle import LeaseConfig, LeaseEvent, LeaseManager, VirtualClock

from .conftest import FakeClient, FakeVault, GivenTokenClient, slow_client


class PolicyClient(FakeClient):
    """A client whose token may lose the right to ``database/creds`` while staying valid."""

    deny_creds = False
    refuse_logins = False

    async def login(self, method: Any) -> SimpleNamespace:
        if self.refuse_logins:
            self.vault._check("login")
            raise Forbidden("invalid role or secret ID", status=403)
        return await super().login(method)

    async def _generate(self, name: str, mount_point: str = "database") -> SimpleNamespace:
        if self.deny_creds:
            self.vault._check("acquire")
            raise Forbidden("permission denied", status=403)
        return await super()._generate(name, mount_point)


def manager(client: FakeClient | None, clock: VirtualClock, **config: Any) -> LeaseManager:
    config.setdefault("min_force_interval", 0.0)
    return LeaseManager(client, LeaseConfig(**config), clock=clock, rng=random.Random(11))


# ------------------------------------------------------------ 2: a 403 is not always the token


async def test_forbidden_path_with_a_valid_token_does_not_log_in(clock: VirtualClock) -> None:
    vault = FakeVault(clock, token_ttl=60.0, token_max_ttl=100_000.0)
    client = PolicyClient(vault)
    async with manager(client, clock) as mgr:
        token = mgr.manage_token(client, object())
        creds = mgr.manage_database_credentials(role="app")
        await creds.wait_ready(timeout=5)
        client.deny_creds = True  # the policy changed; the token itself is fine
        client.refuse_logins = True  # and a login would fail (secret_id num_uses spent)
        with pytest.raises(Forbidden):
            await creds.force_rotate("database rejected the login")
        for _ in range(20):
            await clock.advance(30.0)
            assert vault.token_valid(client.token), clock.now()
        assert vault.logins == 1
        assert not vault.times("login")[1:]  # not even attempted
        # At most one lookup per refused attempt, and the attempts follow the backoff, not one
        # per rejected database login: Vault's refusal (403) is no outage, so the short retries
        # of an expired credential (expired_retry_max) do not apply to it.
        assert len(vault.times("lookup_self")) <= len(vault.times("acquire")) - 1 <= 60
        assert token.generation == 1
        assert token.consecutive_failures == 0
        assert token.renewals >= 10  # the valid token keeps being renewed
        assert creds.consecutive_failures > 0
        assert creds.last_error_class == "Forbidden"
        assert mgr.snapshot()[creds.name].degraded


async def test_refused_token_logs_in_once_however_many_callers(clock: VirtualClock) -> None:
    vault = FakeVault(clock, token_ttl=600.0, token_max_ttl=6000.0)
    client = PolicyClient(vault)
    async with manager(client, clock, relogin_interval=5.0) as mgr:
        mgr.manage_token(client, object())
        creds = [mgr.manage_database_credentials(role="app", name=f"db{i}") for i in range(4)]
        for c in creds:
            await c.wait_ready(timeout=5)
        await clock.advance(10.0)  # past the login interval of the first login
        assert client.token is not None
        vault.tokens[client.token].revoked = True  # revoked from outside
        client.refuse_logins = True  # and the secret_id is spent
        start = clock.now()
        for _ in range(200):  # rejected database logins from four pools for 20 s
            async with anyio.create_task_group() as tg:
                for c in creds:
                    tg.start_soon(_rotate_quietly, c)
            await clock.advance(0.1)
        logins = [t - start for t in vault.times("login") if t >= start]
        gaps = [b - a for a, b in itertools.pairwise(logins)]
        # Failed logins count too: at most one per relogin_interval, whoever asks.
        assert 1 <= len(logins) <= 5, logins
        assert all(gap >= 5.0 for gap in gaps), (logins, gaps)


async def _rotate_quietly(handle: Any) -> None:
    with contextlib.suppress(Exception):
        await handle.force_rotate("database rejected the login")


async def test_replaced_token_is_revoked_once_its_leases_are_gone(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=60.0, max_ttl=100_000.0, token_ttl=300.0, token_max_ttl=300.0)
    vault.token_renewable = False
    client = FakeClient(vault)
    async with manager(client, clock, drain_period=10.0) as mgr:
        token = mgr.manage_token(client, object())
        creds = mgr.manage_database_credentials(role="app")
        await creds.wait_ready(timeout=5)
        first_token = client.token
        assert first_token is not None
        for _ in range(300):
            await clock.advance(1.0)
            assert creds.current is not None
            assert vault.valid(creds.current.lease_id), clock.now()
        assert token.generation >= 2
        old = vault.tokens[first_token]
        assert old.revoked  # revoked by the engine, not left to expire
        old_leases = [lease for lease in vault.leases.values() if lease.token == first_token]
        assert old_leases
        assert all(lease.revoked for lease in old_leases)


# --------------------------------------------------- 3: no lease stays tied to a replaced token


async def _token_rotation_scenario(steps: list[tuple[str, float]]) -> None:
    clock = VirtualClock()
    vault = FakeVault(clock, ttl=60.0, max_ttl=100_000.0, token_ttl=90.0, token_max_ttl=400.0)
    client = FakeClient(vault)
    async with manager(client, clock, drain_period=5.0) as mgr:
        token = mgr.manage_token(client, object())
        creds = mgr.manage_database_credentials(role="app")
        await creds.wait_ready(timeout=5)
        for op, amount in steps:
            if op == "relogin":
                await _rotate_quietly(token)
            elif op == "rotate":
                await _rotate_quietly(creds)
            for _ in range(int(amount)):
                await clock.advance(1.0)
                lease = creds.current
                assert lease is not None
                assert vault.valid(lease.lease_id), (clock.now(), steps)
                assert vault.token_valid(client.token), (clock.now(), steps)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(["wait", "relogin", "rotate"]), st.floats(1.0, 120.0)),
        min_size=1,
        max_size=6,
    )
)
def test_every_ordering_of_token_and_lease_events_keeps_the_lease_valid(
    steps: list[tuple[str, float]],
) -> None:
    anyio.run(_token_rotation_scenario, steps)


async def test_renewal_does_not_overwrite_the_rotation_a_new_token_requires(
    clock: VirtualClock,
) -> None:
    # Leases renewed every ~40 s; the token reaches its max TTL at 250 s and is
    # replaced: the lease must move to the new token before the old one expires.
    await _token_rotation_scenario([("wait", 600.0)])


# ------------------------------------------------------------ 4: the drain waits for connections


async def test_replaced_lease_lives_while_a_connection_uses_it(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=600.0, max_ttl=100_000.0)
    async with manager(None, clock, drain_period=30.0) as mgr:
        handle = mgr.manage(vault.source())
        first = await handle.wait_ready(timeout=5)
        handle.track_use(1, +1)  # a long transaction holds a connection of generation 1
        await handle.force_rotate("test")
        await clock.advance(120.0)  # far past the old fixed drain
        assert not vault.leases[first.lease_id].revoked
        handle.track_use(1, -1)  # returned
        await clock.advance(0.0)
        assert vault.leases[first.lease_id].revoked


async def test_replaced_lease_in_use_is_revoked_shortly_before_it_expires(
    clock: VirtualClock,
) -> None:
    vault = FakeVault(clock, ttl=60.0, max_ttl=100_000.0)
    async with manager(None, clock, revoke_lead=5.0) as mgr:
        handle = mgr.manage(vault.source())
        first = await handle.wait_ready(timeout=5)
        handle.track_use(1, +1)
        await handle.force_rotate("test")
        await clock.advance(50.0)
        assert not vault.leases[first.lease_id].revoked
        await clock.advance(6.0)
        assert vault.leases[first.lease_id].revoked


async def test_unused_replaced_lease_of_a_tracked_pool_is_revoked_at_once(
    clock: VirtualClock,
) -> None:
    vault = FakeVault(clock, ttl=600.0, max_ttl=100_000.0)
    async with manager(None, clock, drain_period=30.0) as mgr:
        handle = mgr.manage(vault.source())
        first = await handle.wait_ready(timeout=5)
        handle.track_use(1, 0)  # a pool reports, and holds nothing of generation 1
        await handle.force_rotate("test")
        await clock.advance(0.0)
        assert vault.leases[first.lease_id].revoked


# --------------------------------------------------------------- 5: a token handed to the service


async def test_given_token_looked_up_again_is_not_a_rotation(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=600.0, max_ttl=100_000.0)
    client = GivenTokenClient(vault, ttl=200.0)
    async with manager(client, clock) as mgr:
        token = mgr.manage_token(client, TokenAuth(token="s.given"))
        creds = mgr.manage_database_credentials(role="app")
        await creds.wait_ready(timeout=5)
        await clock.advance(195.0)
        assert len(vault.times("login")) >= 2  # looked up again near its end
        assert token.generation == 1
        assert token.rotations == 0
        assert creds.generation == 1
        assert len(vault.times("acquire")) == 1
        await clock.advance(10.0)  # expired: ttl 0 with an expire_time is not "never"
        state = mgr.snapshot()[token.name]
        assert state.ttl_remaining == 0.0
        db_state = mgr.snapshot()[creds.name]
        # The database lease died with the token: its own TTL does not count any more.
        assert db_state.ttl_remaining == 0.0
        assert db_state.degraded
        assert health_status(db_state, state, vault_recent=True) == "failing"
    assert not vault.times("revoke_self")  # the operator's token is never revoked


# ------------------------------------------------------------ 6: a failed revocation is retried


async def test_failed_revocation_is_retried_until_it_succeeds(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=600.0, max_ttl=100_000.0)
    async with manager(None, clock, drain_period=10.0) as mgr:
        handle = mgr.manage(vault.source())
        first = await handle.wait_ready(timeout=5)
        await handle.force_rotate("test")
        await clock.advance(9.5)
        vault.down = True  # sealed for 3.5 s just when the drain ends
        await clock.advance(3.5)
        assert not vault.leases[first.lease_id].revoked
        vault.down = False
        await clock.advance(60.0)
        assert vault.leases[first.lease_id].revoked


async def test_shutdown_revokes_a_revocation_still_pending(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=600.0, max_ttl=100_000.0)
    async with manager(None, clock, drain_period=1000.0) as mgr:
        handle = mgr.manage(vault.source())
        first = await handle.wait_ready(timeout=5)
        await handle.force_rotate("test")
    assert vault.leases[first.lease_id].revoked


# ------------------------------------ 7: cancelled callers and shutdown orphan nothing in Vault


async def test_cancelled_callers_do_not_orphan_what_vault_issued(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=600.0, max_ttl=100_000.0)
    client = slow_client(vault)
    async with manager(client, clock, min_force_interval=0.0) as mgr:
        creds = mgr.manage_database_credentials(role="app")
        await clock.advance(3.0)
        assert creds.current is not None
        async with anyio.create_task_group() as tg:
            for _ in range(3):  # three requests time out while Vault is slow
                tg.start_soon(creds.force_rotate, "database rejected the login")
            await clock.advance(0.5)
            tg.cancel_scope.cancel()
        await clock.advance(10.0)
        assert creds.current is not None
        issued = list(vault.leases.values())
        assert len(issued) == 2  # one shared rotation, not three orphans
        assert vault.valid(creds.current.lease_id)
        assert creds.generation == 2
    assert all(lease.revoked for lease in vault.leases.values())


async def test_shutdown_during_an_acquisition_revokes_its_result(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=600.0, max_ttl=100_000.0)
    client = slow_client(vault)
    mgr = manager(client, clock, shutdown_timeout=1.0)
    async with mgr:
        creds = mgr.manage_database_credentials(role="app")
        await clock.advance(0.5)  # the acquisition is in flight
        assert creds.current is None
        async with anyio.create_task_group() as tg:

            async def finish_vault_call() -> None:
                await anyio.sleep(0.2)
                await clock.advance(5.0)

            tg.start_soon(finish_vault_call)
            await mgr.aclose()
    assert vault.leases
    assert all(lease.revoked for lease in vault.leases.values())


# --------------------------------------------------------- 9: a static re-read is no rotation


async def test_static_reread_with_the_same_password_is_not_a_rotation(
    clock: VirtualClock,
) -> None:
    vault = FakeVault(clock, static_period=1000.0)
    client = FakeClient(vault)
    events: list[LeaseEvent] = []
    async with manager(client, clock, min_force_interval=0.0) as mgr:
        static = mgr.manage_static_credentials(role="app-static")
        static.subscribe(events.append)
        await static.wait_ready(timeout=5)
        for _ in range(3):
            await clock.advance(10.0)
            await static.force_rotate("database rejected the login")
        assert len(vault.times("static")) == 4
        assert static.generation == 1
        assert static.rotations == 0
        assert "rotated" not in [e.kind for e in events]
        await clock.advance(1000.0)  # Vault's own rotation: a new password
        assert static.generation == 2
        assert [e.kind for e in events].count("rotated") == 1


# ----------------------------------------------------------- 10: batch tokens


class BatchTokenClient(FakeClient):
    async def login(self, method: Any) -> SimpleNamespace:
        auth = await super().login(method)
        auth.token_type, auth.renewable, auth.accessor = "batch", False, ""
        return auth


async def test_batch_token_is_neither_renewed_nor_revoked(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    vault = FakeVault(clock, ttl=60.0, max_ttl=100_000.0, token_ttl=3000.0)
    client = BatchTokenClient(vault)
    caplog.set_level(logging.INFO, logger="vault_async.lifecycle")
    async with manager(client, clock) as mgr:
        token = mgr.manage_token(client, object())
        creds = mgr.manage_database_credentials(role="app")
        await creds.wait_ready(timeout=5)
        await clock.advance(600.0)
        assert token.renewals == 0
        assert not math.isinf(mgr.snapshot()[token.name].ttl_remaining or math.inf)
    assert not vault.times("renew_self")
    assert not vault.times("revoke_self")
    assert "lease.revoke_failed" not in [r.getMessage() for r in caplog.records]
    assert all(lease.revoked for lease in vault.leases.values())


async def test_a_connection_returned_from_another_thread_is_handled_on_the_loop(
    clock: VirtualClock,
) -> None:
    vault = FakeVault(clock, ttl=600.0, max_ttl=100_000.0)
    async with manager(None, clock) as mgr:
        handle = mgr.manage(vault.source())
        first = await handle.wait_ready(timeout=5)
        handle.track_use(1, +1)
        await handle.force_rotate("test")
        # e.g. the garbage collector finalising the connection in a worker thread
        await anyio.to_thread.run_sync(handle.track_use, 1, -1)
        await clock.advance(0.0)
        assert vault.leases[first.lease_id].revoked


async def test_wait_ready_does_not_hand_out_an_expired_credential(clock: VirtualClock) -> None:
    vault = FakeVault(clock, ttl=600.0, max_ttl=100_000.0)
    client = GivenTokenClient(vault, ttl=50.0)
    async with manager(client, clock) as mgr:
        token = mgr.manage_token(client, TokenAuth(token="s.given"))
        await token.wait_ready(timeout=5)
        await clock.advance(60.0)
        with pytest.raises(TimeoutError, match="no valid credential"):
            await token.wait_ready(timeout=0.05)


async def test_a_caller_waiting_for_a_rotation_at_shutdown_gets_an_error_not_a_cancel(
    clock: VirtualClock,
) -> None:
    vault = FakeVault(clock, ttl=600.0, max_ttl=100_000.0)
    client = slow_client(vault)
    mgr = manager(client, clock, shutdown_timeout=0.6)
    outcomes: list[BaseException | str] = []

    async def rotate() -> None:
        try:
            await creds.force_rotate("database rejected the login")
            outcomes.append("rotated")
        except BaseException as exc:
            outcomes.append(exc)

    async with mgr:
        creds = mgr.manage_database_credentials(role="app")
        await clock.advance(3.0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(rotate)  # holds the handle's lock while Vault is slow
            tg.start_soon(rotate)  # waits for that lock
            await clock.advance(0.5)

            async def finish_vault_call() -> None:
                await anyio.sleep(0.3)
                await clock.advance(5.0)

            tg.start_soon(finish_vault_call)
            await mgr.aclose()
    assert "rotated" in outcomes
    assert not any(isinstance(o, asyncio.CancelledError) for o in outcomes), outcomes


async def test_short_lease_capped_with_a_second_left_is_replaced_at_once(
    clock: VirtualClock,
) -> None:
    # 5 s leases, 15 s max: the renewal that reaches the max TTL leaves about a second;
    # the rotation must follow at once, not after the re-read floor (the soak benchmark's
    # service saw its login expire under load when it did).
    vault = FakeVault(clock, ttl=5.0, max_ttl=15.0)
    async with manager(None, clock) as mgr:
        handle = mgr.manage(vault.source())
        margins: list[float] = []

        def on_event(event: LeaseEvent) -> None:
            if event.kind == "rotated":
                replaced = [lease for lease in vault.leases.values() if not lease.revoked]
                margins.append(min(lease.max_expires_at for lease in replaced) - clock.now())

        handle.subscribe(on_event)
        await handle.wait_ready(timeout=5)
        await clock.advance(60.0)
        assert len(margins) >= 3
        assert min(margins) >= 1.0, margins


async def test_revoked_event_names_the_generation_of_the_lease_it_revoked(
    clock: VirtualClock,
) -> None:
    vault = FakeVault(clock, ttl=600.0, max_ttl=100_000.0)
    events: list[LeaseEvent] = []
    async with manager(None, clock, drain_period=1.0) as mgr:
        handle = mgr.manage(vault.source())
        handle.subscribe(events.append)
        await handle.wait_ready(timeout=5)
        await handle.force_rotate("test")
        await clock.advance(2.0)
    revoked = [e.generation for e in events if e.kind == "revoked"]
    assert revoked == [1, 2]  # the drained lease, then the one in force at shutdown
