"""What do short-lived credentials cost a service? The same app, three ways, one run.

    python benchmarks/service_overhead.py [--seconds 30] [--rounds 6] [--quick]

Modes, against the same PostgreSQL of one dev stack:
- plain:    static credentials in DATABASE_URL (the baseline);
- vault:    Vault-issued credentials with a long TTL (no rotation during the run);
- rotating: Vault-issued credentials with default_ttl 5 s / max_ttl 15 s (a new login every
            10-15 s, the old one revoked after its drain period).
At concurrency 16 and 64 a loopback load generator mixes GET /users/{id} (80 %) and
POST /users (20 %); the three services run side by side and take the load in turns, so
drift during the run lands on every mode alike. Prints req/s, p50, p99 and errors per mode,
and the ratios to plain.
Targets: vault >= 0.98x plain throughput, rotating >= 0.95x, zero errors, rotating p99 <= 1.5x.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.load import LoadResult, run_load
from tests.support.modes import service_modes
from tests.support.service import ServiceProcess, run_migrations
from vault_async.devstack import DevStack


def merge(parts: list[LoadResult]) -> LoadResult:
    """One result from several rounds: every outcome, the summed duration."""
    merged = LoadResult(duration=sum(part.duration for part in parts))
    for part in parts:
        merged.outcomes.extend(part.outcomes)
    return merged


def rotations_of(service: ServiceProcess) -> int:
    _, health = service.healthz()
    return int((health.get("database") or {}).get("rotations", 0))


def measure(
    services: dict[str, ServiceProcess], concurrency: int, seconds: float, rounds: int
) -> dict[str, tuple[LoadResult, int]]:
    """Load each service in turn, `rounds` times, `seconds / rounds` per turn.

    Interleaving the modes spreads whatever drifts during a run (the table growing, the
    machine's other load) evenly over all three, instead of charging it to the last one.
    """
    # Warm-up (connections open, code paths hot) also seeds the users later turns read.
    known = {
        mode: asyncio.run(run_load(service.base_url, concurrency=concurrency, duration=1)).ids
        for mode, service in services.items()
    }
    parts: dict[str, list[LoadResult]] = {mode: [] for mode in services}
    under_load = dict.fromkeys(services, 0)
    for round_no in range(rounds):
        for mode, service in services.items():
            before = rotations_of(service)
            turn = asyncio.run(run_load(
                service.base_url, concurrency=concurrency, duration=seconds / rounds,
                seed=concurrency * 100 + round_no, ids=known[mode],
            ))
            parts[mode].append(turn)
            known[mode] = turn.ids
            under_load[mode] += rotations_of(service) - before
    return {mode: (merge(parts[mode]), under_load[mode]) for mode in services}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="load per mode and level")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved turns per mode")
    parser.add_argument("--quick", action="store_true", help="3 s per cell: proves it runs")
    args = parser.parse_args()
    seconds, rounds = (3.0, 1) if args.quick else (args.seconds, args.rounds)

    with DevStack() as stack, ExitStack() as running:
        envs = service_modes(stack)
        run_migrations(stack.migration_env())
        services = {mode: running.enter_context(ServiceProcess(env)) for mode, env in envs.items()}
        failed = False
        for concurrency in (16, 64):
            print(f"\nconcurrency {concurrency}: {seconds:.0f} s per mode in {rounds} rounds")
            results = measure(services, concurrency, seconds, rounds)
            for mode, (result, rotations) in results.items():
                print(f"  {mode:9s} {result.summary()}  rotations under load={rotations}")
            plain = results["plain"][0]
            for mode in ("vault", "rotating"):
                r = results[mode][0]
                rps_ratio = r.rps / plain.rps if plain.rps else float("nan")
                p99_ratio = r.percentile(99) / plain.percentile(99)
                print(f"  {mode:9s} throughput {rps_ratio:.3f}x plain, p99 {p99_ratio:.2f}x plain")
            failed |= any(r.errors for r, _ in results.values())
        print("\nerrors: none" if not failed else "\nerrors: SOME REQUESTS FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
