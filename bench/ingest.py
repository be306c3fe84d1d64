"""Benchmark 1, raw ingest: the real ChainIndexer.backfill (fetch -> range checks -> decode
-> enrich -> COPY + checkpoint, ranges in flight, small ranges merged, bulk loading) against
an in-memory node with no latency, prices and token metadata warm.

One backfill of the whole history, as `aave-indexer backfill` runs it: the memory node
renders each block's logs when first asked (the time it takes is subtracted from the wall
and CPU figures), so the process holds only the blocks in flight and its RSS is the
indexer's. Reported besides events/s: the CPU seconds of this process and of its PostgreSQL
backend, which say which side bounds the figure; whether the backfill loaded in bulk and
how long the index rebuild at its end took (included in the wall time); peak RSS. The
startup state is frozen out of the garbage collector (gc.freeze) before the timed part;
BENCH_INGEST_GC_FREEZE=0 leaves it in.

    python -m bench.ingest EVENTS [full|no-rollups|no-secondary-indexes|no-bulk]

BENCH_INGEST_IN_FLIGHT sets the chain's max_in_flight (default 4, the shipped default);
BENCH_INGEST_BULK_MIN its bulk_load_min_events (default: the shipped default).
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

# What the database does per row, taken apart: run with some of it switched off.
VARIANTS = {
    "full": "",
    "no-rollups": "ALTER TABLE liquidations DISABLE TRIGGER liquidations_rollup_ins;",
    "no-secondary-indexes": "DROP INDEX liquidations_chain_block, liquidations_time, "
    "liquidations_chain_time, liquidations_user, liquidations_liquidator, "
    "liquidations_debt_usd;",
    "no-bulk": "",  # the indexes kept up row by row however long the backfill
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The warm price cache: every (asset, block) of the ranges in flight, and more.
PRICE_CACHE = 50_000


@dataclass
class IngestResult:
    events: int
    stored: int
    seconds: float
    python_cpu_s: float
    postgres_cpu_s: float
    per_block: int
    variant: str = "full"
    bulk_load: bool = False
    rebuild_s: float = 0.0  # of `seconds`: the indexes rebuilt at the end of a bulk load
    peak_rss_mb: float = 0.0
    rss_end_mb: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["events_per_s"] = round(self.rate)
        out["us_python_per_event"] = round(1e6 * self.python_cpu_s / self.events, 1)
        out["us_postgres_per_event"] = round(1e6 * self.postgres_cpu_s / self.events, 1)
        return out


def chain_config(last_block: int, variant: str = "full") -> ChainConfig:
    bulk_min = os.environ.get("BENCH_INGEST_BULK_MIN")
    extra: dict[str, Any] = {} if bulk_min is None else {"bulk_load_min_events": int(bulk_min)}
    if variant == "no-bulk":
        extra["bulk_load_min_events"] = 0
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
                    **extra,
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
    """Token metadata, reserves and treasuries known; each block's prices put in the oracle's
    cache as the memory node renders it (a real run's cache is the small LRU)."""
    assert indexer.tokens is not None and indexer.enricher is not None
    for address, (symbol, decimals, atoken) in ASSETS.items():
        indexer.tokens.tokens[address] = Token(address, symbol, decimals)
        # any contract stands in for the debt token: the memory node answers its balanceOf
        indexer.enricher.reserves.tokens[(POOL, address)] = ReserveTokens(atoken, (atoken,))
        indexer.enricher.fees.treasury[atoken] = TREASURY
    oracle = indexer.enricher.oracles[POOL]
    oracle.cache.clear()
    oracle.cache_size = max(oracle.cache_size, PRICE_CACHE)

    def prices(rendered: dict[tuple[str, int], int]) -> None:
        oracle.cache.update(rendered)
        while len(oracle.cache) > oracle.cache_size:
            oracle.cache.popitem(last=False)

    memory.on_prices = prices


def rss_mb() -> float:
    """This process's resident set now (VmRSS)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def run_ingest(
    dsn: str, events: int, per_block: int = 3, variant: str = "full"
) -> IngestResult:
    """One backfill of the whole history, as `aave-indexer backfill` runs it (bulk loading
    included, with the shipped threshold unless BENCH_INGEST_BULK_MIN says otherwise). The
    memory node's rendering of the logs is taken out of the wall and CPU figures."""
    if VARIANTS[variant]:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(VARIANTS[variant])
        finally:
            await conn.close()
    last_block = -(-events // per_block)
    memory = MemoryChain(1, last_block, per_block)
    indexer = ChainIndexer(chain_config(last_block, variant), dsn, client=MemoryClient(memory))
    await indexer.open()
    assert indexer.conn is not None
    pg_pid = await indexer.conn.fetchval("SELECT pg_backend_pid()")
    warm(indexer, memory)
    rebuild = [0.0, False]
    leave = indexer._leave_bulk

    async def timed_leave() -> None:
        started = time.perf_counter()
        await leave()
        rebuild[0] = time.perf_counter() - started
        rebuild[1] = True

    indexer._leave_bulk = timed_leave  # type: ignore[method-assign]
    # Startup state (modules, config, warm caches) out of the collector's full scans, as a
    # long-running indexer would freeze it after startup.
    if os.environ.get("BENCH_INGEST_GC_FREEZE", "1") != "0":
        gc.freeze()
    try:
        cpu0, pg0, t0 = time.process_time(), backend_cpu(pg_pid), time.perf_counter()
        await indexer.backfill(to_block=last_block)
        seconds = time.perf_counter() - t0 - memory.render_wall
        python_cpu = time.process_time() - cpu0 - memory.render_cpu
        postgres_cpu = backend_cpu(pg_pid) - pg0
        rss_end = rss_mb()
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
    return IngestResult(
        total,
        stored,
        seconds,
        python_cpu,
        postgres_cpu,
        per_block,
        variant,
        bool(rebuild[1]),
        float(rebuild[0]),
        peak_rss_mb(),
        rss_end,
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    import sys

    from bench.common import temp_database

    async def main(n: int, variant: str) -> None:
        async with temp_database("ingest") as dsn:
            result = await run_ingest(dsn, n, variant=variant)
        print(result.to_json())

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    asyncio.run(main(count, sys.argv[2] if len(sys.argv) > 2 else "full"))
