"""schema.sql: idempotent migrate, rollups equal GROUP BY after inserts and deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from indexer.records import LIQUIDATION_COLUMNS
from indexer.store.migrate import migrate
from indexer.store.rollups import LIQUIDATION_ROLLUP_DRIFT, rollup_drift


async def test_migrate_is_idempotent(db: asyncpg.Connection) -> None:
    assert await migrate(db) == 1
    assert await migrate(db) == 1


async def _insert(db: asyncpg.Connection, n: int, svr_every: int = 3) -> None:
    t0 = datetime(2026, 1, 31, tzinfo=UTC)
    rows = []
    for i in range(n):
        svr = i % svr_every == 0
        rows.append(
            (
                1 if i % 2 else 137,
                i,
                f"0xb{i}",
                t0 + timedelta(minutes=37 * i),
                f"0xt{i}",
                0,
                i,
                "0xpool",
                f"0xc{i % 3}",
                f"0xd{i % 2}",
                f"0xu{i}",
                f"0xl{i % 4}",
                Decimal(10**18 + i),
                Decimal(5 * 10**17),
                False,
                Decimal(1000 + i),
                Decimal(10**8),
                Decimal(i) / 7,
                Decimal(i) / 3,
                None,
                svr,
                "0xagg" if svr else None,
            )
        )
    await db.copy_records_to_table(
        "liquidations",
        records=rows,
        columns=LIQUIDATION_COLUMNS[:22],  # up to svr_aggregator
    )


ROLLUP_EQUALS_GROUP_BY = LIQUIDATION_ROLLUP_DRIFT


@pytest.mark.parametrize("n", [1, 250])
async def test_rollups_follow_inserts_and_deletes(db: asyncpg.Connection, n: int) -> None:
    await db.execute("DELETE FROM liquidations")
    await _insert(db, n)
    assert await db.fetchval(ROLLUP_EQUALS_GROUP_BY) == 0
    assert await db.fetchval("SELECT sum(liquidation_count) FROM liquidation_rollup") == 2 * n
    await db.execute("DELETE FROM liquidations WHERE block_number >= $1", n // 2)
    assert set((await rollup_drift(db)).values()) == {0}
    await db.execute("DELETE FROM liquidations")
    assert await db.fetchval("SELECT count(*) FROM liquidation_rollup") == 0
    assert await db.fetchval("SELECT count(*) FROM svr_revenue_rollup_daily") == 0


async def test_updates_are_refused(db: asyncpg.Connection) -> None:
    await _insert(db, 3)
    with pytest.raises(asyncpg.RaiseError, match="insert/delete only"):
        await db.execute("UPDATE liquidations SET is_svr = true")
