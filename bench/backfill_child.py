"""The indexer process of the backfill benchmark, run as the CLI runs it: one ChainIndexer per
configured chain, all backfilling concurrently in one event loop (indexer/cli.py
_run_chains). Prints one JSON line: wall time, events, RPC requests made, peak RSS and RSS
samples (to show how memory grows).

    python -m bench.backfill_child CONFIG DSN

Experiments for fixes proposed in bench/README.md (the shipped code runs without them):
BENCH_PER_CALL_LIMIT=1 makes the RPC client's rate limiter charge one token per call of a
batch (as providers count); BENCH_PRICE_CACHE=N caps each price cache at N entries.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from typing import Any

from indexer.config import load_config
from indexer.pipeline import ChainIndexer
from indexer.store.migrate import migrate

SAMPLE_S = 0.5


def charge_per_call() -> None:
    """Experiment: take one limiter token per call of a batch, not per HTTP request."""
    from indexer.rpc.client import RpcClient

    original = RpcClient._attempt

    async def attempt(self: RpcClient, calls: list[Any], **kwargs: Any) -> list[Any]:
        endpoint = self._pick()
        for _ in range(len(calls) - 1):
            await endpoint.limiter.take()
        return await original(self, calls, **kwargs)

    RpcClient._attempt = attempt  # type: ignore[method-assign]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


async def run(config_path: str, dsn: str) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    config = load_config(config_path)
    indexers = [ChainIndexer(chain, dsn) for chain in config.chains.values()]
    samples: list[tuple[float, float, int]] = []
    started = time.perf_counter()

    async def sample() -> None:
        while True:
            events = sum(i.events_written for i in indexers)
            samples.append((round(time.perf_counter() - started, 2), round(rss_mb(), 1), events))
            await asyncio.sleep(SAMPLE_S)

    sampler = asyncio.create_task(sample())
    per_chain: dict[str, dict[str, Any]] = {}

    async def one(indexer: ChainIndexer) -> None:
        t0 = time.perf_counter()
        try:
            await indexer.open()
            written = await indexer.backfill()
        finally:
            await indexer.close()
        per_chain[indexer.chain.name] = {
            "liquidations": written,
            "seconds": round(time.perf_counter() - t0, 3),
            "rpc_requests": indexer.client.stats.requests,
            "rpc_calls": indexer.client.stats.calls,
            "rpc_errors": indexer.client.stats.errors,
        }

    try:
        await asyncio.gather(*(one(i) for i in indexers))
    finally:
        sampler.cancel()
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": round(seconds, 3),
        "liquidations": sum(c["liquidations"] for c in per_chain.values()),
        "chains": per_chain,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "rss_samples": samples,
    }


def cap_price_cache(entries: int) -> None:
    """Experiment: a smaller LRU for AaveOracle prices (the shipped default is 200,000)."""
    from indexer.enrich import prices

    original = prices.PriceOracle.__init__

    def init(self: prices.PriceOracle, client: Any, oracle: str, cache_size: int = 0) -> None:
        original(self, client, oracle, entries)

    prices.PriceOracle.__init__ = init  # type: ignore[method-assign]


def main() -> None:
    if os.environ.get("BENCH_PER_CALL_LIMIT") == "1":
        charge_per_call()
    if os.environ.get("BENCH_PRICE_CACHE"):
        cap_price_cache(int(os.environ["BENCH_PRICE_CACHE"]))
    result = asyncio.run(run(sys.argv[1], sys.argv[2]))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
