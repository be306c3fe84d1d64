"""Bulk loading (indexer/store/bulk.py): a long backfill drops the secondary indexes of
liquidations and rebuilds them at its end; the last chain out rebuilds; a crash leaves a
database the next start repairs; the API answers the same throughout."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bench.ingest import warm
from bench.memnode import ORACLE, POOL, MemoryChain, MemoryClient
from indexer.config import ChainConfig, parse_config
from indexer.pipeline import ChainIndexer
from indexer.store import bulk
from indexer.store.locks import try_own
from indexer.store.migrate import migrate
from indexer.store.rollups import rollup_drift
from tests.conftest import drop_database, make_database

ROOT = Path(__file__).resolve().parents[1]
SECONDARY = {
    "liquidations_chain_block",
    "liquidations_time",
    "liquidations_chain_time",
    "liquidations_user",
    "liquidations_liquidator",
    "liquidations_debt_usd",
}
INDEXES = "SELECT indexname FROM pg_indexes WHERE tablename = 'liquidations'"


class Client(MemoryClient):
    """The memory node of another chain id; `gate`, if set, holds eth_getLogs answers
    for blocks above `gate_block` until it is set."""

    def __init__(self, memory: MemoryChain, name: str, chain_id: int) -> None:
        super().__init__(memory, name)
        self.chain_id = chain_id
        self.gate: asyncio.Event | None = None
        self.gate_block = 0

    async def _post(self, endpoint: Any, payload: Any, *limits: Any) -> Any:
        calls = payload if isinstance(payload, list) else [payload]
        if self.gate is not None and any(
            c["method"] == "eth_getLogs" and int(c["params"][0]["toBlock"], 16) > self.gate_block
            for c in calls
        ):
            await self.gate.wait()
        return await super()._post(endpoint, payload, *limits)

    def _result(self, method: str, params: Any) -> Any:
        if method == "eth_chainId":
            return hex(self.chain_id)
        return super()._result(method, params)


def chain(name: str, chain_id: int, min_events: int) -> ChainConfig:
    config = parse_config(
        {
            "chains": {
                name: {
                    "chain_id": chain_id,
                    "rpc_urls": ["http://memory.invalid"],
                    "finality_depth": 1,
                    "max_block_range": 300,
                    "pools": [{"address": POOL, "oracle": ORACLE, "start_block": 1}],
                    "bulk_load_min_events": min_events,
                }
            }
        }
    )
    return config.chains[name]


async def indexer_for(
    dsn: str, name: str, chain_id: int, events: int, min_events: int = 100
) -> tuple[ChainIndexer, Client]:
    memory = MemoryChain(1, events // 3, 3, seed=chain_id)
    client = Client(memory, name, chain_id)
    ix = ChainIndexer(chain(name, chain_id, min_events), dsn, client=client)
    await ix.open()
    warm(ix, memory)
    return ix, client


async def indexes(conn: asyncpg.Connection) -> set[str]:
    return {r[0] for r in await conn.fetch(INDEXES)} - {"liquidations_pkey"}


@pytest.fixture
def dsn(pg_template: str) -> Iterator[str]:
    dsn = make_database(pg_template)
    yield dsn
    drop_database(dsn)


API_QUERY = """
{
  recent: liquidations(first: 20) { edges { node { id debtUsd closedFully } } }
  big: liquidations(first: 10, orderBy: DEBT_USD_DESC) { edges { node { id debtUsd } } }
  byChain: liquidationStats(groupBy: [CHAIN]) { chainId count debtUsd collateralUsd }
  byDay: liquidationStats(groupBy: [DAY]) { period count debtUsd }
  late: liquidationStats(filter: {blockFrom: 900}, groupBy: [CHAIN]) { chainId count debtUsd }
  window: liquidations(first: 5, filter: {blockFrom: 500, blockTo: 700}) {
    edges { node { id blockNumber } }
  }
}
"""


async def api_answer(dsn: str, query: str = API_QUERY) -> dict[str, Any]:
    from api.context import ApiContext
    from api.db import Database
    from api.schema import schema

    db = Database(dsn, pool_min=1, pool_max=2)
    try:
        result = await schema.execute(query, context_value=ApiContext(db=db, cursor_key=b"t"))
    finally:
        await db.close()
    assert not result.errors, result.errors
    assert result.data is not None
    return result.data


def verify(dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "indexer.cli", "--database-url", dsn, "verify"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


async def test_long_backfill_defers_indexes_and_rebuilds_them(dsn: str) -> None:
    ix, _ = await indexer_for(dsn, "polygon", 137, 15_000)
    conn = await asyncpg.connect(dsn)
    seen: list[set[str]] = []
    answers: list[dict[str, Any]] = []

    async def watch() -> None:
        while True:
            seen.append(await indexes(conn))
            if not seen[-1] and len(answers) < 3:
                answers.append(await api_answer(dsn))  # the API during the bulk load
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        assert await ix.backfill(to_block=5_000) == 15_000
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await ix.close()
    try:
        assert set() in seen, "the secondary indexes were never dropped"
        assert answers, "no API answer during the bulk load"
        assert await indexes(conn) == SECONDARY
        assert await conn.fetchval("SELECT count(*) FROM bulk_load") == 0
        assert await conn.fetchval("SELECT count(*) FROM bulk_load_indexes") == 0
        assert not any((await rollup_drift(conn)).values())
        assert await conn.fetchval("SELECT count(*) FROM liquidations") == 15_000
    finally:
        await conn.close()
    done = verify(dsn)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "liquidations indexes: ok" in done.stdout


async def test_short_backfill_keeps_indexes(dsn: str) -> None:
    ix, _ = await indexer_for(dsn, "polygon", 137, 3_000, min_events=100_000)
    conn = await asyncpg.connect(dsn)
    try:
        await ix.backfill(to_block=1_000)
        assert await conn.fetchval("SELECT count(*) FROM bulk_load_indexes") == 0
        assert await indexes(conn) == SECONDARY
    finally:
        await ix.close()
        await conn.close()


async def test_api_answers_the_same_with_indexes_deferred(dsn: str) -> None:
    """Another chain's live bulk load holds the indexes off while this one backfills: the
    API's answers then are those it gives once they are rebuilt."""
    other = await asyncpg.connect(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        assert await try_own(other, 999)  # a live chain 999 ...
        assert await bulk.enter(other, 999)  # ... loading in bulk
        ix, _ = await indexer_for(dsn, "polygon", 137, 6_000)
        try:
            await ix.backfill(to_block=2_000)
        finally:
            await ix.close()
        assert await indexes(conn) == set()  # chain 999 is not done
        state = await bulk.state(conn)
        assert state.live == (999,) and not state.interrupted
        during = await api_answer(dsn)
        out = verify(dsn)
        assert out.returncode == 0 and "6 deferred" in out.stdout, out.stdout
        assert await bulk.leave(other, 999)  # the last one out rebuilds
        assert await indexes(conn) == SECONDARY
        assert await api_answer(dsn) == during
        assert during["byChain"][0]["count"] == 6_000
        assert not any((await rollup_drift(conn)).values())
    finally:
        await other.close()
        await conn.close()


async def test_last_chain_out_rebuilds(dsn: str) -> None:
    """Two chains loading at once: the first to finish leaves the indexes to the second."""
    a, _ = await indexer_for(dsn, "polygon", 137, 6_000)
    b, b_client = await indexer_for(dsn, "base", 8453, 9_000)
    b_client.gate = asyncio.Event()
    b_client.gate_block = 1_500  # b stalls half way, in its bulk load
    conn = await asyncpg.connect(dsn)
    try:
        b_task = asyncio.create_task(b.backfill(to_block=3_000))
        for _ in range(500):
            if await conn.fetchval("SELECT count(*) FROM bulk_load WHERE chain_id = 8453"):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("chain b never entered its bulk load")
        await a.backfill(to_block=2_000)
        assert await indexes(conn) == set()  # b still loads
        assert [r[0] for r in await conn.fetch("SELECT chain_id FROM bulk_load")] == [8453]
        b_client.gate.set()
        await b_task
        assert await indexes(conn) == SECONDARY
        assert await conn.fetchval("SELECT count(*) FROM liquidations") == 15_000
        assert not any((await rollup_drift(conn)).values())
    finally:
        await a.close()
        await b.close()
        await conn.close()


CRASHING = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from tests.test_bulk_load import indexer_for

    async def main(dsn: str, marker: str) -> None:
        ix, client = await indexer_for(dsn, "polygon", 137, 9_000)
        client.gate = asyncio.Event()  # never set: the process is killed here
        client.gate_block = 1_500
        def progress(p):
            if p.done_block > 600:
                Path(marker).write_text("in bulk")
        ix.on_progress = progress
        await ix.backfill(to_block=3_000)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def kill_during_bulk(dsn: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING, dsn, str(marker)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "the indexer exited before its bulk load"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


async def wait_stale(conn: asyncpg.Connection) -> bulk.BulkState:
    """The killed process's session ends a moment after it (its lock with it)."""
    for _ in range(200):
        state = await bulk.state(conn)
        if state.stale:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError("the killed indexer's bulk load never went stale")


async def test_kill9_in_bulk_then_restart_repairs(dsn: str, tmp_path: Path) -> None:
    await asyncio.to_thread(kill_during_bulk, dsn, tmp_path)
    conn = await asyncpg.connect(dsn)
    try:
        state = await wait_stale(conn)
        assert state.stale == (137,) and state.interrupted and len(state.pending) == 6
        assert await indexes(conn) == set()
        out = await asyncio.to_thread(verify, dsn)
        assert out.returncode == 1 and "interrupted bulk load" in out.stdout, out.stdout
        assert (await api_answer(dsn))["byChain"][0]["count"] > 0  # the API still answers
        # The next run of the chain resumes from its checkpoint and ends with the indexes.
        ix, _ = await indexer_for(dsn, "polygon", 137, 9_000)
        try:
            await ix.backfill(to_block=3_000)
        finally:
            await ix.close()
        assert await indexes(conn) == SECONDARY
        assert await conn.fetchval("SELECT count(*) FROM liquidations") == 9_000
        assert await conn.fetchval("SELECT count(*) FROM bulk_load") == 0
        assert not any((await rollup_drift(conn)).values())
    finally:
        await conn.close()
    out = await asyncio.to_thread(verify, dsn)
    assert out.returncode == 0, out.stdout


async def test_kill9_in_bulk_then_migrate_repairs(dsn: str, tmp_path: Path) -> None:
    await asyncio.to_thread(kill_during_bulk, dsn, tmp_path)
    conn = await asyncpg.connect(dsn)
    try:
        await wait_stale(conn)
        await migrate(conn)  # every start migrates
        assert await indexes(conn) == SECONDARY
        assert await bulk.state(conn) == bulk.BulkState((), (), ())
    finally:
        await conn.close()
    out = await asyncio.to_thread(verify, dsn)
    assert out.returncode == 0 and "liquidations indexes: ok" in out.stdout, out.stdout


async def test_migrate_leaves_a_live_bulk_load_alone(dsn: str) -> None:
    other = await asyncpg.connect(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        assert await try_own(other, 999)
        assert await bulk.enter(other, 999)
        await migrate(conn)  # another process starting meanwhile
        assert await indexes(conn) == set()
        assert await bulk.leave(other, 999)
        assert await indexes(conn) == SECONDARY
    finally:
        await other.close()
        await conn.close()
