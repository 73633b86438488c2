"""The sync SQLAlchemy binding gives back a login's hold when the connection never opens."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, exc, text

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
