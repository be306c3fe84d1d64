"""Benchmark 1, raw ingest: the real ChainIndexer.backfill (fetch -> range checks -> decode
-> enrich -> COPY + checkpoint, ranges in flight, small ranges merged) against an in-memory
node with no latency, prices and token metadata warm.

Large runs are cut in segments: a segment's logs are rendered (not timed), then backfilled
(timed); the database keeps growing across segments, so index growth is paid in full.
Reported besides events/s: the CPU seconds of this process and of its PostgreSQL backend,
which say which side bounds the figure. The rendered logs and warm caches are frozen out of
the garbage collector (gc.freeze) before each timed segment; BENCH_INGEST_GC_FREEZE=0
leaves them in (as the figures before 2026-11-26 were taken).

    python -m bench.ingest EVENTS [full|no-rollups|no-secondary-indexes]

BENCH_INGEST_IN_FLIGHT sets the chain's max_in_flight (default 4, the shipped default).
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import time
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from bench.memnode import ASSETS, ORACLE, POOL, TREASURY, MemoryChain, MemoryClient
from indexer.config import ChainConfig, parse_config
from indexer.enrich.reserves import ReserveTokens
from indexer.enrich.tokens import Token
from indexer.pipeline import ChainIndexer

SEGMENT_EVENTS = 300_000

# What the database does per row, taken apart: run with some of it switched off.
VARIANTS = {
    "full": "",
    "no-rollups": "ALTER TABLE liquidations DISABLE TRIGGER liquidations_rollup_ins;",
    "no-secondary-indexes": "DROP INDEX liquidations_chain_block, liquidations_time, "
    "liquidations_chain_time, liquidations_user, liquidations_liquidator, "
    "liquidations_debt_usd;",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class IngestResult:
    events: int
    stored: int
    seconds: float
    python_cpu_s: float
    postgres_cpu_s: float
    per_block: int
    variant: str = "full"

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["events_per_s"] = round(self.rate)
        out["us_python_per_event"] = round(1e6 * self.python_cpu_s / self.events, 1)
        out["us_postgres_per_event"] = round(1e6 * self.postgres_cpu_s / self.events, 1)
        return out


def chain_config(last_block: int) -> ChainConfig:
    config = parse_config(
        {
            "chains": {
                "polygon": {
                    "chain_id": 137,
                    "rpc_urls": ["http://memory.invalid"],
                    "finality_depth": 1,
                    "max_block_range": 2000,
                    "max_in_flight": int(os.environ.get("BENCH_INGEST_IN_FLIGHT", "4")),
                    "pools": [{"address": POOL, "oracle": ORACLE, "start_block": 1}],
                }
            }
        }
    )
    return config.chains["polygon"]


def backend_cpu(pid: int) -> float:
    """CPU seconds used so far by a PostgreSQL backend on this machine (0 if unreadable)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def warm(indexer: ChainIndexer, memory: MemoryChain) -> None:
    assert indexer.tokens is not None and indexer.enricher is not None
    for address, (symbol, decimals, atoken) in ASSETS.items():
        indexer.tokens.tokens[address] = Token(address, symbol, decimals)
        # any contract stands in for the debt token: the memory node answers its balanceOf
        indexer.enricher.reserves.tokens[(POOL, address)] = ReserveTokens(atoken, (atoken,))
        indexer.enricher.fees.treasury[atoken] = TREASURY
    oracle = indexer.enricher.oracles[POOL]
    oracle.cache.clear()
    oracle.cache.update(memory.prices)
    oracle.cache_size = max(oracle.cache_size, len(memory.prices) + 1)


async def run_ingest(
    dsn: str,
    events: int,
    per_block: int = 3,
    segment_events: int = SEGMENT_EVENTS,
    variant: str = "full",
) -> IngestResult:
    if VARIANTS[variant]:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(VARIANTS[variant])
        finally:
            await conn.close()
    last_block = -(-events // per_block)
    memory = MemoryChain(1, last_block, per_block)
    indexer = ChainIndexer(chain_config(last_block), dsn, client=MemoryClient(memory))
    await indexer.open()
    assert indexer.conn is not None
    pg_pid = await indexer.conn.fetchval("SELECT pg_backend_pid()")
    seconds = python_cpu = postgres_cpu = 0.0
    blocks_per_segment = max(1, segment_events // per_block)
    try:
        for lo in range(1, last_block + 1, blocks_per_segment):
            hi = min(last_block, lo + blocks_per_segment - 1)
            memory.render(lo, hi)
            warm(indexer, memory)
            # The rendered logs and the warm price cache (600,000 entries per 300k events) are
            # the benchmark's scaffolding, not state an indexer holds (its price cache is a
            # small LRU): keep them out of the garbage collector's full scans, which would
            # otherwise charge the indexer ~6 us per event for walking them.
            if os.environ.get("BENCH_INGEST_GC_FREEZE", "1") != "0":
                gc.freeze()
            cpu0, pg0, t0 = time.process_time(), backend_cpu(pg_pid), time.perf_counter()
            await indexer.backfill(to_block=hi)
            seconds += time.perf_counter() - t0
            python_cpu += time.process_time() - cpu0
            postgres_cpu += backend_cpu(pg_pid) - pg0
        memory.render(0, -1)
        conn = await asyncpg.connect(dsn)
        try:
            stored = int(await conn.fetchval("SELECT count(*) FROM liquidations"))
            fees = int(
                await conn.fetchval(
                    "SELECT count(*) FROM liquidations WHERE protocol_fee_amount IS NOT NULL"
                )
            )
        finally:
            await conn.close()
    finally:
        await indexer.close()
    total = last_block * per_block
    if stored != total or fees != total:
        raise AssertionError(f"ingest stored {stored} rows ({fees} with a fee), expected {total}")
    return IngestResult(total, stored, seconds, python_cpu, postgres_cpu, per_block, variant)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    import sys

    from bench.common import temp_database

    async def main(n: int, variant: str) -> None:
        async with temp_database("ingest") as dsn:
            result = await run_ingest(dsn, n, variant=variant)
        print(result.to_json(), f"peak RSS {peak_rss_mb():.0f} MB")

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    asyncio.run(main(count, sys.argv[2] if len(sys.argv) > 2 else "full"))
