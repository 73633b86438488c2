"""KV v2 reads per second against a real OpenBao, sequentially and at concurrency 32.

Compares raw aiohttp (the practical floor of Python HTTP cost), raw httpx.AsyncClient,
async-hvac, hvac in a 32-thread pool, and vault_async (over its default transport and
over httpx's own pool), all in one run against one dev-stack server, and prints each
result with its ratio to raw aiohttp. Rounds are interleaved and the best round of each
is kept, so load from other processes does not favour whoever ran last.

    .venv/bin/python benchmarks/client_throughput.py            # full run
    .venv/bin/python benchmarks/client_throughput.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

from vault_async import AsyncVaultClient, ClientConfig
from vault_async._transport import httpx_transport
from vault_async.devstack import DevStack

CONCURRENCY = 32
SECRET_PATH = "bench/config"
SECRET = {"url": "postgresql://db:5432/app", "feature_flags": "a,b,c", "pool": "20"}

ReadFn = Callable[[], Awaitable[Any]]


@dataclass
class Result:
    name: str
    sequential: float | None
    concurrent: float | None
    note: str = ""


async def _measure(read: ReadFn, total: int, concurrency: int) -> float:
    """Reads per second: ``total`` reads spread over ``concurrency`` workers."""
    per_worker = max(1, total // concurrency)
    start = time.perf_counter()

    async def worker() -> None:
        for _ in range(per_worker):
            await read()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout=300)
    return per_worker * concurrency / (time.perf_counter() - start)


@asynccontextmanager
async def raw_aiohttp(addr: str, token: str) -> AsyncIterator[ReadFn]:
    url = f"{addr}/v1/secret/data/{SECRET_PATH}"
    headers = {"X-Vault-Token": token}
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def read() -> Any:
            async with session.get(url, headers=headers) as resp:
                body = json.loads(await resp.read())
                assert resp.status == 200
                return body["data"]["data"]

        yield read


@asynccontextmanager
async def raw_httpx(addr: str, token: str) -> AsyncIterator[ReadFn]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=addr, limits=limits) as client:
        headers = {"X-Vault-Token": token}

        async def read() -> Any:
            resp = await client.get(f"/v1/secret/data/{SECRET_PATH}", headers=headers)
            assert resp.status_code == 200
            return resp.json()["data"]["data"]

        yield read


@asynccontextmanager
async def async_hvac_client(addr: str, token: str) -> AsyncIterator[ReadFn]:
    import async_hvac

    client = async_hvac.AsyncClient(url=addr, token=token)
    try:

        async def read() -> Any:
            return (await client.read(f"secret/data/{SECRET_PATH}"))["data"]["data"]

        yield read
    finally:
        await client.close()


@asynccontextmanager
async def hvac_threads(addr: str, token: str) -> AsyncIterator[ReadFn]:
    import hvac

    local = threading.local()

    def read_sync() -> Any:
        if not hasattr(local, "client"):
            local.client = hvac.Client(url=addr, token=token)
        return local.client.secrets.kv.v2.read_secret_version(
            path=SECRET_PATH, mount_point="secret", raise_on_deleted_version=True
        )["data"]["data"]

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:

        async def read() -> Any:
            return await loop.run_in_executor(pool, read_sync)

        yield read


def ours(use_httpx_pool: bool) -> Callable[[str, str], Any]:
    @asynccontextmanager
    async def factory(addr: str, token: str) -> AsyncIterator[ReadFn]:
        config = ClientConfig(addr=addr, token=token)
        transport = httpx_transport(config) if use_httpx_pool else None
        async with AsyncVaultClient(config=config, transport=transport) as client:

            async def read() -> Any:
                return (await client.secrets.kv_v2.read_secret(SECRET_PATH)).data

            yield read

    return factory


CONTENDERS: list[tuple[str, Callable[[str, str], Any]]] = [
    ("raw aiohttp", raw_aiohttp),
    ("raw httpx.AsyncClient", raw_httpx),
    ("async-hvac", async_hvac_client),
    (f"hvac in {CONCURRENCY} threads", hvac_threads),
    ("vault_async (default transport)", ours(use_httpx_pool=False)),
    ("vault_async (httpx's own pool)", ours(use_httpx_pool=True)),
]


async def run(addr: str, token: str, quick: bool) -> list[Result]:
    """Open every contender, then interleave rounds so machine noise hits all alike."""
    n_seq, n_conc, rounds = (300, 1600, 2) if quick else (1000, 3200, 5)
    seq: dict[str, list[float]] = {}
    conc: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    async with AsyncExitStack() as stack:
        readers: dict[str, ReadFn] = {}
        for name, factory in CONTENDERS:
            try:
                readers[name] = await stack.enter_async_context(factory(addr, token))
                for _ in range(50):  # warm the pool, check it works
                    await readers[name]()
            except ImportError as exc:
                notes[name] = f"unavailable: {exc}"
                readers.pop(name, None)
        for _ in range(rounds):
            for name, read in readers.items():
                seq.setdefault(name, []).append(await _measure(read, n_seq, 1))
                conc.setdefault(name, []).append(await _measure(read, n_conc, CONCURRENCY))
    return [
        Result(
            name,
            max(seq[name]) if name in seq else None,
            max(conc[name]) if name in conc else None,
            notes.get(name, ""),
        )
        for name, _ in CONTENDERS
    ]


def _ratio(value: float | None, floor: float | None) -> str:
    if value is None or not floor:
        return "   -  "
    return f"{value / floor:5.2f}x"


def _print(results: list[Result]) -> None:
    floor = results[0]
    print(f"\n{'client':34} {'seq reads/s':>12} {'ratio':>7} {'c=32 reads/s':>13} {'ratio':>7}")
    for r in results:
        seq = f"{r.sequential:12.0f}" if r.sequential is not None else f"{'-':>12}"
        conc = f"{r.concurrent:13.0f}" if r.concurrent is not None else f"{'-':>13}"
        line = f"{r.name:34} {seq} {_ratio(r.sequential, floor.sequential):>7} "
        line += f"{conc} {_ratio(r.concurrent, floor.concurrent):>7}"
        print(line + (f"  ({r.note})" if r.note else ""))
    ours = next(r for r in results if r.name.startswith("vault_async (default"))
    hvac_r = next(r for r in results if r.name.startswith("hvac in"))
    if ours.concurrent and hvac_r.concurrent:
        print(
            f"\nvault_async vs hvac-in-threads at c={CONCURRENCY}: "
            f"{ours.concurrent / hvac_r.concurrent:.2f}x (target >= 3x)"
        )
    print("targets: vault_async >= 0.9x raw aiohttp in both modes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer reads, one round")
    opts = parser.parse_args()
    with DevStack() as stack:
        stack.vault_call("POST", f"secret/data/{SECRET_PATH}", {"data": SECRET})
        results = asyncio.run(run(stack.vault_addr, stack.root_token, opts.quick))
    _print(results)


if __name__ == "__main__":
    main()
