"""A bounded HTTP load generator for the reference service: mixed reads and writes.

Used by the end-to-end and fault tests and by the service benchmarks, so every figure they
report comes from the same loop.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp


@dataclass(slots=True)
class Outcome:
    """One request: when it started (monotonic), how long it took, and whether it was right."""

    started: float
    latency: float
    ok: bool
    detail: str


@dataclass(slots=True)
class LoadResult:
    """Everything a run observed."""

    duration: float
    outcomes: list[Outcome] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    """Ids of users known to exist at the end: pass them to the next run, which reads them."""

    @property
    def requests(self) -> int:
        return len(self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def errors(self) -> int:
        return len(self.failures)

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile in seconds (q in 0..100) over successful requests."""
        latencies = sorted(o.latency for o in self.outcomes if o.ok)
        if not latencies:
            return float("nan")
        if len(latencies) == 1:
            return latencies[0]
        return statistics.quantiles(latencies, n=1000, method="inclusive")[
            min(998, max(0, round(q * 10) - 1))
        ]

    def failure_kinds(self) -> Counter[str]:
        return Counter(o.detail for o in self.failures)

    def summary(self) -> str:
        return (
            f"{self.requests} requests in {self.duration:.1f} s = {self.rps:.0f} req/s, "
            f"p50 {self.percentile(50) * 1000:.1f} ms, p99 {self.percentile(99) * 1000:.1f} ms, "
            f"errors {self.errors} {dict(self.failure_kinds())}"
        )


async def _seed(session: aiohttp.ClientSession, count: int) -> list[int]:
    ids: list[int] = []
    for _ in range(count):
        name = f"seed-{uuid.uuid4().hex[:16]}"
        body = {"username": name, "email": f"{name}@x.test"}
        async with session.post("/users", json=body) as response:
            response.raise_for_status()
            ids.append(int((await response.json())["id"]))
    return ids


async def _one_request(
    session: aiohttp.ClientSession, rng: random.Random, ids: list[int], write_ratio: float
) -> tuple[bool, str]:
    """One read or write; (answered as expected, "METHOD status-or-error")."""
    write = rng.random() < write_ratio
    method = "POST" if write else "GET"
    try:
        if write:
            name = f"u-{uuid.uuid4().hex[:20]}"
            body = {"username": name, "email": f"{name}@x.test"}
            async with session.post("/users", json=body) as response:
                payload = await response.read()
                ok = response.status == 201
                if ok:
                    ids.append(int(json.loads(payload)["id"]))
        else:
            async with session.get(f"/users/{rng.choice(ids)}") as response:
                await response.read()
                ok = response.status == 200
        return ok, f"{method} {response.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return False, f"{method} {type(exc).__name__}"


async def run_load(
    base_url: str,
    *,
    concurrency: int,
    duration: float,
    write_ratio: float = 0.2,
    seed: int = 0,
    request_timeout: float = 10.0,
    ids: list[int] | None = None,
    stop: threading.Event | None = None,
) -> LoadResult:
    """Run `concurrency` workers for `duration` seconds mixing GET /users/{id} and POST /users.

    A request counts as failed unless it answers the expected status (200 for a read, 201 for
    a write). The run is bounded: it stops at the deadline whatever the server does. Reads pick
    from `ids` (a previous run's `result.ids`); without them the run first creates 20 users.
    Setting `stop` (from another thread) ends the run early, after the requests in flight.

    The client is aiohttp rather than httpx: measured against this service at concurrency 64,
    an httpx client saturated its own CPU at about a quarter of the service's throughput, so
    the figures described the load generator instead of the service.
    """
    rng = random.Random(seed)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=request_timeout)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        known = list(ids) if ids else await _seed(session, 20)
        started = time.monotonic()
        deadline = started + duration
        result = LoadResult(duration=duration, ids=known)

        async def worker() -> None:
            while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
                t0 = time.monotonic()
                ok, detail = await _one_request(session, rng, known, write_ratio)
                result.outcomes.append(Outcome(t0, time.monotonic() - t0, ok, detail))

        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(concurrency))),
            timeout=duration + request_timeout + 5,
        )
        result.duration = time.monotonic() - started
    return result
