"""The indexer process of the backfill benchmark, run as the CLI runs it: one ChainIndexer per
configured chain, all backfilling concurrently in one event loop (indexer/cli.py
_run_chains). Prints one JSON line: wall time, events, RPC requests made, peak RSS and RSS
samples (to show how memory grows). It runs the shipped code, unchanged.

    python -m bench.backfill_child CONFIG DSN
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

from indexer.config import load_config
from indexer.pipeline import ChainIndexer
from indexer.store.migrate import migrate

SAMPLE_S = 0.5


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


def main() -> None:
    result = asyncio.run(run(sys.argv[1], sys.argv[2]))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
