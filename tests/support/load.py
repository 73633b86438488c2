"""A bounded HTTP load generator for the reference service: mixed reads and writes.

Used by the end-to-end and fault tests and by the service benchmarks, so every figure they
report comes from the same loop.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx


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


async def _seed(client: httpx.AsyncClient, count: int) -> list[int]:
    ids: list[int] = []
    for _ in range(count):
        name = f"seed-{uuid.uuid4().hex[:16]}"
        response = await client.post("/users", json={"username": name, "email": f"{name}@x.test"})
        response.raise_for_status()
        ids.append(int(response.json()["id"]))
    return ids


async def run_load(
    base_url: str,
    *,
    concurrency: int,
    duration: float,
    write_ratio: float = 0.2,
    seed: int = 0,
    request_timeout: float = 10.0,
) -> LoadResult:
    """Run `concurrency` workers for `duration` seconds mixing GET /users/{id} and POST /users.

    A request counts as failed unless it answers the expected status (200 for a read, 201 for
    a write). The run is bounded: it stops at the deadline whatever the server does.
    """
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=request_timeout, limits=limits
    ) as client:
        ids = await _seed(client, 20)
        started = time.monotonic()
        deadline = started + duration
        result = LoadResult(duration=duration)

        async def worker() -> None:
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                write = rng.random() < write_ratio
                try:
                    if write:
                        name = f"u-{uuid.uuid4().hex[:20]}"
                        response = await client.post(
                            "/users", json={"username": name, "email": f"{name}@x.test"}
                        )
                        ok = response.status_code == 201
                        if ok:
                            ids.append(int(response.json()["id"]))
                    else:
                        response = await client.get(f"/users/{rng.choice(ids)}")
                        ok = response.status_code == 200
                    detail = f"{'POST' if write else 'GET'} {response.status_code}"
                except httpx.HTTPError as exc:
                    ok, detail = False, f"{'POST' if write else 'GET'} {type(exc).__name__}"
                result.outcomes.append(Outcome(t0, time.monotonic() - t0, ok, detail))

        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(concurrency))),
            timeout=duration + request_timeout + 5,
        )
        result.duration = time.monotonic() - started
    return result
