"""Stop a test's subprocess by its PID: a signal, a bounded wait, then SIGKILL."""

from __future__ import annotations

import signal
import subprocess

__all__ = ["stop_process"]


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
