"""schema.sql: idempotent migrate, rollups equal GROUP BY after inserts and deletes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from indexer.records import LIQUIDATION_COLUMNS
from indexer.store.migrate import SCHEMA_VERSION, SchemaTooNew, migrate
from indexer.store.rollups import DRIFT_CHECKS, LIQUIDATION_ROLLUP_DRIFT, rollup_drift
from indexer.store.rollups import ROLLUPS as SPEC

ROOT = Path(__file__).resolve().parents[1]
ROLLUPS = tuple(DRIFT_CHECKS)


async def _rollup_layout(conn: asyncpg.Connection) -> dict[str, list[tuple[str, str]]]:
    """Each rollup table's columns and types, as the database has them."""
    return {
        r.table: [
            (c["column_name"], c["data_type"])
            for c in await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = $1 ORDER BY ordinal_position",
                r.table,
            )
        ]
        for r in SPEC
    }


def _spec_layout() -> dict[str, list[tuple[str, str]]]:
    """The same, as the spec says (information_schema spells timestamptz out)."""
    spelled = {"timestamptz": "timestamp with time zone"}
    return {
        r.table: [
            (name, spelled.get(col.type, col.type))
            for name, col in {**r.fixed, **r.keys, **r.measures}.items()
        ]
        for r in SPEC
    }


async def test_migrate_is_idempotent(db: asyncpg.Connection) -> None:
    assert await migrate(db) == SCHEMA_VERSION
    assert await migrate(db) == SCHEMA_VERSION
    assert await _rollup_layout(db) == _spec_layout()


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
        assert await _rollup_layout(conn) == _spec_layout()
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


LIQ_FILLED = [
    "chain_id",
    "block_number",
    "block_hash",
    "block_time",
    "tx_hash",
    "tx_index",
    "log_index",
    "pool",
    "collateral_asset",
    "debt_asset",
    "user_address",
    "liquidator",
    "debt_to_cover",
    "liquidated_collateral_amount",
    "receive_atoken",
    "collateral_usd",
    "debt_usd",
    "is_svr",
    "svr_aggregator",
]


def _random_rows(
    rng: random.Random, n: int
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Liquidations and recaptures over few chains, hours, assets and liquidators (so rows
    share rollup keys), some with no USD value, SVR without an aggregator, recaptures
    without one; natural keys from a small space, so a batch can repeat stored rows."""
    t0 = datetime(2026, 3, 1, 22, tzinfo=UTC)
    liqs: list[tuple[object, ...]] = []
    recs: list[tuple[object, ...]] = []
    for _ in range(n):
        block = rng.randrange(200)
        tx = f"0xt{rng.randrange(300)}"
        chain = rng.choice((1, 137))
        when = t0 + timedelta(minutes=17 * block)
        usd = None if rng.random() < 0.1 else Decimal(rng.randrange(10**6)) / 100
        svr = rng.random() < 0.4
        aggregator = rng.choice(("0xagg1", "0xagg2", None)) if svr else None
        liqs.append(
            (
                chain, block, f"0xb{block}", when, tx, 0, rng.randrange(3), "0xpool",
                f"0xc{rng.randrange(3)}", f"0xd{rng.randrange(2)}", "0xu",
                f"0xl{rng.randrange(4)}", Decimal(10**18), Decimal(10**17), False,
                usd, None if usd is None else usd * 2, svr, aggregator,
            )
        )  # fmt: skip
        if rng.random() < 0.5:
            amount = None if rng.random() < 0.1 else Decimal(rng.randrange(10**4)) / 8
            recs.append(
                (
                    chain, block, f"0xb{block}", when, tx, rng.choice((-1, 5)), "0xr", None,
                    Decimal(10**15), amount, rng.choice(("0xagg1", "0xagg2", None)),
                    [f"{chain}:{tx}:0"], 6500, amount, amount, "65/35",
                )
            )  # fmt: skip
    return liqs, recs


async def test_random_inserts_replays_and_deletes_keep_rollups_equal(
    db: asyncpg.Connection,
) -> None:
    """The generated triggers against GROUP BY over the base rows, statement by statement:
    multi-row inserts that partly repeat stored rows, and deletes of random subsets."""
    await db.execute("DELETE FROM liquidations")
    await db.execute("DELETE FROM svr_recaptures")
    await db.execute("CREATE TEMP TABLE stage_l (LIKE liquidations)")
    await db.execute("CREATE TEMP TABLE stage_r (LIKE svr_recaptures)")
    rng = random.Random(20260301)
    try:
        for step in range(40):
            if rng.random() < 0.6:
                liqs, recs = _random_rows(rng, rng.randrange(1, 120))
                await db.execute("TRUNCATE stage_l, stage_r")
                await db.copy_records_to_table("stage_l", records=liqs, columns=LIQ_FILLED)
                await db.copy_records_to_table("stage_r", records=recs)
                async with db.transaction():
                    await db.execute(
                        "INSERT INTO liquidations SELECT * FROM stage_l ON CONFLICT DO NOTHING"
                    )
                    await db.execute(
                        "INSERT INTO svr_recaptures SELECT * FROM stage_r ON CONFLICT DO NOTHING"
                    )
            else:
                table = rng.choice(("liquidations", "svr_recaptures"))
                low = rng.randrange(200)
                await db.execute(
                    f"DELETE FROM {table} WHERE block_number BETWEEN $1 AND $2"
                    " OR (chain_id = $3 AND random() < 0.2)",
                    low,
                    low + rng.randrange(60),
                    rng.choice((1, 137)),
                )
            drift = await rollup_drift(db)
            assert set(drift.values()) == {0}, (step, drift)
        assert await db.fetchval("SELECT count(*) FROM liquidations") > 0
        await db.execute("DELETE FROM liquidations")
        await db.execute("DELETE FROM svr_recaptures")
        for table in ROLLUPS:
            assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    finally:
        await db.execute("DROP TABLE stage_l, stage_r")


async def test_a_newer_database_is_refused(db: asyncpg.Connection) -> None:
    await db.execute("INSERT INTO schema_version (version) VALUES ($1)", SCHEMA_VERSION + 1)
    try:
        with pytest.raises(SchemaTooNew, match=f"at version {SCHEMA_VERSION + 1}, newer"):
            await migrate(db)
        assert not db.is_in_transaction()
    finally:
        await db.execute("DELETE FROM schema_version WHERE version > $1", SCHEMA_VERSION)
    assert await migrate(db) == SCHEMA_VERSION
