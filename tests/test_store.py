"""store/: a batch and its checkpoint move together; replays and rollbacks are exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from indexer.records import Batch
from indexer.store import rollback, writer
from indexer.store.rollups import rollup_drift

CHAIN = 42161
T0 = datetime(2026, 2, 1, tzinfo=UTC)


def make_batch(first: int, last: int, per_block: int = 2, svr_every: int = 3) -> Batch:
    batch = Batch(CHAIN, first, last, last_block_hash=f"0xh{last}")
    for block in range(first, last + 1):
        for i in range(per_block):
            tx = f"0xtx{block}_{i}"
            svr = (block + i) % svr_every == 0
            market = ("core", "prime")[(block + i) % 2]
            batch.liquidations.append(
                (
                    CHAIN,
                    block,
                    f"0xh{block}",
                    T0 + timedelta(minutes=block),
                    tx,
                    i,
                    i,
                    f"0xpool_{market}",
                    market,
                    "0xwbtc",
                    "0xusdc",
                    f"0xuser{block % 5}",
                    f"0xliq{i}",
                    Decimal(10**6 * block),
                    Decimal(10**5),
                    False,
                    Decimal(6 * 10**12),
                    Decimal(10**8),
                    Decimal(block) / 4,
                    Decimal(block),
                    None,
                    svr,
                    "0xagg" if svr else None,
                    7 if svr else None,
                    tx if svr else None,
                    None,
                    None,
                    None,
                    None,  # no auction on chain (not Atlas)
                    None,
                    Decimal(block) / 4 - Decimal(block),  # bonus_usd
                    Decimal(block) / 400,  # protocol_fee_usd
                    Decimal(block) / 4 + Decimal(block) / 400,  # collateral_seized_usd
                    block % 2 == 0,  # closed_fully
                    "block",  # price_basis
                )
            )
            if svr:
                batch.recaptures.append(
                    (
                        CHAIN,
                        block,
                        f"0xh{block}",
                        T0 + timedelta(minutes=block),
                        tx,
                        9,
                        "0xrecipient",
                        None,
                        Decimal(10**15),
                        Decimal("2.5"),
                        "0xagg",
                        market,
                        [f"{CHAIN}:{tx}:{i}"],
                        6500,
                        Decimal("1.625"),
                        Decimal("0.875"),
                        "65/35",
                    )
                )
        batch.blocks.append((CHAIN, block, f"0xh{block}", f"0xh{block - 1}", T0))
    return batch


async def reset(db: asyncpg.Connection) -> None:
    for table in ("liquidations", "svr_recaptures", "checkpoints", "blocks", "chain_status"):
        await db.execute(f"DELETE FROM {table}")
    await writer.prepare(db)
    await writer.start_checkpoint(db, CHAIN, 99)


async def snapshot(db: asyncpg.Connection) -> tuple[object, ...]:
    return (
        await db.fetchval("SELECT count(*) FROM liquidations"),
        await db.fetchval("SELECT sum(debt_to_cover) FROM liquidations"),
        await db.fetchval(
            "SELECT sum(liquidation_count) FROM liquidation_rollup WHERE grain='day'"
        ),
        await db.fetchval("SELECT sum(recaptured_usd) FROM svr_revenue_rollup_daily"),
        await db.fetchval("SELECT sum(svr_liquidation_count) FROM svr_revenue_rollup_daily"),
        await db.fetchval("SELECT sum(liquidation_count) FROM chain_rollup_daily"),
        await db.fetchval("SELECT sum(debt_usd) FROM chain_rollup_hourly"),
        await db.fetchval("SELECT sum(svr_collateral_usd) FROM liquidator_rollup_daily"),
        await writer.read_checkpoint(db, CHAIN),
    )


async def test_batch_and_checkpoint_move_together(db: asyncpg.Connection) -> None:
    await reset(db)
    assert await writer.write_batch(db, make_batch(100, 109), "arbitrum") > 0
    count, _, rollup, _, _, by_chain, *_, checkpoint = await snapshot(db)
    assert (count, rollup, by_chain, checkpoint) == (20, 20, 20, 109)
    assert set((await rollup_drift(db)).values()) == {0}
    # A batch that does not start right after the checkpoint is refused whole.
    with pytest.raises(writer.CheckpointConflict):
        await writer.write_batch(db, make_batch(115, 120), "arbitrum")
    assert (await snapshot(db))[0] == 20


async def test_replay_changes_nothing(db: asyncpg.Connection) -> None:
    await reset(db)
    await writer.write_batch(db, make_batch(100, 109), "arbitrum")
    before = await snapshot(db)
    await db.execute("UPDATE checkpoints SET block_number = 99")  # as after a crash
    assert await writer.write_batch(db, make_batch(100, 109), "arbitrum") == 0
    assert await snapshot(db) == before


async def test_failed_transaction_leaves_nothing(db: asyncpg.Connection) -> None:
    await reset(db)
    bad = make_batch(100, 104)
    bad.liquidations.append((*bad.liquidations[0][:5], "not-an-int", *bad.liquidations[0][6:]))
    with pytest.raises((asyncpg.DataError, ValueError, TypeError)):
        await writer.write_batch(db, bad, "arbitrum")
    assert await snapshot(db) == (0, None, None, None, None, None, None, None, 99)


async def test_rollback_removes_exactly_the_rows_above(db: asyncpg.Connection) -> None:
    await reset(db)
    await writer.write_batch(db, make_batch(100, 104), "arbitrum")
    expected = await snapshot(db)
    await writer.write_batch(db, make_batch(105, 112), "arbitrum")
    assert await rollback.stored_hashes(db, CHAIN, 110) == {
        110: "0xh110",
        111: "0xh111",
        112: "0xh112",
    }
    removed = await rollback.rollback(db, CHAIN, 104, "0xh104")
    assert removed["liquidations"] == 16
    assert await snapshot(db) == expected
    assert set((await rollup_drift(db)).values()) == {0}
    # Rebuilding the same blocks gives the same totals as never having rolled back.
    await writer.write_batch(db, make_batch(105, 112), "arbitrum")
    await rollback.rollback(db, CHAIN, 104, "0xh104")
    assert await snapshot(db) == expected


async def test_replay_overlapping_new_rows_inserts_only_the_new(db: asyncpg.Connection) -> None:
    await reset(db)
    await writer.write_batch(db, make_batch(100, 104), "arbitrum")
    await db.execute("UPDATE checkpoints SET block_number = 99")
    # Blocks 100-104 are stored already, 105-109 are new: only these go in, once.
    new = make_batch(105, 109)
    expected = len(new.liquidations) + len(new.recaptures)
    assert await writer.write_batch(db, make_batch(100, 109), "arbitrum") == expected
    snap = await snapshot(db)
    assert (snap[0], snap[2], snap[-1]) == (20, 20, 109)


async def test_status_and_checkpoint_hash_take_any_text(db: asyncpg.Connection) -> None:
    await reset(db)
    batch = make_batch(100, 101)
    batch.last_block_hash = "0xh'1\\01"
    await writer.write_batch(db, batch, "it's \\ arbitrum")
    assert await db.fetchval("SELECT name FROM chain_status") == "it's \\ arbitrum"
    assert await db.fetchval("SELECT block_hash FROM checkpoints") == "0xh'1\\01"
    assert await db.fetchval("SELECT indexed_block FROM chain_status") == 101


async def test_a_conflict_leaves_no_transaction_open(db: asyncpg.Connection) -> None:
    await reset(db)
    with pytest.raises(writer.CheckpointConflict):
        await writer.write_batch(db, make_batch(105, 106), "arbitrum")
    assert not db.is_in_transaction()
    assert await db.fetchval("SELECT count(*) FROM chain_status") == 0
    assert await writer.write_batch(db, make_batch(100, 101), "arbitrum") > 0
