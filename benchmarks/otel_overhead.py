"""What OpenTelemetry instrumentation costs a Vault request: KV v2 reads per second.

Three clients read the same secret from one dev-stack OpenBao, in interleaved rounds (the
best round of each kept): not instrumented (one ``is None`` check per request), instrumented
with OpenTelemetry's default no-op provider (the API without an SDK), and instrumented with
the SDK recording every span into a batch processor whose exporter drops them (the cost of
recording, without a collector's network cost). Each is printed with its ratio to the
uninstrumented client, sequentially and at concurrency 32.

    .venv/bin/python benchmarks/otel_overhead.py            # full run
    .venv/bin/python benchmarks/otel_overhead.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import NoOpTracerProvider

from vault_async import AsyncVaultClient
from vault_async.devstack import DevStack
from vault_async.otel import instrument

CONCURRENCY = 32
SECRET_PATH = "bench/otel"

Read = Callable[[], Awaitable[object]]


class DroppingExporter(SpanExporter):
    """Takes each batch and keeps nothing: the SDK's cost without a collector's."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


@asynccontextmanager
async def reader(addr: str, token: str, mode: str) -> AsyncIterator[Read]:
    client = AsyncVaultClient(addr=addr, token=token)
    provider: TracerProvider | None = None
    if mode == "no-op provider":
        instrument(client, tracer_provider=NoOpTracerProvider())
    elif mode == "SDK, batch export":
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
        instrument(client, tracer_provider=provider)
    try:
        async with client:

            async def read() -> object:
                return (await client.secrets.kv_v2.read_secret(SECRET_PATH)).data

            yield read
    finally:
        if provider is not None:
            provider.shutdown()


async def measure(read: Read, total: int, concurrency: int) -> float:
    """Reads per second: ``total`` reads spread over ``concurrency`` workers."""
    per_worker = max(1, total // concurrency)

    async def worker() -> None:
        for _ in range(per_worker):
            await read()

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout=300)
    return per_worker * concurrency / (time.perf_counter() - start)


MODES = ("not instrumented", "no-op provider", "SDK, batch export")


async def run(addr: str, token: str, quick: bool) -> dict[str, tuple[float, float]]:
    n_seq, n_conc, rounds = (300, 1600, 2) if quick else (1500, 6400, 5)
    best: dict[str, tuple[float, float]] = {}
    async with AsyncExitStack() as stack:
        readers = {m: await stack.enter_async_context(reader(addr, token, m)) for m in MODES}
        for read in readers.values():
            for _ in range(50):  # warm the pool, check it works
                await read()
        for _ in range(rounds):
            for mode, read in readers.items():
                seq = await measure(read, n_seq, 1)
                conc = await measure(read, n_conc, CONCURRENCY)
                old = best.get(mode, (0.0, 0.0))
                best[mode] = (max(old[0], seq), max(old[1], conc))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer reads, two rounds")
    opts = parser.parse_args()
    with DevStack() as stack:
        stack.vault_call("POST", f"secret/data/{SECRET_PATH}", {"data": {"pool": "20"}})
        best = asyncio.run(run(stack.vault_addr, stack.root_token, opts.quick))
    base_seq, base_conc = best[MODES[0]]
    print(f"\n{'client':22} {'seq reads/s':>12} {'ratio':>6} {'c=32 reads/s':>13} {'ratio':>6}")
    for mode in MODES:
        seq, conc = best[mode]
        print(f"{mode:22} {seq:12.0f} {seq / base_seq:5.2f}x {conc:13.0f} {conc / base_conc:5.2f}x")


if __name__ == "__main__":
    main()
