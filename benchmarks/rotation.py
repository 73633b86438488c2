"""Does a rotation show in the tail? Latency right after each rotation against the rest.

    python benchmarks/rotation.py [--seconds 30] [--rounds 3] [--lease 30] [--no-prewarm]
                                  [--margin N] [--sizes 10,50] [--quick]

For pool sizes 10 (overflow 10, 16 clients) and 50 (no overflow, 64 clients), three copies
of the reference service on one dev stack:
- plain:    static credentials in DATABASE_URL (the baseline);
- vault:    Vault-issued credentials with a long TTL (no rotation during the run);
- rotating: Vault-issued credentials on a role whose lease is `--lease` seconds and never
            renewed, so the service rotates every 2/3 x lease, and the old login stays
            usable for lease / 6 after, up to a 30 s lease (the lease engine's rotation
            and revocation leads): 5 s with the default lease, 2 s in --quick mode.
The three take the same load at the same time (side by side: one load process each, so
the machine's noise hits all of them alike), then in turns (interleaved rounds).

From every request's start time and latency and every rotation instant (the rotating
service's `lease.rotated` log line), it prints p50/p99/max of the requests started within
2 s after a rotation against the rest of the same run (and the same windows on the plain
service, as a control), the time from `lease.rotated` to the first checkout of a connection
of the new generation (`pool.generation_serving`), the connections opened per rotation
(the binding's `connects` counter, vault's as the baseline; the spares a rollover opened
apart from those requests had to open), each rollover (`pool.prewarmed`) and the
service's extra CPU-milliseconds per rotation (psutil: rotating's CPU minus vault's,
scaled to the same number of requests). Ratios are against the baseline of the same run;
nothing is asserted.
Targets: near-rotation p99 <= 1.1x away; rotating >= 0.98x plain and vault >= 0.99x plain
side by side; zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._rotation_report import (
    Marks,
    near_away,
    read_marks,
    served_delays,
    summarize,
)
from tests.support.load import LoadResult, run_load
from tests.support.modes import service_modes
from tests.support.service import ServiceProcess, run_migrations
from vault_async.devstack import DevStack

ROLE = "rotbench"  # at most 8 characters: Vault truncates it in the login name
WINDOW = 2.0
"""Seconds after a rotation whose requests count as near it."""
SIZES = ((10, 10, 16), (50, 0, 64))
"""(pool size, overflow, clients) per level."""


def load(base_url: str, concurrency: int, seconds: float, seed: int, ids: list[int]) -> LoadResult:
    """One load run in a process of its own (the three side by side do not share a GIL)."""
    return asyncio.run(
        run_load(base_url, concurrency=concurrency, duration=seconds, seed=seed, ids=ids or None)
    )


@dataclass
class Sample:
    """What a service's counters say at one moment."""

    cpu: float
    connects: int
    prewarmed: int

    @classmethod
    def of(cls, service: ServiceProcess) -> Sample:
        process = psutil.Process(service.pid)
        cpu = sum(p.cpu_times().user + p.cpu_times().system
                  for p in [process, *process.children(recursive=True)])
        _, health = service.healthz()
        pool = health["pool"]
        return cls(cpu, int(pool["connects"]), int(pool.get("prewarmed", 0)))


@dataclass
class Run:
    """One mode's share of one phase."""

    result: LoadResult
    cpu: float
    connects: int
    prewarmed: int


def phase(
    pool: ProcessPoolExecutor, services: dict[str, ServiceProcess], ids: dict[str, list[int]],
    concurrency: int, seconds: float, rounds: int, side_by_side: bool, seed: int,
) -> dict[str, Run]:
    """Load the services together (side by side) or in turns; keep what each one did."""
    before = {mode: Sample.of(s) for mode, s in services.items()}
    parts: dict[str, list[LoadResult]] = {mode: [] for mode in services}
    if side_by_side:
        futures = {
            mode: pool.submit(load, s.base_url, concurrency, seconds, seed, ids[mode])
            for mode, s in services.items()
        }
        for mode, future in futures.items():
            parts[mode].append(future.result(timeout=seconds + 60))
    else:
        for round_no in range(rounds):
            for mode, s in services.items():
                turn = pool.submit(
                    load, s.base_url, concurrency, seconds / rounds, seed + round_no, ids[mode]
                ).result(timeout=seconds + 60)
                parts[mode].append(turn)
    after = {mode: Sample.of(s) for mode, s in services.items()}
    runs = {}
    for mode, results in parts.items():
        merged = LoadResult(duration=sum(r.duration for r in results))
        for r in results:
            merged.outcomes.extend(r.outcomes)
        ids[mode] = results[-1].ids
        runs[mode] = Run(
            merged, after[mode].cpu - before[mode].cpu,
            after[mode].connects - before[mode].connects,
            after[mode].prewarmed - before[mode].prewarmed,
        )
    return runs


