"""Applies schema.sql and the rollups' tables and triggers: idempotent, so
`aave-indexer migrate` can run at every start. What they cannot do by themselves (CREATE IF
NOT EXISTS does not change an existing table) is a version's step, run once on a database
below that version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

from indexer.store import bulk
from indexer.store.locks import LockSpace, hold_bulk_lock, hold_migration_lock
from indexer.store.rollups import ROLLUP_SQL, drop_sql, rebuild_sql

CREATE_DATABASE = 'CREATE DATABASE "{name}"'
SCHEMA_VERSION = 5


class SchemaTooNew(Exception):
    """The database was migrated by a newer release: this one would undo its changes."""


@dataclass(frozen=True)
class Step:
    """What brings a database from the version below to this one: `before` runs ahead of
    schema.sql (drop what a new layout replaces), `after` once schema.sql and the rollup
    tables and triggers are in place (rebuild what changed from the base rows)."""

    before: str = ""
    after: str = ""


def relayout(*tables: str) -> Step:
    """The step for rollups whose layout changed: dropped (ROLLUP_SQL makes them anew), then
    computed from the base rows."""
    return Step(before=drop_sql(*tables), after=rebuild_sql(*tables))


# The configuration's market of each (chain id, lowercase pool address), for the steps that
# need it: filled by `migrate` (from its `markets` argument) ahead of the pending steps.
POOL_MARKETS = """
CREATE TEMP TABLE migrate_pool_markets (
    chain_id integer NOT NULL,
    pool     text    NOT NULL,
    market   text    NOT NULL,
    PRIMARY KEY (chain_id, pool)
) ON COMMIT DROP
"""

ALL_ROLLUPS = (
    "chain_rollup_hourly",
    "chain_rollup_daily",
    "liquidation_rollup",
    "liquidator_rollup_daily",
    "svr_revenue_rollup_daily",
)

# Version 3's own part, after the rollups are dropped: the market columns, filled. Rows
# indexed before were of one pool per chain, its core market, unless the configuration
# names another market for their pool; a recapture gets the market of the first
# liquidation it belongs to (none when it belongs to none). The update guards are dropped
# to fill them (ROLLUP_SQL makes them again; no rollup exists meanwhile to go stale).
MARKET_COLUMNS = """
DROP TRIGGER IF EXISTS liquidations_no_update ON liquidations;
DROP TRIGGER IF EXISTS svr_recaptures_no_update ON svr_recaptures;
ALTER TABLE liquidations ADD COLUMN IF NOT EXISTS market text NOT NULL DEFAULT 'core';
ALTER TABLE liquidations ALTER COLUMN market DROP DEFAULT;
UPDATE liquidations l SET market = m.market
FROM migrate_pool_markets m
WHERE l.chain_id = m.chain_id AND l.pool = m.pool AND l.market <> m.market;
ALTER TABLE svr_recaptures ADD COLUMN IF NOT EXISTS market text;
UPDATE svr_recaptures r SET market = coalesce(
    (SELECT l.market FROM liquidations l
     WHERE l.chain_id = r.chain_id
       AND l.tx_hash = split_part(r.liquidation_ids[1], ':', 2)
       AND l.log_index::text = split_part(r.liquidation_ids[1], ':', 3)),
    'core')
WHERE r.market IS NULL AND cardinality(r.liquidation_ids) > 0;
ALTER TABLE svr_oracle_updates ADD COLUMN IF NOT EXISTS transmitter text;
ALTER TABLE svr_oracle_updates ADD COLUMN IF NOT EXISTS observations_timestamp bigint;
ALTER TABLE svr_oracle_updates ADD COLUMN IF NOT EXISTS epoch_and_round bigint;
ALTER TABLE svr_oracle_updates ADD COLUMN IF NOT EXISTS config_digest text;
ALTER TABLE svr_oracle_updates ADD COLUMN IF NOT EXISTS sold boolean;
ALTER TABLE liquidations ADD COLUMN IF NOT EXISTS svr_bid_count integer;
ALTER TABLE liquidations ADD COLUMN IF NOT EXISTS svr_best_losing_bid_usd numeric;
"""

LIQUIDATION_ROLLUPS = ALL_ROLLUPS[:4]

# Version 4's own part: each liquidation's economics, computed from its stored amounts and
# prices exactly as the indexer does (USD = amount x price x 10^-(decimals + 8), the
# collateral token's decimals from assets); closed_fully stays unknown for rows from before.
ECONOMICS_COLUMNS = """
DROP TRIGGER IF EXISTS liquidations_no_update ON liquidations;
ALTER TABLE liquidations ADD COLUMN IF NOT EXISTS bonus_usd numeric;
ALTER TABLE liquidations ADD COLUMN IF NOT EXISTS protocol_fee_usd numeric;
ALTER TABLE liquidations ADD COLUMN IF NOT EXISTS collateral_seized_usd numeric;
ALTER TABLE liquidations ADD COLUMN IF NOT EXISTS closed_fully boolean;
UPDATE liquidations l SET
    bonus_usd = l.collateral_usd - l.debt_usd,
    protocol_fee_usd = CASE WHEN l.collateral_usd IS NOT NULL THEN
        (l.protocol_fee_amount * l.collateral_price)
        * ('1e-' || (a.decimals + 8))::numeric END,
    collateral_seized_usd = l.collateral_usd + coalesce(
        (l.protocol_fee_amount * l.collateral_price) * ('1e-' || (a.decimals + 8))::numeric, 0)
