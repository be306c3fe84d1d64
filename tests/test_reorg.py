"""Tailing through reorgs made with anvil_reorg on a real devnet chain: afterwards the
database equals the canonical chain, rollups included; a reorg deeper than finality halts
the chain instead of corrupting it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from indexer.config import ChainConfig, load_config
from indexer.decode.topics import LIQUIDATION_CALL
from indexer.pipeline import ChainHalted, ChainIndexer
from indexer.rpc.client import RpcClient
from indexer.store.rollups import rollup_drift
from tests.conftest import drop_database, free_port, make_database
from tests.reliability_support import Follower

CHAIN = "ethereum"


@pytest.fixture(scope="module")
def reorg_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    from indexer.devnet import devnet_down, devnet_up, run_scenario

    workdir = tmp_path_factory.mktemp("reorg-devnet")
    devnet_up(workdir, ports={CHAIN: free_port()}, chains=[CHAIN])
    try:
        yield workdir, run_scenario(workdir, seed=7, scale=0.15, chains=[CHAIN])
    finally:
        devnet_down(workdir)


def last_svr_block(manifest: dict[str, Any]) -> int:
    svr = [liq for liq in manifest["chains"][CHAIN]["liquidations"] if liq["svr"]]
    assert svr, "the scenario made no SVR liquidation on ethereum"
    return max(liq["block_number"] for liq in svr)


class Harness(Follower):
    """An indexer tailing one devnet chain in the background, with a client of its own
    for reading the node."""

    def __init__(self, chain: ChainConfig, dsn: str) -> None:
        super().__init__(chain, dsn, poll_interval=0.05, catch_up_timeout=30)
        self.rpc = RpcClient(chain.endpoints(), chain="test", requests_per_second=1000)

    async def head(self) -> int:
        return int(await self.rpc.call("eth_blockNumber"), 16)

    async def canonical_liquidations(self) -> set[tuple[str, int, str]]:
        head = await self.head()
        logs = await self.rpc.call(
            "eth_getLogs",
            [
                {
                    "fromBlock": "0x0",
                    "toBlock": hex(head),
                    "address": [pool.address for pool in self.chain.pools],
                    "topics": [LIQUIDATION_CALL],
                }
            ],
        )
        return {(lg["transactionHash"], int(lg["logIndex"], 16), lg["blockHash"]) for lg in logs}

    async def close(self) -> None:
        await super().close()
        await self.rpc.close()


async def stored_liquidations(dsn: str) -> set[tuple[str, int, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tx_hash, log_index, block_hash FROM liquidations")
        return {(r["tx_hash"], r["log_index"], r["block_hash"]) for r in rows}
    finally:
        await conn.close()


async def rollups_consistent(dsn: str) -> bool:
    """Every rollup equals the GROUP BY over the base rows (the `verify` check)."""
    conn = await asyncpg.connect(dsn)
    try:
        drift = await rollup_drift(conn)
        return len(drift) == 5 and set(drift.values()) == {0}
    finally:
        await conn.close()


@pytest.fixture
async def harness(
    reorg_devnet: tuple[Path, dict[str, Any]], pg_template: str
) -> AsyncIterator[tuple[Harness, int]]:
    workdir, manifest = reorg_devnet
    config = load_config(workdir / ".devnet" / "devnet.toml")
    base = config.chains[CHAIN]
    rpc = RpcClient(base.endpoints(), chain="test")
    head = int(await rpc.call("eth_blockNumber"), 16)
    await rpc.close()
    depth_to_svr = head - last_svr_block(manifest) + 1
    # Finality deep enough that the last SVR liquidation is still unfinalized.
    chain = base.model_copy(update={"finality_depth": depth_to_svr + 4})
    dsn = await asyncio.to_thread(make_database, pg_template)
    h = Harness(chain, dsn)
    await h.start()
    try:
        yield h, depth_to_svr
    finally:
        await h.close()
        await asyncio.to_thread(drop_database, dsn)


async def test_reorgs_during_tailing(harness: tuple[Harness, int]) -> None:
    h, depth_to_svr = harness
    await h.caught_up()
    assert await stored_liquidations(h.dsn) == await h.canonical_liquidations()

    conn = await asyncpg.connect(h.dsn)
    try:
        svr_before = await conn.fetchval("SELECT count(*) FROM liquidations WHERE is_svr")
        recaptures_before = await conn.fetchval("SELECT count(*) FROM svr_recaptures")
    finally:
        await conn.close()
    assert svr_before > 0 and recaptures_before > 0

    # 1. A reorg that removes the last SVR liquidation and its recapture.
    await h.rpc.call("anvil_reorg", [depth_to_svr, []])
    await h.rpc.call("anvil_mine", ["0x2"])
    await h.caught_up()
    assert await stored_liquidations(h.dsn) == await h.canonical_liquidations()
    conn = await asyncpg.connect(h.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM liquidations WHERE is_svr") < svr_before
        assert await conn.fetchval("SELECT count(*) FROM svr_recaptures") < recaptures_before
    finally:
        await conn.close()
    assert await rollups_consistent(h.dsn)

    # 2. Reorgs at random depths 1 .. finality-1 while blocks keep coming.
    rng = random.Random(3)
    for _ in range(6):
        depth = rng.randint(1, h.chain.finality_depth - 1)
        await h.rpc.call("anvil_mine", [hex(rng.randint(1, 4))])
        await h.caught_up()
        await h.rpc.call("anvil_reorg", [depth, []])
        await h.caught_up()
        assert await stored_liquidations(h.dsn) == await h.canonical_liquidations()
        assert await rollups_consistent(h.dsn)


async def test_reorg_deeper_than_finality_halts(harness: tuple[Harness, int]) -> None:
    h, _ = harness
    await h.caught_up()
    before = await stored_liquidations(h.dsn)
    await h.rpc.call("anvil_reorg", [h.chain.finality_depth + 3, []])
    assert h.task is not None
    # While anvil re-mines, its head may show below finality for a moment: the indexer
    # takes that for a broken endpoint (reorg.head_fault) and waits out the only endpoint's
    # cooldown before it reads again, so the halt can take a few cooldowns to come.
    with pytest.raises(ChainHalted, match="deeper than finality"):
        await asyncio.wait_for(asyncio.shield(h.task), timeout=90)
    conn = await asyncpg.connect(h.dsn)
    try:
        status = await conn.fetchrow("SELECT halted, last_error FROM chain_status")
    finally:
        await conn.close()
    assert status["halted"] is True and "deeper than finality" in status["last_error"]
    # Nothing was rolled back: an operator decides.
    assert await stored_liquidations(h.dsn) == before
    # A restart (once the halted process is gone) refuses the chain until told otherwise.
    await h.close()
    again = ChainIndexer(h.chain, h.dsn)
    with pytest.raises(ChainHalted, match="--clear-halt"):
        await again.open()
    await again.close()
