"""The Flask example (``python -m examples.flask_app``) as a process, under real requests on
5 s / 15 s credentials: at least two rotations, no failed request, nothing left after SIGTERM."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.pools import in_threads, run_queries, watch_dropped_sessions
from tests.support.processes import stop_process
from vault_async.devstack import DevStack
from vault_async.devstack._processes import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ROLE = "flaskld"  # at most 8 characters: Vault truncates it in the login name
CONCURRENCY = 8
MAX_SECONDS = 50.0


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """The generation /healthz reports once it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the example exited during start-up"
        try:
            answer = httpx.get(f"{base}/healthz", timeout=2)
            if answer.status_code == 200:
                return int(answer.json()["generation"])
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no healthy answer from {base} in {timeout:g} s")


def create_users(base: str, prefix: str, count: int) -> list[httpx.Response]:
    """POST /users ``count`` times (the rotation load then reads them back)."""
    with httpx.Client(base_url=base, timeout=10) as client:
        return [
            client.post("/users", json={"username": f"{prefix}-{n}", "email": f"u{n}@example.org"})
            for n in range(count)
        ]


async def test_flask_example_serves_across_rotations(migrated: DevStack, tmp_path: Path) -> None:
    migrated.create_dynamic_role(ROLE, "5s", "15s")
    pattern = f"v-%-{ROLE}-%"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ, **migrated.env(), "VAULT_DB_ROLE": ROLE, "DB_ASSUME_ROLE": "app_rw",
        "PORT": str(port), "PYTHONPATH": str(ROOT),
    }
    log = (tmp_path / "flask.log").open("wb")
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_dropped_sessions(migrated, pattern, stop))
    proc = await asyncio.to_thread(
        subprocess.Popen, [sys.executable, "-m", "examples.flask_app"], cwd=ROOT, env=env,
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        first = await asyncio.to_thread(wait_healthy, base, proc)
        local = threading.local()

        def client() -> httpx.Client:
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=base, timeout=10)
            return local.client  # type: ignore[no-any-return]

        created = await asyncio.to_thread(create_users, base, f"flask-{port}", 20)
        assert [r.status_code for r in created] == [201] * 20
        ids = [r.json()["id"] for r in created]

        def request(n: int) -> object:
            answer = client().get(f"/users/{ids[n % len(ids)]}")
            if answer.status_code != 200:
                raise RuntimeError(f"status {answer.status_code}")
            return answer.json()

        generation = [first]

        def rotated_twice() -> bool:
            return generation[0] >= first + 2

        def follow() -> None:
            while not rotated_twice() and proc.poll() is None:
                generation[0] = int(httpx.get(f"{base}/healthz", timeout=5).json()["generation"])
                time.sleep(0.5)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as threads:
            stats = await run_queries(
                in_threads(request, threads), concurrency=CONCURRENCY, seconds=MAX_SECONDS,
                until=rotated_twice,
            )
            stats_after = await run_queries(
                in_threads(request, threads), concurrency=CONCURRENCY, seconds=2.0
            )
        follower.join(10)
    finally:
        code = await asyncio.to_thread(stop_process, proc, timeout=30)
        log.close()
    stop.set()
    orphans = await asyncio.wait_for(watcher, timeout=10)
    output = (tmp_path / "flask.log").read_text(errors="replace")
    print(f"\n[flask] {stats.summary()}; generations {first} -> {generation[0]}")
    assert stats.failures == [], stats.failures[:5]
    assert stats_after.failures == []
    assert generation[0] >= first + 2
    assert len(stats.latencies) > 500
    assert code == 0, output[-2000:]
    assert "Traceback" not in output, output[-2000:]
    assert orphans == [], "sessions left open after their login was dropped"
    assert not [r for r in await migrated.v_roles() if f"-{ROLE}-" in r]
    async with migrated.admin_connection() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE $1", pattern
        ) == 0
