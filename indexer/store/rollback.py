"""How a reorg's rollback reaches the database (the decision is indexer/reorg.py's).

The tail stores the headers of unfinalized blocks; `stored_hashes` gives them back for the
ancestor search. `rollback` deletes everything above the common ancestor (rows, headers;
the rollups follow through their triggers) and moves the checkpoint and the status there,
in one transaction (I4).
"""

from __future__ import annotations

import asyncpg

from indexer.store.writer import MAIN_STREAM, SOURCES_STREAM

STORED_HASHES = """
SELECT block_number, block_hash FROM blocks
WHERE chain_id = $1 AND block_number >= $2 ORDER BY block_number
"""
STORED_HASH = "SELECT block_hash FROM blocks WHERE chain_id = $1 AND block_number = $2"

#: table -> the DELETE of its rows above the ancestor; the rows' tables before `blocks`.
DELETE_ABOVE = {
    table: f"DELETE FROM {table} WHERE chain_id = $1 AND block_number > $2"
    for table in (
        "liquidations",
        "svr_oracle_updates",
        "svr_recaptures",
        "asset_sources",
        "deficits",
        "blocks",
    )
}
CHECKPOINT_BACK = """
UPDATE checkpoints SET block_number = $3, block_hash = $4, updated_at = now()
WHERE chain_id = $1 AND stream = $2 AND block_number > $3
"""
STATUS_BACK = """
UPDATE chain_status SET indexed_block = $2, updated_at = now()
WHERE chain_id = $1 AND indexed_block > $2
"""
PRUNE_FINAL_HEADERS = "DELETE FROM blocks WHERE chain_id = $1 AND block_number < $2"


async def stored_hashes(conn: asyncpg.Connection, chain_id: int, since: int) -> dict[int, str]:
    rows = await conn.fetch(STORED_HASHES, chain_id, since)
    return {int(r["block_number"]): r["block_hash"] for r in rows}


async def stored_hash(conn: asyncpg.Connection, chain_id: int, number: int) -> str | None:
    """The stored hash of one block (None when its header is not kept)."""
    value = await conn.fetchval(STORED_HASH, chain_id, number)
    return None if value is None else str(value)


async def rollback(
    conn: asyncpg.Connection, chain_id: int, ancestor: int, ancestor_hash: str | None
) -> dict[str, int]:
    """Delete everything above `ancestor` and move the checkpoint there, atomically.
    Returns the rows removed per table."""
    removed: dict[str, int] = {}
    async with conn.transaction():
        for table, sql in DELETE_ABOVE.items():
            status = await conn.execute(sql, chain_id, ancestor)
            removed[table] = int(status.rsplit(" ", 1)[1])
        for stream in (MAIN_STREAM, SOURCES_STREAM):
            await conn.execute(CHECKPOINT_BACK, chain_id, stream, ancestor, ancestor_hash)
        await conn.execute(STATUS_BACK, chain_id, ancestor)
    return removed


async def prune_headers(conn: asyncpg.Connection, chain_id: int, below: int) -> None:
    """Headers below the finalized block can never be reorged: forget them."""
    await conn.execute(PRUNE_FINAL_HEADERS, chain_id, below)
