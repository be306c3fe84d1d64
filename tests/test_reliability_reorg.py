"""Reorgs on the devnet with anvil_reorg while the indexer tails: random depths below the
finality depth, many times, with the removed blocks' transactions re-included elsewhere,
SVR liquidations moved to another block with their oracle update and refund, or split from
their oracle update (so that they are no longer SVR and the refund is no recapture). After
each one the database equals the chain; at the end, a clean backfill of the final chain.
A reorg deeper than the finality depth halts the chain through the real CLI (exit 4).

The count scales with RELIABILITY_REORGS; RELIABILITY_REPORT=FILE collects the figures.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from indexer.config import Config
from tests.conftest import drop_database, make_database
from tests.reliability_support import (
    CliProcess,
    Follower,
    MutableDevnet,
    clean_backfill,
    describe_difference,
    fingerprint,
    head,
    invariant_violations,
    publish,
    reorg,
    reorg_devnet,
    rpc,
    run_cli,
    scaled,
    window,
)

REORGS = scaled("RELIABILITY_REORGS", 30)
SEED = 99


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> MutableDevnet:
    return reorg_devnet(tmp_path_factory, request.config)


async def svr_blocks(dsn: str, chain_id: int, since: int) -> list[int]:
    """Blocks from `since` holding an SVR liquidation, as indexed (the followed database
    equals a clean backfill after every step, so this is what the chain says)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT block_number FROM liquidations"
            " WHERE is_svr AND chain_id = $1 AND block_number >= $2 ORDER BY 1",
            chain_id,
            since,
        )
    finally:
        await conn.close()
    return [int(r["block_number"]) for r in rows]


async def svr_count(dsn: str, chain_id: int) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval(
            "SELECT count(*) FROM liquidations WHERE is_svr AND chain_id = $1", chain_id
        )
        return int(value)
    finally:
        await conn.close()


async def clean_equals(followers: list[Follower], dsn: str, template: str) -> None:
    """The followed database equals a clean backfill of the chains as they are now."""
    chains = {f.chain.name: f.chain for f in followers}
    tops = {f.chain.name: await f.caught_up() for f in followers}
    clean = await asyncio.to_thread(make_database, template)
    try:
        await clean_backfill(Config(chains=chains, source="<test>"), clean, tops)
        want = await fingerprint(clean)
    finally:
        await asyncio.to_thread(drop_database, clean)
    got = await fingerprint(dsn)
    assert not describe_difference(got, want), describe_difference(got, want)


