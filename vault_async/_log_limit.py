"""``LogLimiter``: one WARNING per condition per interval, the repeats at DEBUG.

A condition that every request meets (a database login rejected while Vault cannot
issue a new one) would otherwise log a WARNING per request. The first occurrence in an
interval is a WARNING carrying how many repeats went to DEBUG since the previous one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

__all__ = ["DEFAULT_LOG_INTERVAL", "LogLimiter"]

DEFAULT_LOG_INTERVAL = 10.0


class LogLimiter:
    """Decides the level of each occurrence of a condition, by key."""

    __slots__ = ("_clock", "_state", "interval")

    def __init__(
        self,
        interval: float = DEFAULT_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 <= interval < math.inf:
            raise ValueError(f"LogLimiter: interval must be a finite number >= 0, got {interval}")
        self.interval = interval
        self._clock = clock
        # key -> (when its last WARNING was logged, repeats logged at DEBUG since)
        self._state: dict[str, tuple[float, int]] = {}

    def check(self, key: str) -> tuple[int, int]:
        """(level, repeats since the last WARNING): WARNING once per interval, else DEBUG."""
        now = self._clock()
        state = self._state.get(key)
        if state is None or now - state[0] >= self.interval:
            self._state[key] = (now, 0)
            return logging.WARNING, 0 if state is None else state[1]
        self._state[key] = (state[0], state[1] + 1)
        return logging.DEBUG, state[1] + 1

    def log(self, logger: logging.Logger, event_name: str, **fields: object) -> None:
        """Log ``event_name``, keyed by its ``error_class``; a WARNING says how many it hid."""
        level, repeats = self.check(f"{event_name}:{fields.get('error_class')}")
        if level == logging.WARNING:
            fields["suppressed"] = repeats
        logger.log(level, event_name, extra=fields)
