"""Applies schema.sql and the rollups' tables and triggers: idempotent, so
`aave-indexer migrate` can run at every start. What they cannot do by themselves (CREATE IF
NOT EXISTS does not change an existing table) is a version's step, run once on a database
below that version."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

from indexer.store.locks import hold_migration_lock
from indexer.store.rollups import ROLLUP_SQL, drop_sql, rebuild_sql

CREATE_DATABASE = 'CREATE DATABASE "{name}"'
SCHEMA_VERSION = 3


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


STEPS = {
    # Version 1 kept an hour grain per asset pair in liquidation_rollup and assets in
    # liquidator_rollup_daily, and had no chain rollups.
    2: relayout(
        "chain_rollup_hourly", "chain_rollup_daily", "liquidation_rollup", "liquidator_rollup_daily"
    ),
    # Version 3: markets (a chain has several pools). Rows indexed before were all of the
    # shipped configuration's one pool per chain, its core market.
    3: Step(
        before="""
ALTER TABLE liquidations ADD COLUMN IF NOT EXISTS market text NOT NULL DEFAULT 'core';
ALTER TABLE liquidations ALTER COLUMN market DROP DEFAULT;
ALTER TABLE svr_recaptures ADD COLUMN IF NOT EXISTS market text;
"""
    ),
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


async def migrate(conn: asyncpg.Connection) -> int:
    """Bring the database to SCHEMA_VERSION in one transaction under the migration lock (two
    processes may migrate at once; a chain's owner never blocks a migration, its lock being
    of another space). A new database gets the current layout directly, with no steps."""
    async with conn.transaction():
        await hold_migration_lock(conn)
        current = await database_version(conn)
        if current > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database schema is at version {current}, newer than this release's"
                f" ({SCHEMA_VERSION}); run a release that knows version {current}"
            )
        steps = [STEPS[v] for v in sorted(STEPS) if 0 < current < v]
        for step in steps:
            if step.before:
                await conn.execute(step.before)
        await conn.execute(schema_sql())
        await conn.execute(ROLLUP_SQL)
        for step in steps:
            if step.after:
                await conn.execute(step.after)
        await conn.execute(
            "INSERT INTO schema_version (version) VALUES ($1) ON CONFLICT DO NOTHING",
            SCHEMA_VERSION,
        )
    return SCHEMA_VERSION


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
