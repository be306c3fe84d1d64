"""schema.sql: idempotent migrate, rollups equal GROUP BY after inserts and deletes."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from indexer.enrich.prices import EXACT, usd
from indexer.records import LIQUIDATION_COLUMNS, Batch, LiquidationRow
from indexer.store import writer
from indexer.store.migrate import SCHEMA_VERSION, SchemaTooNew, migrate
from indexer.store.rollups import DRIFT_CHECKS, LIQUIDATION_ROLLUP_DRIFT, rollup_drift
from indexer.store.rollups import ROLLUPS as SPEC

ROOT = Path(__file__).resolve().parents[1]
ECONOMICS = ("bonus_usd", "protocol_fee_usd", "collateral_seized_usd", "closed_fully")
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


def _rows(n: int, svr_every: int = 3) -> list[dict[str, object]]:
    """n liquidations over two chains, two pools (markets core and prime), a few assets and
    liquidators, every third SVR."""
    t0 = datetime(2026, 1, 31, tzinfo=UTC)
    rows = []
    for i in range(n):
        svr = i % svr_every == 0
        market = "prime" if i % 5 == 0 else "core"
        rows.append(
            {
                "chain_id": 1 if i % 2 else 137,
                "block_number": i,
                "block_hash": f"0xb{i}",
                "block_time": t0 + timedelta(minutes=37 * i),
                "tx_hash": f"0xt{i}",
                "tx_index": 0,
                "log_index": i,
                "pool": f"0xpool_{market}",
                "market": market,
                "collateral_asset": f"0xc{i % 3}",
                "debt_asset": f"0xd{i % 2}",
                "user_address": f"0xu{i}",
                "liquidator": f"0xl{i % 4}",
                "debt_to_cover": Decimal(10**18 + i),
                "liquidated_collateral_amount": Decimal(5 * 10**17),
                "receive_atoken": False,
                "collateral_price": Decimal(1000 + i),
                "debt_price": Decimal(10**8),
                "collateral_usd": Decimal(i) / 7,
                "debt_usd": Decimal(i) / 3,
                "protocol_fee_amount": Decimal(10**15 + i) if i % 4 else None,
                "is_svr": svr,
                "svr_aggregator": "0xagg" if svr else None,
                "bonus_usd": Decimal(i) / 7 - Decimal(i) / 3,
                "protocol_fee_usd": Decimal(i) / 11 if i % 4 else None,
                "collateral_seized_usd": Decimal(i) / 7 + (Decimal(i) / 11 if i % 4 else 0),
                "closed_fully": i % 3 == 1,
            }
        )
    return rows


async def _insert(
    db: asyncpg.Connection,
    n: int,
    svr_every: int = 3,
    market: bool = True,
    pools: dict[str, str] | None = None,
    economics: bool = True,
) -> None:
    """Insert _rows(n), their pools renamed by `pools`; without `market` as into a database
    from before version 3, without `economics` from before version 4."""
    kept = LIQUIDATION_COLUMNS[:23] + (ECONOMICS if economics and market else ())
    columns = [c for c in kept if market or c != "market"]
    rows = [
        {**r, "pool": (pools or {}).get(str(r["pool"]), r["pool"])} for r in _rows(n, svr_every)
    ]
    await db.copy_records_to_table(
        "liquidations", records=[tuple(r[c] for c in columns) for r in rows], columns=columns
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


async def test_chain_rollups_hold_totals_per_chain_market_and_period(
    db: asyncpg.Connection,
) -> None:
    await db.execute("DELETE FROM liquidations")
    await _insert(db, 100)
    hourly = await db.fetch(
        "SELECT chain_id, market, bucket, liquidation_count, svr_count, svr_collateral_usd"
        " FROM chain_rollup_hourly ORDER BY 1, 2, 3"
    )
    want = await db.fetch(
        "SELECT chain_id, market, date_trunc('hour', block_time, 'UTC') AS bucket, count(*),"
        " count(*) FILTER (WHERE is_svr), coalesce(sum(collateral_usd) FILTER (WHERE is_svr), 0)"
        " FROM liquidations GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    assert [tuple(r) for r in hourly] == [tuple(r) for r in want]
    assert {r["market"] for r in hourly} == {"core", "prime"}
    daily = await db.fetch(
        "SELECT chain_id, market, bucket, liquidation_count FROM chain_rollup_daily"
        " ORDER BY 1, 2, 3"
    )
    want = await db.fetch(
        "SELECT chain_id, market, date_trunc('day', block_time, 'UTC'), count(*)"
        " FROM liquidations GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    assert [tuple(r) for r in daily] == [tuple(r) for r in want]
    assert len(daily) > len({(r["chain_id"], r["bucket"]) for r in daily})  # markets split days
    assert await db.fetchval("SELECT DISTINCT grain FROM liquidation_rollup") == "day"
    await db.execute("DELETE FROM liquidations")


async def test_reader_role_can_read_every_rollup(db: asyncpg.Connection) -> None:
    for table in ROLLUPS:
        assert await db.fetchval(
            "SELECT has_table_privilege('aave_indexer_reader', $1, 'SELECT')", table
        ), table


@asynccontextmanager
async def _old_database(db_dsn: str, schema_file: str) -> AsyncIterator[asyncpg.Connection]:
    """A database of its own made by an older release's schema (tests/schema_v*.sql)."""
    base, _, _ = db_dsn.rpartition("/")
    name = f"aave_idx_{schema_file[7:9]}_" + db_dsn.rpartition("/")[2][-8:]
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(f"{base}/{name}")
    try:
        await conn.execute((ROOT / "tests" / schema_file).read_text())
        yield conn
    finally:
        await conn.close()
        admin = await asyncpg.connect(f"{base}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_version_1_database_is_upgraded(db_dsn: str) -> None:
    """A database at schema version 1, with rows, migrates to the current rollups exactly."""
    async with _old_database(db_dsn, "schema_v1.sql") as conn:
        await _insert(conn, 120, market=False)
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
        assert await conn.fetchval("SELECT DISTINCT market FROM liquidations") == "core"
        assert await conn.fetchval("SELECT market FROM svr_recaptures") == "core"
        await conn.execute("DELETE FROM liquidations WHERE block_number >= 60")
        assert set((await rollup_drift(conn)).values()) == {0}


# What the old rows' markets become: chain 1's second pool is configured as prime; chain
# 137's is not in the configuration, so its rows stay core, as every pool's did before.
V2_MARKETS = {(1, "0xPOOL_PRIME"): "prime", (1, "0xpool_core"): "core", (137, "0xother"): "x"}


def _v2_market(row: dict[str, object]) -> str:
    return "prime" if (row["chain_id"], row["pool"]) == (1, "0xpool_prime") else "core"


async def test_version_2_database_is_upgraded(db_dsn: str) -> None:
    """A database at schema version 2, with rows of two pools, migrates exactly: each row
    gets its pool's configured market (else core), each recapture its first liquidation's,
    the rollups their market key, computed from the base rows."""
    rows = _rows(150)
    async with _old_database(db_dsn, "schema_v2.sql") as conn:
        await _insert(conn, 150, market=False)
        chain1_prime = next(r for r in rows if _v2_market(r) == "prime")
        chain1_core = next(r for r in rows if r["chain_id"] == 1 and _v2_market(r) == "core")
        recaptures = [  # (tx hash, the liquidations it belongs to, the market it gets)
            ("0xr1", [chain1_prime], "prime"),
            ("0xr2", [chain1_core, chain1_prime], "core"),
            ("0xr3", [], None),
            ("0xr4", [{"chain_id": 1, "tx_hash": "0xgone", "log_index": 3}], "core"),
        ]
        for tx, liqs, _ in recaptures:
            await conn.execute(
                "INSERT INTO svr_recaptures VALUES (1, 7, '0xb', $1, $2, -1, '0xr', NULL, 1,"
                " 2.5, '0xagg', $3, 6500, 1.625, 0.875, '65/35')",
                datetime(2026, 2, 1, tzinfo=UTC),
                tx,
                [f"{r['chain_id']}:{r['tx_hash']}:{r['log_index']}" for r in liqs],
            )
        assert await conn.fetchval("SELECT max(version) FROM schema_version") == 2
        assert await migrate(conn, V2_MARKETS) == SCHEMA_VERSION
        assert await migrate(conn, {}) == SCHEMA_VERSION  # the markets are set once
        assert await conn.fetchval("SELECT max(version) FROM schema_version") == SCHEMA_VERSION
        assert await _rollup_layout(conn) == _spec_layout()
        assert set((await rollup_drift(conn)).values()) == {0}

        stored = {
            r["tx_hash"]: r["market"]
            for r in await conn.fetch("SELECT tx_hash, market FROM liquidations")
        }
        assert stored == {r["tx_hash"]: _v2_market(r) for r in rows}
        assert set(stored.values()) == {"core", "prime"}
        got = dict(await conn.fetch("SELECT tx_hash, market FROM svr_recaptures"))
        assert got == {tx: market for tx, _, market in recaptures}
        by_market = dict(
            await conn.fetch(
                "SELECT market, sum(liquidation_count) FROM chain_rollup_daily GROUP BY 1"
            )
        )
        prime = sum(1 for r in rows if _v2_market(r) == "prime")
        assert by_market == {"prime": prime, "core": len(rows) - prime}
        svr_markets = {
            r["market"]
            for r in await conn.fetch("SELECT DISTINCT market FROM svr_revenue_rollup_daily")
        }
        assert svr_markets == {"core", "prime", ""}  # '': the recapture of no liquidation

        # The guards are back, and new rows (through the writer) keep the rollups exact.
        with pytest.raises(asyncpg.RaiseError, match="insert/delete only"):
            await conn.execute("UPDATE liquidations SET market = 'x'")
        with pytest.raises(asyncpg.RaiseError, match="insert/delete only"):
            await conn.execute("UPDATE svr_recaptures SET market = 'x'")
        assert await conn.fetchval(
            "SELECT is_nullable = 'NO' AND column_default IS NULL FROM information_schema.columns"
            " WHERE table_name = 'liquidations' AND column_name = 'market'"
        )
        await writer.prepare(conn)
        await writer.start_checkpoint(conn, 1, 999)
        batch = Batch(1, 1000, 1000, last_block_hash="0xb1000")
        new = {
            **_rows(1)[0],
            "block_number": 1000,
            "block_hash": "0xb1000",
            "tx_hash": "0xnew",
            "market": "etherfi",
        }
        batch.liquidations.append(LiquidationRow(**{c: new.get(c) for c in LIQUIDATION_COLUMNS}))
        assert await writer.write_batch(conn, batch, "ethereum") == 1
        assert (
            await conn.fetchval(
                "SELECT sum(liquidation_count) FROM chain_rollup_hourly WHERE market = 'etherfi'"
            )
            == 1
        )
        assert set((await rollup_drift(conn)).values()) == {0}
        await conn.execute("DELETE FROM liquidations WHERE block_number >= 60")
        await conn.execute("DELETE FROM svr_recaptures WHERE tx_hash = '0xr1'")
        assert set((await rollup_drift(conn)).values()) == {0}


async def test_version_3_database_is_upgraded(db_dsn: str) -> None:
    """A database at schema version 3 gets each liquidation's economics computed from its
    stored amounts and prices exactly as the indexer computes them, closed_fully unknown,
    and the new rollup measures from the base rows."""
    rows = _rows(90)
    async with _old_database(db_dsn, "schema_v3.sql") as conn:
        await _insert(conn, 90, economics=False)
        await conn.executemany(
            "INSERT INTO assets VALUES ($1, $2, $3, $4)",
            [(chain, f"0xc{i}", f"C{i}", 6 + 6 * i) for chain in (1, 137) for i in range(2)],
        )  # 0xc2 has no metadata: its fee stays unpriced
        assert await conn.fetchval("SELECT max(version) FROM schema_version") == 3
        assert await migrate(conn) == SCHEMA_VERSION
        assert await _rollup_layout(conn) == _spec_layout()
        assert set((await rollup_drift(conn)).values()) == {0}
        got = {r["tx_hash"]: r for r in await conn.fetch("SELECT * FROM liquidations")}
        decimals = {"0xc0": 6, "0xc1": 12}
        for row in rows:
            stored = got[row["tx_hash"]]
            collateral, debt = row["collateral_usd"], row["debt_usd"]
            assert stored["bonus_usd"] == EXACT.subtract(collateral, debt)  # type: ignore[arg-type]
            fee, asset = row["protocol_fee_amount"], row["collateral_asset"]
            fee_usd = (
                usd(int(fee), int(row["collateral_price"]), decimals[asset])  # type: ignore[call-overload]
                if fee is not None and asset in decimals
                else None
            )
            assert stored["protocol_fee_usd"] == fee_usd
            if asset in decimals:
                seized = EXACT.add(collateral, fee_usd or 0)  # type: ignore[arg-type]
                assert stored["collateral_seized_usd"] == seized
            assert stored["closed_fully"] is None
        assert any(r["protocol_fee_usd"] for r in got.values())
        bonus = await conn.fetchval("SELECT sum(bonus_usd) FROM chain_rollup_daily")
        assert bonus == await conn.fetchval("SELECT sum(bonus_usd) FROM liquidations")
        assert bonus < 0  # the rows' collateral is worth less than their debt
        with pytest.raises(asyncpg.RaiseError, match="insert/delete only"):
            await conn.execute("UPDATE liquidations SET closed_fully = true")


def test_migrate_command_takes_the_configured_markets(db_dsn: str, tmp_path: Path) -> None:
    """`aave-indexer --config FILE migrate` gives old rows their pool's market from FILE."""
    core, prime = "0x" + "11" * 20, "0x" + "ab" * 20
    config = tmp_path / "chains.toml"
    config.write_text(
        "[chains.ethereum]\nchain_id = 1\n"
        f'[[chains.ethereum.pools]]\nmarket = "core"\naddress = "{core}"\noracle = "{core}"\n'
        # an address in any letter case names the same pool
        f'[[chains.ethereum.pools]]\nmarket = "prime"\naddress = "0x{prime[2:].upper()}"\n'
        f'oracle = "{prime}"\n'
    )

    async def go() -> dict[tuple[int, str], int]:
        async with _old_database(db_dsn, "schema_v2.sql") as conn:
            await _insert(
                conn, 60, market=False, pools={"0xpool_core": core, "0xpool_prime": prime}
            )
            dsn = db_dsn.rpartition("/")[0] + "/" + await conn.fetchval("SELECT current_database()")
            run = subprocess.run(
                [sys.executable, "-m", "indexer.cli", "--config", str(config),
                 "--database-url", dsn, "migrate"],
                capture_output=True, text=True, timeout=120, cwd=ROOT,
            )  # fmt: skip
            assert run.returncode == 0, run.stderr
            assert run.stdout.strip() == f"schema at version {SCHEMA_VERSION}"
            assert set((await rollup_drift(conn)).values()) == {0}
            rows = await conn.fetch(
                "SELECT chain_id, market, count(*) FROM liquidations GROUP BY 1, 2"
            )
            return {(r["chain_id"], r["market"]): r["count"] for r in rows}

    got = asyncio.run(go())
    rows = _rows(60)
    prime_on_1 = sum(1 for r in rows if r["chain_id"] == 1 and r["market"] == "prime")
    # chain 137 is not in the file: its rows stay core, whatever their pool
    assert got == {
        (1, "prime"): prime_on_1,
        (1, "core"): sum(1 for r in rows if r["chain_id"] == 1) - prime_on_1,
        (137, "core"): sum(1 for r in rows if r["chain_id"] == 137),
    }
    assert prime_on_1 > 0


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
    "market",
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
        market = rng.choice(("core", "prime"))
        liqs.append(
            (
                chain, block, f"0xb{block}", when, tx, 0, rng.randrange(3), f"0x{market}",
                market, f"0xc{rng.randrange(3)}", f"0xd{rng.randrange(2)}", "0xu",
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
                    rng.choice(("core", "prime", None)), [f"{chain}:{tx}:0"], 6500, amount,
                    amount, "65/35",
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