async def test_random_reorgs_while_tailing(live: MutableDevnet, pg_template: str) -> None:
    config = live.config()
    # Finality deep enough that the crash's last SVR liquidations (and their recaptures)
    # can still be reorganised.
    last_svr = min(
        max(e["block_number"] for e in live.manifest["chains"][name]["liquidations"] if e["svr"])
        for name in config.chains
    )
    top = max(head(c.endpoints()[0]) for c in config.chains.values())
    finality = top - last_svr + 20
    rng = random.Random(SEED)
    dsn = await asyncio.to_thread(make_database, pg_template)
    followers = [
        Follower(c.model_copy(update={"finality_depth": finality, "max_block_range": 16}), dsn)
        for c in config.chains.values()
    ]
    kinds: Counter[str] = Counter()
    depths: list[int] = []
    svr_touched = 0
    svr_ops: Counter[str] = Counter()
    unmade = 0
    try:
        for f in followers:
            await f.start()
        for f in followers:
            await f.caught_up()
            await f.matches_chain()
        for step in range(REORGS):
            f = rng.choice(followers)
            url = f.url
            top = await asyncio.to_thread(head, url)
            reachable = await svr_blocks(dsn, f.chain.chain_id, top - finality + 2)
            roll = rng.random()
            if reachable and roll < 0.35:
                # An SVR liquidation block: moved one block later with everything after it,
                # or (MEV-Share) its liquidation split from the oracle update.
                target = rng.choice(reachable)
                depth = top - target + 1
                _, blocks = await asyncio.to_thread(window, url, depth)
                # on MEV-Share, every other one is a split
                split = f.chain.svr.model == "mev-share" and svr_ops[f.chain.name] % 2 == 0
                svr_ops[f.chain.name] += 1
                placed = []
                for i, block in enumerate(blocks):
                    for j, tx in enumerate(block["transactions"]):
                        shift = 1 if (i > 0 or not split or j > 0) else 0
                        placed.append((tx, min(depth - 1, i + shift)))
                kind = "svr-split" if split else "svr-move"
                svr_touched += 1
                # the new blocks are built by that block's builder: its refund stays one
                builder = blocks[0]["miner"]
            else:
                depth = rng.randint(1, finality - 1)
                _, blocks = await asyncio.to_thread(window, url, depth)
                builder = blocks[0]["miner"]
                if roll < 0.85:
                    # the same transactions, cut into blocks differently (order kept)
                    placed, last = [], 0
                    for i, block in enumerate(blocks):
                        for tx in block["transactions"]:
                            last = max(last, min(depth - 1, i + rng.randint(-2, 2)))
                            placed.append((tx, last))
                    kind = "move"
                else:
                    placed, kind = [], "drop"  # the blocks' transactions are gone
            svr_before = await svr_count(dsn, f.chain.chain_id)
            await asyncio.to_thread(rpc, url, "anvil_setCoinbase", builder)
            await asyncio.to_thread(reorg, url, depth, placed, rng.randrange(depth))
            kinds[kind] += 1
            depths.append(depth)
            if rng.random() < 0.5:
                await asyncio.to_thread(rpc, url, "anvil_mine", hex(rng.randint(1, 3)))
            await f.caught_up()
            await f.matches_chain()
            if kind == "svr-split":  # that liquidation is no longer SVR, its refund no recapture
                unmade += svr_before - await svr_count(dsn, f.chain.chain_id)
            problems = await invariant_violations(dsn)
            assert not problems, (step, kind, problems)
            if kind.startswith("svr"):  # attribution and recaptures, value for value
                await clean_equals(followers, dsn, pg_template)
        for f in followers:  # finally everything final, and equal to a clean run
            await asyncio.to_thread(rpc, f.url, "anvil_mine", hex(finality + 2))
        await clean_equals(followers, dsn, pg_template)
    finally:
        for f in followers:
            await f.close()
        await asyncio.to_thread(drop_database, dsn)
    assert kinds["svr-move"] > 0 and kinds["svr-split"] > 0 and kinds["move"] > 0
    assert unmade >= kinds["svr-split"]
    publish(
        "reorgs-while-tailing",
        reorgs=REORGS,
        by_kind=dict(sorted(kinds.items())),
        depth_min=min(depths),
        depth_max=max(depths),
        finality_depth=finality,
        svr_blocks_moved_or_split=svr_touched,
        svr_liquidations_unmade_by_splits=unmade,
        lost=0,
        duplicated=0,
    )


def test_reorg_deeper_than_finality_halts_the_cli(
    live: MutableDevnet, pg_template: str, tmp_path: Path
) -> None:
    """Through the real CLI: `run` stops with exit 4 and one line naming the reorg, the
    status says HALTED, and a restart refuses the chain until --clear-halt."""
    config_path = live.config_path
    chain = live.config().chains["arbitrum"]
    url = chain.endpoints()[0]
    dsn = make_database(pg_template)
    args = ["--config", str(config_path), "--database-url", dsn, "--quiet"]
    try:
        process = CliProcess([*args, "run", "--chain", "arbitrum"], tmp_path / "run.log")
        deadline = time.monotonic() + 60
        while True:  # caught up with the head
            cp = asyncio.run(_checkpoint(dsn, chain.chain_id))
            if cp == head(url):
                break
            assert time.monotonic() < deadline and process.alive(), process.log.read_text()
            time.sleep(0.1)
        before = asyncio.run(fingerprint(dsn))
        reorg(url, chain.finality_depth + 3, [], marker=0)
        code = process.wait(60)
        stderr = process.log.read_text()
        assert code == 4, stderr
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "reorg deeper than finality" in errors[0], stderr
        assert "Traceback" not in stderr
        status = run_cli(*args, "status", "--json")
        (row,) = [r for r in json.loads(status.stdout) if r["name"] == "arbitrum"]
        assert row["halted"] is True and "deeper than finality" in row["last_error"]
        # nothing was rolled back: an operator decides
        assert asyncio.run(fingerprint(dsn)) == before
        again = run_cli(*args, "run", "--chain", "arbitrum", timeout=60)
        assert again.returncode == 4 and "--clear-halt" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1, again.stderr
    finally:
        drop_database(dsn)
    publish("reorg-deeper-than-finality", exit_code=4, halted=True, rows_rolled_back=0)


async def _checkpoint(dsn: str, chain_id: int) -> int | None:
    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval(
            "SELECT block_number FROM checkpoints WHERE chain_id = $1", chain_id
        )
        return None if value is None else int(value)
    finally:
        await conn.close()
