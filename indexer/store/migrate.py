"""Applies schema.sql: idempotent, so `aave-indexer migrate` can run at every start."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import asyncpg

from indexer.store.locks import hold_migration_lock

SCHEMA_VERSION = 2


def schema_sql() -> str:
    """The schema text: schema.sql at the repository root, or the packaged copy."""
    here = Path(__file__).resolve().parents[2] / "schema.sql"
    if here.exists():
        return here.read_text()
    return resources.files("indexer").joinpath("schema.sql").read_text()


async def migrate(conn: asyncpg.Connection) -> int:
    """Apply the schema under the migration lock (two processes may migrate at once; a
    chain's owner never blocks a migration, its lock being of another space)."""
    async with conn.transaction():
        await hold_migration_lock(conn)
        await conn.execute(schema_sql())
    version = await conn.fetchval("SELECT max(version) FROM schema_version")
    return int(version)
