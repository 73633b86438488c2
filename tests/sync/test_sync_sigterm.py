"""``handle_sigterm=True``: SIGTERM unwinds the main thread; the previous handler comes back."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from vault_async import sync
from vault_async._config import ClientConfig
from vault_async.auth import TokenAuth


@asynccontextmanager
async def no_vault(*args: Any, **kwargs: Any) -> AsyncIterator[tuple[Any, Any]]:
    yield ("credentials", "manager")


@pytest.fixture
def kept_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sync, "_engine", no_vault)
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def start() -> sync.SyncRuntime:
    return sync.start(
        ClientConfig(addr="http://127.0.0.1:1"), TokenAuth("t"), db_role="app",
        handle_sigterm=True,
    )


def test_a_handler_installed_outside_python_comes_back_as_the_default(
    kept_handler: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # getsignal() gives None for a handler not installed from Python.
    real = signal.getsignal
    calls: list[int] = []

    def getsignal(signum: int) -> Any:
        calls.append(signum)
        return None if len(calls) == 1 else real(signum)

    monkeypatch.setattr(signal, "getsignal", getsignal)
    runtime = start()
    handler = real(signal.SIGTERM)
    assert callable(handler)
    with pytest.raises(SystemExit):
        handler(signal.SIGTERM, None)
    assert real(signal.SIGTERM) == signal.SIG_DFL
    signal.signal(signal.SIGTERM, handler)
    runtime.close()
    assert real(signal.SIGTERM) == signal.SIG_DFL


def test_closing_from_another_thread_says_the_handler_stays(
    kept_handler: None, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = start()
    closer = threading.Thread(target=runtime.close)
    with caplog.at_level(logging.WARNING, logger="vault_async.sync"):
        closer.start()
        closer.join(10)
    assert not closer.is_alive()
    assert [r.message for r in caplog.records] == ["sync.sigterm_handler_kept"]
