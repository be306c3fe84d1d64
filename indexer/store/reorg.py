"""What happens on a reorg: find the common ancestor, delete everything above it.

The tail stores the headers of unfinalized blocks. When a new block's parent hash does not
match what we stored, the pipeline asks the node for its canonical hashes of the stored
heights; the highest height where both agree is the common ancestor. Everything above it
(rows, headers; the rollups follow through their triggers) is deleted and the checkpoint
moved back, in one transaction (I4).
"""

from __future__ import annotations

import asyncpg

from indexer.store.writer import MAIN_STREAM

STORED_HASHES = """
SELECT block_number, block_hash FROM blocks
WHERE chain_id = $1 AND block_number >= $2 ORDER BY block_number
"""

DELETE_ABOVE = (
    "DELETE FROM liquidations WHERE chain_id = $1 AND block_number > $2",
    "DELETE FROM svr_oracle_updates WHERE chain_id = $1 AND block_number > $2",
    "DELETE FROM svr_recaptures WHERE chain_id = $1 AND block_number > $2",
    "DELETE FROM blocks WHERE chain_id = $1 AND block_number > $2",
)

PRUNE_FINAL_HEADERS = "DELETE FROM blocks WHERE chain_id = $1 AND block_number < $2"


class DeepReorg(Exception):
    """The chain diverged below everything we keep (deeper than finality): halt."""


async def stored_hashes(conn: asyncpg.Connection, chain_id: int, since: int) -> dict[int, str]:
    rows = await conn.fetch(STORED_HASHES, chain_id, since)
    return {int(r["block_number"]): r["block_hash"] for r in rows}


def common_ancestor(stored: dict[int, str], canonical: dict[int, str]) -> int | None:
    """Highest height whose stored hash equals the canonical one (None: none agree)."""
    for number in sorted(stored, reverse=True):
        if canonical.get(number) == stored[number]:
            return number
    return None


async def rollback(
    conn: asyncpg.Connection, chain_id: int, ancestor: int, ancestor_hash: str | None
) -> dict[str, int]:
    """Delete everything above `ancestor` and move the checkpoint there, atomically."""
    removed: dict[str, int] = {}
    async with conn.transaction():
        for sql in DELETE_ABOVE:
            status = await conn.execute(sql, chain_id, ancestor)
            removed[sql.split()[2]] = int(status.rsplit(" ", 1)[1])
        await conn.execute(
            "UPDATE checkpoints SET block_number = $3, block_hash = $4, updated_at = now() "
            "WHERE chain_id = $1 AND stream = $2 AND block_number > $3",
            chain_id,
            MAIN_STREAM,
            ancestor,
            ancestor_hash,
        )
        await conn.execute(
            "UPDATE chain_status SET indexed_block = $2, updated_at = now() "
            "WHERE chain_id = $1 AND indexed_block > $2",
            chain_id,
            ancestor,
        )
    return removed


async def prune_headers(conn: asyncpg.Connection, chain_id: int, below: int) -> None:
    """Headers below the finalized block can never be reorged: forget them."""
    await conn.execute(PRUNE_FINAL_HEADERS, chain_id, below)