def report(title: str, runs: dict[str, Run], marks: Marks, errors: list[int]) -> None:
    """Print one phase: throughput ratios, the blip, connects and CPU per rotation."""
    print(f"  {title}")
    plain = runs["plain"].result
    for mode, run in runs.items():
        r = run.result
        ratio = r.rps / plain.rps if plain.rps else float("nan")
        print(f"    {mode:9s} {r.summary()}  ({ratio:.3f}x plain)")
        errors.append(r.errors)
    begin = min(o.started for run in runs.values() for o in run.result.outcomes)
    end = max(o.started for run in runs.values() for o in run.result.outcomes)
    rotations = [t for t in marks.rotated if begin <= t <= end]
    print(f"    rotations under load: {len(rotations)}")
    if not rotations:
        return
    for mode in ("rotating", "plain"):
        near, away = near_away(runs[mode].result, rotations, WINDOW)
        label = "rotating" if mode == "rotating" else "plain (control, same windows)"
        print(f"    {label}: {summarize(near, away)}")
    delays = served_delays(rotations, marks.serving)
    shown = ", ".join(f"{d * 1000:.0f}" for d in delays)
    print(f"    rotated -> first checkout on the new generation (ms): {shown}")
    rolled = [text for at, text in marks.rollovers if begin <= at <= end + 5]
    print(f"    rollovers (old connections replaced/old, time (looks at the pool)): "
          f"{', '.join(rolled) or 'none (pre-warm off)'}")
    rot, vault = runs["rotating"], runs["vault"]
    extra_connects = (rot.connects - vault.connects) / len(rotations)
    on_path = (rot.connects - rot.prewarmed - vault.connects) / len(rotations)
    print(f"    connections opened per rotation: {extra_connects:.1f}, of which on the request "
          f"path {on_path:.1f} (rotating {rot.connects} with {rot.prewarmed} pre-warmed, "
          f"vault {vault.connects} in the phase)")
    scale = rot.result.requests / vault.result.requests if vault.result.requests else 1.0
    extra_cpu = (rot.cpu - vault.cpu * scale) / len(rotations)
    print(f"    extra service CPU per rotation: {extra_cpu * 1000:.0f} ms "
          f"(rotating {rot.cpu:.2f} s, vault {vault.cpu:.2f} s)")
    shown = ", ".join(f"{message} x{count}" for message, count in marks.warnings.items())
    print(f"    rotating service's warnings so far: {shown or 'none'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="load per phase and level")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved turns per mode")
    parser.add_argument("--lease", type=int, default=30, help="rotating lease, seconds")
    parser.add_argument("--quick", action="store_true", help="side by side only, 10 s a level")
    parser.add_argument(
        "--no-prewarm", action="store_true",
        help="the rotating service swaps its pool at once (DB_POOL_PREWARM=false)",
    )
    parser.add_argument(
        "--margin", type=int, default=None,
        help="DB_POOL_PREWARM_MARGIN of the rotating service (default: the service's, a tenth "
        "of size plus overflow, at least 2)",
    )
    parser.add_argument(
        "--sizes", default="10,50",
        help="pool sizes to run, comma-separated, of " + ", ".join(str(s[0]) for s in SIZES),
    )
    args = parser.parse_args()
    wanted = {int(size) for size in args.sizes.split(",")}
    if unknown := wanted - {s[0] for s in SIZES}:
        parser.error(f"--sizes: no level for pool size {sorted(unknown)}")
    seconds, lease = (10.0, 12) if args.quick else (args.seconds, args.lease)

    errors: list[int] = []
    spawn = multiprocessing.get_context("spawn")
    with DevStack() as stack, ProcessPoolExecutor(3, mp_context=spawn) as pool:
        envs = service_modes(stack)
        stack.create_dynamic_role(ROLE, f"{lease}s", f"{lease}s")
        envs["rotating"] = envs["rotating"] | {
            "VAULT_DB_ROLE": ROLE, "DB_POOL_PREWARM": "false" if args.no_prewarm else "true",
        }
        if args.margin is not None:
            envs["rotating"]["DB_POOL_PREWARM_MARGIN"] = str(args.margin)
        run_migrations(stack.migration_env())
        for size, overflow, concurrency in (s for s in SIZES if s[0] in wanted):
            print(f"\npool {size} (+{overflow} overflow), {concurrency} clients per service, "
                  f"lease {lease} s")
            extra = {"DB_POOL_SIZE": str(size), "DB_POOL_OVERFLOW": str(overflow),
                     "LOG_FORMAT": "json"}
            with ExitStack() as running:
                services = {
                    mode: running.enter_context(ServiceProcess(env | extra))
                    for mode, env in envs.items()
                }
                ids: dict[str, list[int]] = {mode: [] for mode in services}
                phase(pool, services, ids, concurrency, 1.0, 1, True, 1)  # warm-up, seeds
                time.sleep(0.1)
                phases = [("side by side", True)]
                if not args.quick:
                    phases.append((f"interleaved, {args.rounds} rounds", False))
                for title, together in phases:
                    runs = phase(pool, services, ids, concurrency, seconds, args.rounds,
                                 together, size)
                    marks = read_marks(services["rotating"].output())
                    report(title, runs, marks, errors)
    failed = any(errors)
    print("\nerrors: none" if not failed else "\nerrors: SOME REQUESTS FAILED")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
