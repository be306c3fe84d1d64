"""Applies schema.sql: idempotent, so `aave-indexer migrate` can run at every start."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import asyncpg

SCHEMA_VERSION = 2


def schema_sql() -> str:
    """The schema text: schema.sql at the repository root, or the packaged copy."""
    here = Path(__file__).resolve().parents[2] / "schema.sql"
    if here.exists():
        return here.read_text()
    return resources.files("indexer").joinpath("schema.sql").read_text()


async def migrate(conn: asyncpg.Connection) -> int:
    """Apply the schema under an advisory lock (two processes may migrate at once)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(727100001)")
        await conn.execute(schema_sql())
    version = await conn.fetchval("SELECT max(version) FROM schema_version")
    return int(version)
