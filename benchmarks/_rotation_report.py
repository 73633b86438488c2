"""The arithmetic of benchmarks/rotation.py: rotation instants from the log, near/away split."""

from __future__ import annotations

import bisect
import datetime as dt
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.support.load import LoadResult

TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%f"
"""The service's ``time`` field (logging's ``asctime``, local time, milliseconds)."""


@dataclass
class Marks:
    """Instants on this machine's monotonic clock (the load generator's clock)."""

    rotated: list[float] = field(default_factory=list)
    """Each ``lease.rotated`` of the database credential."""
    serving: list[float] = field(default_factory=list)
    """Each ``pool.generation_serving``: the first checkout of a newer generation."""
    rollovers: list[tuple[float, str]] = field(default_factory=list)
    """Each ``pool.prewarmed``: when, and replaced/old connections in how many ms."""
    warnings: Counter[str] = field(default_factory=Counter)
    """The service's WARNING and ERROR records so far, by message."""


def read_marks(log: str) -> Marks:
    """The rotation and first-checkout instants in a service's JSON log."""
    offset = time.time() - time.monotonic()
    marks = Marks()
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        message = record.get("message")
        if record.get("level") in ("WARNING", "ERROR"):
            marks.warnings[str(message)] += 1
        if message == "pool.prewarmed":
            wall = dt.datetime.strptime(record["time"], TIME_FORMAT).timestamp()
            marks.rollovers.append((wall - offset, (
                f"{record.get('replaced')}/{record.get('old')} in "
                f"{float(record.get('seconds', 0)) * 1000:.0f} ms"
                f" ({record.get('passes')} passes)"
            )))
            continue
        target = {"lease.rotated": marks.rotated, "pool.generation_serving": marks.serving}
        if message not in target or (
            message == "lease.rotated" and "/creds/" not in str(record.get("secret"))
        ):
            continue
        wall = dt.datetime.strptime(record["time"], TIME_FORMAT).timestamp()
        target[message].append(wall - offset)
    return marks


def near_away(
    result: LoadResult, rotations: list[float], window: float
) -> tuple[list[float], list[float]]:
    """Latencies of the successful requests started within ``window`` s after a rotation,
    and of the others."""
    near: list[float] = []
    away: list[float] = []
    for outcome in result.outcomes:
        if not outcome.ok:
            continue
        i = bisect.bisect_right(rotations, outcome.started) - 1
        close = i >= 0 and outcome.started - rotations[i] < window
        (near if close else away).append(outcome.latency)
    return near, away


def _p(latencies: list[float], q: int) -> float:
    if len(latencies) < 2:
        return latencies[0] if latencies else float("nan")
    return statistics.quantiles(latencies, n=100, method="inclusive")[q - 1]


def summarize(near: list[float], away: list[float]) -> str:
    """p50/p99/max near and away (ms) and the p99 ratio."""

    def part(name: str, xs: list[float]) -> str:
        if not xs:
            return f"{name} n=0"
        return (f"{name} n={len(xs)} p50 {_p(xs, 50) * 1000:.1f} p99 {_p(xs, 99) * 1000:.1f} "
                f"max {max(xs) * 1000:.1f} ms")

    ratio = _p(near, 99) / _p(away, 99) if near and away else float("nan")
    return f"{part('near', near)}; {part('away', away)}; p99 near/away {ratio:.2f}x"


def served_delays(rotations: list[float], serving: list[float]) -> list[float]:
    """For each rotation, seconds until the first checkout of a newer generation after it."""
    delays = []
    for rotated in rotations:
        i = bisect.bisect_left(serving, rotated - 0.002)  # the log's times are in ms
        if i < len(serving):
            delays.append(max(0.0, serving[i] - rotated))
    return delays
