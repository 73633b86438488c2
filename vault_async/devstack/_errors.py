"""The one error the dev stack raises when it cannot start."""

from __future__ import annotations


class DevStackError(RuntimeError):
    """A dev-stack step failed; the message names the step, the cause and the server's log tail."""

    def __init__(self, step: str, reason: str, log_tail: str = "") -> None:
        self.step = step
        self.reason = reason
        self.log_tail = log_tail
        message = f"dev stack: {step} failed: {reason}"
        if log_tail:
            message += f"\n--- last lines of its log ---\n{log_tail}"
        super().__init__(message)


class EnvFileError(DevStackError):
    """The environment file cannot be written safely at the path given (a bad argument)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__("write the env file", f"{path}: {reason}")
