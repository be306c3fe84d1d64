"""schema.sql: idempotent migrate, rollups equal GROUP BY after inserts and deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from indexer.records import LIQUIDATION_COLUMNS
from indexer.store.migrate import migrate


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


ROLLUP_EQUALS_GROUP_BY = """
WITH base AS (
  SELECT g.grain, chain_id, date_trunc(g.grain, block_time, 'UTC') AS bucket,
         collateral_asset, debt_asset, count(*) AS n, sum(debt_usd) AS d,
         sum(collateral_usd) AS c, count(*) FILTER (WHERE is_svr) AS s,
         coalesce(sum(debt_usd) FILTER (WHERE is_svr), 0) AS sd
  FROM liquidations CROSS JOIN (VALUES ('hour'), ('day')) g(grain) GROUP BY 1, 2, 3, 4, 5)
SELECT count(*) FROM base FULL JOIN liquidation_rollup r USING (grain, chain_id, bucket,
  collateral_asset, debt_asset)
WHERE base.n IS DISTINCT FROM r.liquidation_count OR base.d IS DISTINCT FROM r.debt_usd
   OR base.c IS DISTINCT FROM r.collateral_usd OR base.s IS DISTINCT FROM r.svr_count
   OR base.sd IS DISTINCT FROM r.svr_debt_usd
"""


@pytest.mark.parametrize("n", [1, 250])
async def test_rollups_follow_inserts_and_deletes(db: asyncpg.Connection, n: int) -> None:
    await db.execute("DELETE FROM liquidations")
    await _insert(db, n)
    assert await db.fetchval(ROLLUP_EQUALS_GROUP_BY) == 0
    assert await db.fetchval("SELECT sum(liquidation_count) FROM liquidation_rollup") == 2 * n
    await db.execute("DELETE FROM liquidations WHERE block_number >= $1", n // 2)
    assert await db.fetchval(ROLLUP_EQUALS_GROUP_BY) == 0
    await db.execute("DELETE FROM liquidations")
    assert await db.fetchval("SELECT count(*) FROM liquidation_rollup") == 0
    assert await db.fetchval("SELECT count(*) FROM svr_revenue_rollup_daily") == 0


async def test_updates_are_refused(db: asyncpg.Connection) -> None:
    await _insert(db, 3)
    with pytest.raises(asyncpg.RaiseError, match="insert/delete only"):
        await db.execute("UPDATE liquidations SET is_svr = true")
