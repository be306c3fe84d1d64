"""Benchmark 1, raw ingest: decode + enrich (prices cached) + COPY + checkpoint, no RPC.

Logs are generated in the exact JSON shape a node returns; prices and token metadata are
pre-warmed, so what is measured is the indexer's own work from JSON logs to committed rows.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

from indexer.config import parse_config
from indexer.decode.events import decode_logs
from indexer.decode.topics import LIQUIDATION_CALL
from indexer.enrich.enricher import Enricher
from indexer.enrich.tokens import Token, TokenRegistry
from indexer.pipeline import build_filter
from indexer.records import Batch
from indexer.rpc.client import RpcClient
from indexer.store import writer

POOL = "0x794a61358d6845594f94dc1db02a252b5b4814ad"
ORACLE = "0xb023e699f5a33916ea823a16485e259257ca8bd1"
ASSETS = {
    "0x" + "a1" * 20: ("WETH", 18),
    "0x" + "a2" * 20: ("WBTC", 8),
    "0x" + "a3" * 20: ("USDC", 6),
    "0x" + "a4" * 20: ("LINK", 18),
}


@dataclass
class IngestResult:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def _word(value: int) -> str:
    return f"{value:064x}"


def make_logs(
    count: int, start_block: int = 1, per_block: int = 3, seed: int = 1
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    assets = list(ASSETS)
    liquidators = [rng.getrandbits(160) for _ in range(200)]  # a few hundred bots, as on-chain
    logs = []
    for i in range(count):
        block = start_block + i // per_block
        collateral, debt = rng.sample(assets, 2)
        logs.append(
            {
                "address": POOL,
                "topics": [
                    LIQUIDATION_CALL,
                    "0x" + collateral[2:].rjust(64, "0"),
                    "0x" + debt[2:].rjust(64, "0"),
                    "0x" + f"{rng.getrandbits(160):064x}",
                ],
                "data": "0x"
                + _word(rng.getrandbits(70))
                + _word(rng.getrandbits(60))
                + _word(liquidators[rng.randrange(len(liquidators))])
                + _word(rng.getrandbits(1)),
                "blockNumber": hex(block),
                "blockHash": "0x" + f"{block:064x}",
                "blockTimestamp": hex(1_769_817_600 + 2 * block),
                "transactionHash": "0x" + f"{i:064x}",
                "transactionIndex": hex(i % per_block),
                "logIndex": hex(i % per_block),
                "removed": False,
            }
        )
    return logs


async def run_ingest(dsn: str, events: int, batch_events: int = 20_000) -> IngestResult:
    config = parse_config(
        {
            "chains": {
                "polygon": {
                    "chain_id": 137,
                    "rpc_urls": ["http://127.0.0.1:9"],
                    "pools": [{"address": POOL, "oracle": ORACLE, "start_block": 1}],
                }
            }
        }
    )
    chain = config.chains["polygon"]
    client = RpcClient(["http://127.0.0.1:9"], chain="polygon")  # never called: caches are warm
    tokens = TokenRegistry(client, {a: Token(a, s, d) for a, (s, d) in ASSETS.items()})
    enricher = Enricher(chain, client, tokens)
    per_block = 3
    logs = make_logs(events, per_block=per_block)
    last_block = 1 + (events - 1) // per_block
    oracle = enricher.oracles[POOL]
    for block in range(1, last_block + 1):
        for asset in ASSETS:
            oracle.cache[(asset, block)] = 10**8 + block
    build_filter(chain)
    conn = await asyncpg.connect(dsn)
    try:
        await writer.prepare(conn)
        await writer.start_checkpoint(conn, 137, 0)
        started = time.perf_counter()
        blocks_per_batch = max(1, batch_events // per_block)
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=2)

        async def produce() -> None:
            # Decoding the next batch overlaps the database's work on the previous one,
            # as ranges in flight do in the pipeline.
            for first in range(1, last_block + 1, blocks_per_batch):
                last = min(last_block, first + blocks_per_batch - 1)
                chunk = logs[(first - 1) * per_block : last * per_block]
                decoded = decode_logs(chunk, frozenset([POOL]), frozenset(), None)
                await queue.put(await enricher.enrich(decoded, first, last))
            await queue.put(None)

        producer = asyncio.create_task(produce())
        while (batch := await queue.get()) is not None:
            await writer.write_batch(conn, batch, "polygon")
        await producer
        seconds = time.perf_counter() - started
        stored = await conn.fetchval("SELECT count(*) FROM liquidations")
        assert stored == events, (stored, events)
    finally:
        await conn.close()
        await client.close()
    return IngestResult(events, seconds)


if __name__ == "__main__":
    import sys

    dsn = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    result = asyncio.run(run_ingest(dsn, n))
    print(f"{result.events} events in {result.seconds:.2f}s = {result.rate:,.0f} events/s")
