"""Read the service's /healthz from async tests without blocking their event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx


async def healthz(base_url: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of GET /healthz."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        response = await http.get("/healthz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def wait_for_health(
    base_url: str, predicate: Callable[[dict[str, Any]], bool], within: float
) -> dict[str, Any]:
    """Poll /healthz until `predicate(body)` holds; fail after `within` seconds."""
    deadline = time.monotonic() + within
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            _, body = await healthz(base_url)
        except httpx.HTTPError:
            body = {}
        if body and predicate(body):
            return body
        await asyncio.sleep(0.5)
    raise AssertionError(f"/healthz never reached the expected state; last: {body}")


async def poll_statuses(base_url: str, seconds: float, every: float = 0.5) -> list[str]:
    """The `status` field of /healthz, sampled for `seconds`."""
    statuses: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        _, body = await healthz(base_url)
        statuses.append(body["status"])
        await asyncio.sleep(every)
    return statuses
