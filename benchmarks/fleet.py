"""A fleet started at once: how fast it is ready, and what it asks of Vault and PostgreSQL.

    python benchmarks/fleet.py [--replicas 20] [--workers 2] [--quick]

N reference-service processes (`--replicas`) of M uvicorn workers each (`--workers`; every
worker keeps its own token and lease) start at the same instant against a three-node OpenBao
raft cluster, on a dynamic role with short leases (10 s, max 30 s: rotations happen while
the fleet is watched). Three runs in one stack: N replicas, N/2 replicas (the baseline for
Vault's load), and N replicas again under a rate-limit quota below their start-up demand
(logins and credentials at a quarter of the fleet's workers per second, with
VAULT_STARTUP_JITTER). Each run prints the time until every worker holds a credential,
Vault's peak requests/s (OpenBao's own `sys/metrics` counters on every node, this script's
own requests measured while idle and taken off), the tokens and database leases per worker
(`sys/leases/lookup`), the live `v-` logins in pg_roles and pg_stat_activity over time, and
whether any replica failed to start.
Targets: leases per worker stay 1 (+1 while rotating), Vault's load grows linearly with the
replicas (N against N/2 in the same run: ratio about 2), no replica fails to start.
`--quick`: 2 replicas x 1 worker, short windows (proves it runs; CI does that).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.service import ServiceProcess
from vault_async.devstack import DevStack

ROLE = "fleet"
SAMPLE_EVERY = 0.5


@dataclass
class Run:
    label: str
    replicas: int
    workers: int
    ready_after: float | None = None
    failed: int = 0
    peak_rps: float = 0.0
    total_requests: float = 0.0
    max_leases: int = 0
    max_tokens: int = 0
    timeline: list[tuple[float, int, int, int, int]] = field(default_factory=list)


class VaultLoad:
    """Requests handled by the cluster, from each node's `sys/metrics` (in-memory sink)."""

    def __init__(self, stack: DevStack) -> None:
        self.addrs = stack.vault_addrs
        self.headers = {"X-Vault-Token": stack.root_token}
        self.last: dict[str, tuple[str, float]] = {}

    async def requests_since_last(self, http: httpx.AsyncClient) -> float:
        """Requests handled since the previous call (the sink's interval resets are followed)."""
        total = 0.0
        for addr in self.addrs:
            try:
                body: dict[str, Any] = (
                    await http.get(f"{addr}/v1/sys/metrics", headers=self.headers)
                ).json()
            except (httpx.HTTPError, ValueError):
                continue
            count = sum(
                float(s["Count"]) for s in body.get("Samples", [])
                if s["Name"] in ("vault.core.handle_request", "vault.core.handle_login_request")
            )
            stamp = str(body.get("Timestamp"))
            before = self.last.get(addr)
            self.last[addr] = (stamp, count)
            if before is None:
                continue
            total += count - before[1] if before[0] == stamp else count
        return total


async def lease_counts(http: httpx.AsyncClient, stack: DevStack) -> tuple[int, int]:
    """(live database leases of the role, live AppRole tokens) from `sys/leases/lookup`."""
    counts = []
    for prefix in (f"{stack.db_mount}/creds/{ROLE}/", "auth/approle/login/"):
        response = await http.request(
            "LIST", f"{stack.vault_addr}/v1/sys/leases/lookup/{prefix}",
            headers={"X-Vault-Token": stack.root_token},
        )
        ok = response.status_code == 200
        keys = response.json().get("data", {}).get("keys", []) if ok else []
        counts.append(len(keys))
    return counts[0], counts[1]


async def pg_logins(stack: DevStack) -> tuple[int, int]:
    """(v- roles of the role in pg_roles, their connections in pg_stat_activity)."""
    async with stack.admin_connection() as conn:
        roles = await conn.fetchval(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE $1", f"v-%-{ROLE}-%"
        )
        conns = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE $1", f"v-%-{ROLE}-%"
        )
    return int(roles), int(conns)


async def idle_self_load(stack: DevStack, load: VaultLoad, seconds: float) -> float:
    """This script's own requests per sample, measured with no service running."""
    async with httpx.AsyncClient(timeout=10) as http:
        await load.requests_since_last(http)
        seen, samples = 0.0, 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await lease_counts(http, stack)
            await asyncio.sleep(SAMPLE_EVERY)
            seen += await load.requests_since_last(http)
            samples += 1
    return seen / max(samples, 1)


async def watch(
    stack: DevStack, run: Run, services: list[ServiceProcess], starting: list[asyncio.Task[Any]],
    observe: float, own_per_sample: float,
) -> None:
    load = VaultLoad(stack)
    started = time.monotonic()
    workers = run.replicas * run.workers
    async with httpx.AsyncClient(timeout=10) as http:
        await load.requests_since_last(http)
        last = time.monotonic()
        ready_until: float | None = None
        while True:
            await asyncio.sleep(SAMPLE_EVERY)
            now = time.monotonic()
            leases, tokens = await lease_counts(http, stack)
            handled = max(0.0, await load.requests_since_last(http) - own_per_sample)
            run.total_requests += handled
            run.peak_rps = max(run.peak_rps, handled / max(now - last, 1e-3))
            last = now
            roles, conns = await pg_logins(stack)
            t = now - started
            run.timeline.append((t, leases, tokens, roles, conns))
            if run.ready_after is not None:
                run.max_leases = max(run.max_leases, leases)
                run.max_tokens = max(run.max_tokens, tokens)
            done = all(task.done() for task in starting)
            if run.ready_after is None and done and leases >= workers:
                run.ready_after = t
                ready_until = now + observe
            if run.ready_after is None and t > 180:
                break
            if ready_until is not None and now >= ready_until:
                break
    run.failed = sum(1 for task in starting if task.exception() is not None) if all(
        task.done() for task in starting) else len(services)


