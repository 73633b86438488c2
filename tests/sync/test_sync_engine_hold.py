"""The sync SQLAlchemy binding gives back a login's hold when the connection never opens."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.pool import QueuePool

from vault_async._sync_credentials import SyncCallback, SyncCredential
from vault_async.sqlalchemy_sync import bind_engine


class Credentials:
    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.credential = SyncCredential(None, None, 1)  # sqlite takes no login

    def current(self) -> SyncCredential:
        return self.credential

    def force_rotate(self, reason: str, timeout: float = 30.0) -> SyncCredential:
        return self.credential

    def track_use(self, generation: int, delta: int) -> None:
        self.counts[generation] += delta

    def subscribe(self, callback: SyncCallback) -> Callable[[], None]:
        return lambda: None


def test_a_failed_set_role_gives_the_login_hold_back() -> None:
    credentials = Credentials()
    engine = create_engine("sqlite://")  # SET ROLE is a syntax error there: the connect event fails
    binding = bind_engine(engine, credentials, assume_role="app_owner")
    try:
        for _ in range(3):
            with pytest.raises(exc.OperationalError), engine.connect() as conn:
                conn.execute(text("select 1"))
        assert credentials.counts[1] == 0
    finally:
        binding.detach()
        engine.dispose()


def test_a_connection_returned_to_a_pool_swapped_meanwhile_is_closed_before_its_lease_goes(
) -> None:
    # The interleaving forced: the app thread passed the checkin event (not stale yet) and
    # the rotation swaps the pool before the record reaches the pool's queue.
    credentials = Credentials()
    engine = create_engine(
        "sqlite://", poolclass=QueuePool, connect_args={"check_same_thread": False}
    )
    binding = bind_engine(engine, credentials)
    seen: list[object] = []
    closed = threading.Event()
    released = threading.Event()
    recording = credentials.track_use

    def track_use(generation: int, delta: int) -> None:
        seen.append((generation, delta))
        recording(generation, delta)
        if generation == 1 and credentials.counts[1] == 0 and closed.is_set():
            released.set()

    def on_close(dbapi_connection: object, conn_rec: object) -> None:
        seen.append("closed")
        closed.set()

    credentials.track_use = track_use  # type: ignore[method-assign]
    event.listen(engine, "close", on_close)
    retired = engine.pool
    return_conn = retired._return_conn

    def rotate_then_return(record: Any) -> None:
        credentials.credential = SyncCredential(None, None, 2)
        binding.swap_pool()
        return_conn(record)

    retired._return_conn = rotate_then_return  # type: ignore[method-assign]
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        assert closed.wait(5), "the connection stayed open in the retired pool"
        assert released.wait(5), seen
        last_release = max(i for i, item in enumerate(seen) if item == (1, -1))
        assert seen.index("closed") < last_release, seen
    finally:
        binding.detach()
        engine.dispose()