FROM assets a
WHERE a.chain_id = l.chain_id AND a.address = l.collateral_asset
  AND l.collateral_usd IS NOT NULL;
UPDATE liquidations SET bonus_usd = collateral_usd - debt_usd
WHERE bonus_usd IS NULL AND collateral_usd IS NOT NULL AND debt_usd IS NOT NULL;
"""

STEPS = {
    # Version 1 kept an hour grain per asset pair in liquidation_rollup and assets in
    # liquidator_rollup_daily, and had no chain rollups.
    2: relayout(
        "chain_rollup_hourly", "chain_rollup_daily", "liquidation_rollup", "liquidator_rollup_daily"
    ),
    # Version 3: markets (a chain has several pools), a key of every rollup; the SVR
    # updates' report fields and whether each was sold (rows from before: null).
    3: Step(
        before=drop_sql(*ALL_ROLLUPS) + "\n" + MARKET_COLUMNS,
        after=rebuild_sql(*ALL_ROLLUPS),
    ),
    # Version 4: the liquidations' economics (bonus, protocol fee and collateral seized in
    # USD, whether the debt was closed), measures of the liquidation rollups.
    4: Step(
        before=drop_sql(*LIQUIDATION_ROLLUPS) + "\n" + ECONOMICS_COLUMNS,
        after=rebuild_sql(*LIQUIDATION_ROLLUPS),
    ),
    # Version 5: what each liquidation's prices are as of (rows from before: null).
    5: Step(before="ALTER TABLE liquidations ADD COLUMN IF NOT EXISTS price_basis text;"),
}
if max(STEPS) != SCHEMA_VERSION:
    raise RuntimeError("SCHEMA_VERSION and the last migration step disagree")


def schema_sql() -> str:
    """The schema text: schema.sql at the repository root, or the packaged copy."""
    here = Path(__file__).resolve().parents[2] / "schema.sql"
    if here.exists():
        return here.read_text()
    return resources.files("indexer").joinpath("schema.sql").read_text()


async def database_version(conn: asyncpg.Connection) -> int:
    """The schema version the database is at; 0 for an empty database."""
    if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))


async def migrate(
    conn: asyncpg.Connection, markets: Mapping[tuple[int, str], str] | None = None
) -> int:
    """Bring the database to SCHEMA_VERSION in one transaction under the migration lock (two
    processes may migrate at once; a chain's owner never blocks a migration, its lock being
    of another space). A new database gets the current layout directly, with no steps.

    `markets` maps (chain id, pool address) to the pool's market, as the configuration has
    it: rows stored before version 3 get their market from it (their pool not in it: core).
    """
    async with conn.transaction():
        await hold_migration_lock(conn)
        await hold_bulk_lock(conn)  # before any table lock, as bulk loading takes them
        await _forget_stale_bulk_loads(conn)
        current = await database_version(conn)
        if current > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database schema is at version {current}, newer than this release's"
                f" ({SCHEMA_VERSION}); run a release that knows version {current}"
            )
        steps = [STEPS[v] for v in sorted(STEPS) if 0 < current < v]
        if steps:
            await conn.execute(POOL_MARKETS)
            pools = {(chain_id, pool.lower()): m for (chain_id, pool), m in (markets or {}).items()}
            await conn.copy_records_to_table(
                "migrate_pool_markets", records=[(*key, m) for key, m in pools.items()]
            )
        for step in steps:
            if step.before:
                await conn.execute(step.before)
        await conn.execute(schema_sql())
        await conn.execute(ROLLUP_SQL)
        for step in steps:
            if step.after:
                await conn.execute(step.after)
        await bulk.repair(conn)  # indexes an interrupted bulk load left missing
        await conn.execute(
            "INSERT INTO schema_version (version) VALUES ($1) ON CONFLICT DO NOTHING",
            SCHEMA_VERSION,
        )
    return SCHEMA_VERSION


async def _forget_stale_bulk_loads(conn: asyncpg.Connection) -> None:
    """Bulk loads whose chain nobody owns (a crash) are forgotten ahead of schema.sql, so it
    makes the indexes they held off."""
    if await conn.fetchval("SELECT to_regclass('bulk_load')") is not None:
        await conn.execute(bulk.FORGET_STALE, LockSpace.CHAIN)


async def ensure_database(dsn: str) -> None:
    """Create the database `dsn` names if the server does not have it yet, then migrate it
    (for `make demo`, which should work on a fresh server)."""
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        base, _, name = dsn.rpartition("/")
        admin = await asyncpg.connect(f"{base}/postgres")
        try:
            await admin.execute(CREATE_DATABASE.format(name=name.replace('"', '""')))
        finally:
            await admin.close()
        conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
