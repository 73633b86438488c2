"""`python -m app --dev` migrates with the migrations' login and serves with the service's."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

import app.__main__ as entry
import vault_async.devstack
from alembic import command

SERVICE = {"VAULT_ROLE_ID": "service-role", "VAULT_SECRET_ID": "service-secret",
           "VAULT_DB_ROLE": "app"}
MIGRATION = {"VAULT_ROLE_ID": "migrator-role", "VAULT_SECRET_ID": "migrator-secret",
             "VAULT_DB_ROLE": "migrator", "VAULT_DB_MIGRATION_ROLE": "migrator",
             "DB_OWNER_ROLE": "app_owner"}


class FakeStack:
    """What `main()` uses of a dev stack, without starting servers."""

    vault_addr = "http://127.0.0.1:1"
    database_url = "postgresql+asyncpg://127.0.0.1:1/app"

    def __enter__(self) -> FakeStack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pass

    def env(self) -> dict[str, str]:
        return dict(SERVICE)

    def migration_env(self) -> dict[str, str]:
        return dict(MIGRATION)

    def write_root_token_file(self) -> Path:
        return Path("/nonexistent/root-token")


def test_dev_mode_migrates_and_serves_with_separate_logins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in SERVICE.keys() | MIGRATION.keys():
        monkeypatch.delenv(key, raising=False)  # restored after the test
    seen: dict[str, dict[str, str]] = {}

    def upgrade(config: Any, revision: str) -> None:
        seen["migrate"] = dict(os.environ)

    def run(host: str, port: int) -> int:
        seen["serve"] = dict(os.environ)
        return 0

    monkeypatch.setattr(vault_async.devstack, "DevStack", lambda **_: FakeStack())
    monkeypatch.setattr(command, "upgrade", upgrade)
    monkeypatch.setattr(entry, "run", run)

    assert entry.main(["--dev"]) == 0
    assert {k: seen["migrate"].get(k) for k in MIGRATION} == MIGRATION
    assert {k: seen["serve"].get(k) for k in SERVICE} == SERVICE
    leftovers = {k for k in ("VAULT_DB_MIGRATION_ROLE", "DB_OWNER_ROLE") if k in seen["serve"]}
    assert leftovers == set()
    assert "migrator-secret" not in seen["serve"].values()
