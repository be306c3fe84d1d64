"""schema.sql: idempotent migrate, rollups equal GROUP BY after inserts and deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from indexer.records import LIQUIDATION_COLUMNS
from indexer.store.migrate import SCHEMA_VERSION, migrate
from indexer.store.rollups import DRIFT_CHECKS, LIQUIDATION_ROLLUP_DRIFT, rollup_drift

ROOT = Path(__file__).resolve().parents[1]
ROLLUPS = tuple(DRIFT_CHECKS)


async def test_migrate_is_idempotent(db: asyncpg.Connection) -> None:
    assert await migrate(db) == SCHEMA_VERSION
    assert await migrate(db) == SCHEMA_VERSION


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
    for table in ROLLUPS[:-1]:  # every liquidation rollup holds each row once
        total = await db.fetchval(f"SELECT sum(liquidation_count) FROM {table}")
        assert total == n, table
    await db.execute("DELETE FROM liquidations WHERE block_number >= $1", n // 2)
    assert set((await rollup_drift(db)).values()) == {0}
    await db.execute("DELETE FROM liquidations")
    for table in ROLLUPS:
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_chain_rollups_hold_totals_per_chain_and_period(db: asyncpg.Connection) -> None:
    await db.execute("DELETE FROM liquidations")
    await _insert(db, 100)
    hourly = await db.fetch(
        "SELECT chain_id, bucket, liquidation_count, svr_count, svr_collateral_usd"
        " FROM chain_rollup_hourly ORDER BY 1, 2"
    )
    want = await db.fetch(
        "SELECT chain_id, date_trunc('hour', block_time, 'UTC') AS bucket, count(*),"
        " count(*) FILTER (WHERE is_svr), coalesce(sum(collateral_usd) FILTER (WHERE is_svr), 0)"
        " FROM liquidations GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert [tuple(r) for r in hourly] == [tuple(r) for r in want]
    daily = await db.fetchval("SELECT count(*) FROM chain_rollup_daily")
    days = await db.fetchval(
        "SELECT count(DISTINCT (chain_id, date_trunc('day', block_time, 'UTC'))) FROM liquidations"
    )
    assert daily == days
    assert await db.fetchval("SELECT DISTINCT grain FROM liquidation_rollup") == "day"
    await db.execute("DELETE FROM liquidations")


async def test_reader_role_can_read_every_rollup(db: asyncpg.Connection) -> None:
    for table in ROLLUPS:
        assert await db.fetchval(
            "SELECT has_table_privilege('aave_indexer_reader', $1, 'SELECT')", table
        ), table


async def test_version_1_database_is_upgraded(db_dsn: str) -> None:
    """A database at schema version 1, with rows, migrates to the current rollups exactly."""
    base, _, _ = db_dsn.rpartition("/")
    name = "aave_idx_v1_" + db_dsn.rpartition("/")[2][-8:]
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(f"{base}/{name}")
    try:
        await conn.execute((ROOT / "tests" / "schema_v1.sql").read_text())
        await _insert(conn, 120)
        await conn.execute(
            "INSERT INTO svr_recaptures VALUES (1, 1, '0xb', now(), '0xt', -1, '0xr', NULL, 1,"
            " 2.5, '0xagg', ARRAY['1:0xt:0'], 6500, 1.625, 0.875, '65/35')"
        )
        assert await conn.fetchval("SELECT max(version) FROM schema_version") == 1
        assert await migrate(conn) == SCHEMA_VERSION
        assert await migrate(conn) == SCHEMA_VERSION
        assert set((await rollup_drift(conn)).values()) == {0}
        assert await conn.fetchval("SELECT sum(liquidation_count) FROM chain_rollup_daily") == 120
        await conn.execute("DELETE FROM liquidations WHERE block_number >= 60")
        assert set((await rollup_drift(conn)).values()) == {0}
    finally:
        await conn.close()
        admin = await asyncpg.connect(f"{base}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_updates_are_refused(db: asyncpg.Connection) -> None:
    await _insert(db, 3)
    with pytest.raises(asyncpg.RaiseError, match="insert/delete only"):
        await db.execute("UPDATE liquidations SET is_svr = true")
