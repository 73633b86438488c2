"""A Ctrl-C that Python had to swallow during `--dev` start-up is delivered again."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from types import FrameType, SimpleNamespace

import pytest

from app._devmode import _redeliver_interrupts


@pytest.fixture
def sigint_seen() -> Iterator[threading.Event]:
    seen = threading.Event()

    def record(signum: int, frame: FrameType | None) -> None:
        seen.set()

    previous = signal.signal(signal.SIGINT, record)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_swallowed_interrupt_is_sent_again_and_not_printed(
    sigint_seen: threading.Event,
) -> None:
    passed_on: list[object] = []
    hook = _redeliver_interrupts(passed_on.append)
    hook(SimpleNamespace(exc_value=KeyboardInterrupt()))
    for _ in range(100):  # the handler runs in this (main) thread, between bytecodes
        if sigint_seen.wait(0.05):
            break
    assert sigint_seen.is_set()
    assert passed_on == []


def test_other_unraisable_errors_go_to_the_previous_hook(sigint_seen: threading.Event) -> None:
    passed_on: list[object] = []
    hook = _redeliver_interrupts(passed_on.append)
    other = SimpleNamespace(exc_value=ValueError("boom"))
    hook(other)
    assert passed_on == [other]
    assert not sigint_seen.wait(0.2)
