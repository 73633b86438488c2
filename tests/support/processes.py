"""A test's subprocess: stop it by its PID (signal, bounded wait, SIGKILL), read its lines."""

from __future__ import annotations

import queue
import signal
import subprocess
from collections.abc import Iterable

__all__ = ["pump_lines", "stop_process"]


def stop_process(
    proc: subprocess.Popen[str] | subprocess.Popen[bytes],
    sig: int = signal.SIGTERM,
    timeout: float = 60,
) -> int:
    """Send ``sig`` unless it has exited; SIGKILL after ``timeout`` s; its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def pump_lines(stream: Iterable[str], into: queue.Queue[str]) -> None:
    """Put each line of a subprocess's stream into ``into`` (run on a thread); '' at its end."""
    for line in stream:
        into.put(line)
    into.put("")