def argv_for(workers: int) -> list[str] | None:
    if workers <= 1:
        return None
    return [sys.executable, "-m", "uvicorn", "app.main:app", "--workers", str(workers)]


async def one_run(
    stack: DevStack, run: Run, env: dict[str, str], observe: float, own: float
) -> None:
    with ExitStack() as stopping:
        services = [ServiceProcess(env, argv=argv_for(run.workers)) for _ in range(run.replicas)]
        for service in services:
            stopping.callback(service.stop)
        starting = [asyncio.create_task(asyncio.to_thread(s.start, 180)) for s in services]
        await watch(stack, run, services, starting, observe, own)
        await asyncio.gather(*starting, return_exceptions=True)
    # Every service stopped: the next run starts from a clean slate.
    await asyncio.sleep(1.0)


def report(run: Run) -> None:
    workers = run.replicas * run.workers
    print(f"\n== {run.label}: {run.replicas} replicas x {run.workers} workers")
    print(f"{'t (s)':>6} {'db leases':>9} {'tokens':>6} {'v-roles':>7} {'v-conns':>7}")
    step = max(1, len(run.timeline) // 12)
    for t, leases, tokens, roles, conns in run.timeline[::step]:
        print(f"{t:6.1f} {leases:9d} {tokens:6d} {roles:7d} {conns:7d}")
    ready = "never" if run.ready_after is None else f"{run.ready_after:.1f} s"
    print(f"all ready after: {ready}; replicas failed to start: {run.failed} (target 0)")
    print(f"Vault: peak {run.peak_rps:.1f} requests/s, {run.total_requests:.0f} requests in all")
    print(f"per worker after ready: at most {run.max_leases / workers:.2f} db leases "
          f"(target 1, +1 while rotating), {run.max_tokens / workers:.2f} tokens")


async def bench(args: argparse.Namespace) -> int:
    half = max(1, args.replicas // 2)
    runs = [
        Run("no quota", args.replicas, args.workers),
        Run("no quota, half the replicas (baseline)", half, args.workers),
        Run(f"quota, VAULT_STARTUP_JITTER={args.jitter}", args.replicas, args.workers),
    ]
    rate = max(1, args.replicas * args.workers // 4)
    with DevStack(nodes=3) as stack:
        stack.create_dynamic_role(ROLE, "10s", "30s")
        base_env = stack.env() | {"VAULT_DB_ROLE": ROLE, "VAULT_STARTUP_TIMEOUT": "170"}
        own = await idle_self_load(stack, VaultLoad(stack), 3.0)
        print(f"3-node cluster up; this script's own Vault requests per sample: {own:.1f}")
        for run in runs:
            env = dict(base_env)
            if run.label.startswith("quota"):
                for name, path in (("logins", "auth/approle/login"), ("creds", "database/creds")):
                    stack.vault_call("POST", f"sys/quotas/rate-limit/{name}",
                                     {"rate": rate, "interval": "1s", "path": path})
                env["VAULT_STARTUP_JITTER"] = args.jitter
                print(f"\nquota: {rate} logins/s and {rate} credentials/s for "
                      f"{run.replicas * run.workers} workers")
            await one_run(stack, run, env, args.observe, own)
            report(run)
    full, half_run, quota = runs
    ratio = full.total_requests / half_run.total_requests if half_run.total_requests else 0.0
    print(f"\nVault requests, {full.replicas} against {half_run.replicas} replicas: "
          f"ratio {ratio:.2f} (target ~{full.replicas / half_run.replicas:.1f}: linear)")
    if full.ready_after and quota.ready_after:
        print(f"all ready under the quota: {quota.ready_after / full.ready_after:.1f}x the time "
              f"without; peak requests/s {quota.peak_rps:.1f} against {full.peak_rps:.1f}")
    ok = all(r.failed == 0 and r.ready_after is not None for r in runs)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--observe", type=float, default=30.0,
                        help="seconds watched after all are ready (rotations happen)")
    parser.add_argument("--jitter", default="5s", help="VAULT_STARTUP_JITTER of the quota run")
    parser.add_argument("--quick", action="store_true", help="2 replicas x 1 worker")
    args = parser.parse_args()
    if args.quick:
        args.replicas, args.workers, args.observe, args.jitter = 2, 1, 4.0, "2s"
    if args.replicas < 2 or args.workers < 1:
        parser.error("--replicas must be >= 2 and --workers >= 1")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    raise SystemExit(main())
