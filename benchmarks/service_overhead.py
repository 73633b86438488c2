"""What do short-lived credentials cost a service? The same app, three ways, one run.

    python benchmarks/service_overhead.py [--seconds 20] [--quick]

Modes, against the same PostgreSQL of one dev stack:
- plain:    static credentials in DATABASE_URL (the baseline);
- vault:    Vault-issued credentials with a long TTL (no rotation during the run);
- rotating: Vault-issued credentials with default_ttl 5 s / max_ttl 15 s (a new login every
            10-15 s, the old one revoked after its drain period).
At concurrency 16 and 64 a loopback load generator mixes GET /users/{id} (80 %) and
POST /users (20 %). Prints req/s, p50, p99 and errors per mode, and the ratios to plain.
Targets: vault >= 0.98x plain throughput, rotating >= 0.95x, zero errors, rotating p99 <= 1.5x.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.load import LoadResult, run_load
from tests.support.service import ServiceProcess, run_migrations
from vault_async.devstack import DevStack

PLAIN_USER = "bench_plain"


async def create_plain_user(stack: DevStack, password: str) -> None:
    conn = await stack.admin_connect()
    try:
        await conn.execute(
            f"CREATE ROLE {PLAIN_USER} LOGIN PASSWORD $pw${password}$pw$ IN ROLE {stack.group_role}"
        )
    finally:
        await conn.close()


def mode_envs(stack: DevStack, plain_password: str) -> dict[str, dict[str, str]]:
    base = stack.env()
    stack.create_dynamic_role("bench-long", "1h", "24h")
    stack.create_dynamic_role("bench-rotating", "5s", "15s")
    plain_url = (
        f"postgresql+asyncpg://{PLAIN_USER}:{plain_password}@{stack.pg_host}:{stack.pg_port}/"
        f"{stack.database}"
    )
    return {
        "plain": {"DATABASE_URL": plain_url},
        "vault": base | {"VAULT_DB_ROLE": "bench-long"},
        "rotating": base | {"VAULT_DB_ROLE": "bench-rotating"},
    }


def measure(env: dict[str, str], concurrency: int, seconds: float) -> tuple[LoadResult, int]:
    with ServiceProcess(env) as service:
        asyncio.run(run_load(service.base_url, concurrency=concurrency, duration=2))  # warm-up
        result = asyncio.run(
            run_load(service.base_url, concurrency=concurrency, duration=seconds, seed=concurrency)
        )
        _, health = service.healthz()
    rotations = int((health.get("database") or {}).get("rotations", 0))
    return result, rotations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="3 s per cell: proves it runs")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.seconds

    with DevStack() as stack:
        password = secrets.token_urlsafe(16)
        asyncio.run(create_plain_user(stack, password))
        envs = mode_envs(stack, password)
        run_migrations(envs["vault"])
        failed = False
        for concurrency in (16, 64):
            results: dict[str, LoadResult] = {}
            print(f"\nconcurrency {concurrency}, {seconds:.0f} s per mode")
            for mode, env in envs.items():
                result, rotations = measure(env, concurrency, seconds)
                results[mode] = result
                print(f"  {mode:9s} {result.summary()}  rotations={rotations}")
            plain = results["plain"]
            for mode in ("vault", "rotating"):
                r = results[mode]
                rps_ratio = r.rps / plain.rps if plain.rps else float("nan")
                p99_ratio = r.percentile(99) / plain.percentile(99)
                print(f"  {mode:9s} throughput {rps_ratio:.3f}x plain, p99 {p99_ratio:.2f}x plain")
            failed |= any(r.errors for r in results.values())
        print("\nerrors: none" if not failed else "\nerrors: SOME REQUESTS FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
