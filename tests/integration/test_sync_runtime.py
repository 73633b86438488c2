"""The sync runtime: the lease engine on a thread of its own, used from plain threads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from vault_async import ClientConfig
from vault_async.auth import AppRoleAuth
from vault_async.devstack import DevStack
from vault_async.lifecycle import LeaseConfig
from vault_async.sync import StartupError, SyncCredential, start

pytestmark = pytest.mark.integration

ROLE = "syncrt"  # at most 8 characters: Vault truncates it in the login name
EAGER = LeaseConfig(min_force_interval=0)
"""force_rotate right after the first credential rotates rather than sharing it."""


def config_of(stack: DevStack) -> ClientConfig:
    return ClientConfig.from_env(stack.env())


def auth_of(stack: DevStack) -> AppRoleAuth:
    return AppRoleAuth(stack.role_id, secret_id=stack.secret_id)


async def logins(stack: DevStack) -> list[str]:
    return [r for r in await stack.v_roles() if f"-{ROLE}-" in r]


def engine_threads() -> set[threading.Thread]:
    """The other threads alive now (a set: threads of earlier tests may end meanwhile)."""
    return {t for t in threading.enumerate() if t is not threading.current_thread()}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def test_start_rotate_and_leave_revokes(migrated: DevStack) -> None:
    migrated.create_dynamic_role(ROLE, "1h", "2h")
    threads_before = engine_threads()
    seen: list[SyncCredential] = []
    with start(config_of(migrated), auth_of(migrated), db_role=ROLE,
               db_mount=migrated.db_mount, lease_config=EAGER) as runtime:
        credentials = runtime.credentials
        first = credentials.current()
        assert first.username is not None
        assert first.username.startswith("v-")
        assert first.password
        assert first.password not in repr(first)
        assert first.password not in repr(runtime)
        unsubscribe = credentials.subscribe(seen.append)
        # force_rotate blocks the calling thread until the new credential is in force.
        second = credentials.force_rotate("test")
        assert second.generation == first.generation + 1
        assert credentials.current() == second
        assert wait_until(lambda: [c.generation for c in seen] == [second.generation])
        unsubscribe()
        assert second.username in await logins(migrated)
    assert await logins(migrated) == []  # both leases revoked on leaving
    assert wait_until(lambda: not engine_threads() - threads_before), "engine thread left running"


async def test_track_use_from_threads_holds_the_old_lease(migrated: DevStack) -> None:
    migrated.create_dynamic_role(ROLE, "1h", "2h")
    with start(config_of(migrated), auth_of(migrated), db_role=ROLE,
               db_mount=migrated.db_mount, lease_config=EAGER) as runtime:
        credentials = runtime.credentials
        first = credentials.current()
        worker = threading.Thread(target=credentials.track_use, args=(first.generation, 1))
        worker.start()
        worker.join(5)
        # The thread's +1 is applied in order, before the rotation that follows it.
        second = credentials.force_rotate("test")
        await asyncio.sleep(1.0)
        assert first.username in await logins(migrated), "revoked while a connection was out"
        released = threading.Thread(target=credentials.track_use, args=(first.generation, -1))
        released.start()
        released.join(5)
        for _ in range(100):  # the revocation follows the -1 within moments
            if first.username not in await logins(migrated):
                break
            await asyncio.sleep(0.1)
        assert await logins(migrated) == [second.username]


def test_unknown_role_fails_fast_in_one_line(migrated: DevStack) -> None:
    threads_before = engine_threads()
    began = time.monotonic()
    with pytest.raises(StartupError) as caught:
        start(config_of(migrated), auth_of(migrated), db_role="nosuchrole",
              db_mount=migrated.db_mount, startup_timeout=20)
    assert time.monotonic() - began < 15  # refused by Vault: no wait for the timeout
    assert "\n" not in str(caught.value)
    assert "nosuchrole" in str(caught.value)
    assert wait_until(lambda: not engine_threads() - threads_before), "engine thread left running"


def test_auth_and_config_from_the_environment(
    migrated: DevStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in migrated.env().items():
        monkeypatch.setenv(name, value)
    with start(db_role=migrated.dynamic_role, db_mount=migrated.db_mount) as runtime:
        assert runtime.credentials.current().username
    monkeypatch.setenv("VAULT_AUTH_METHOD", "approle")
    monkeypatch.delenv("VAULT_ROLE_ID")
    with pytest.raises(StartupError, match="VAULT_ROLE_ID"):
        start(db_role=migrated.dynamic_role, db_mount=migrated.db_mount)
