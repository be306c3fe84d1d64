"""Each chain's status row: the heads last seen, the last error, whether it is halted.

The indexed block is moved by the writer with the checkpoint (store/writer.py); what is
here is what the pipeline reports between batches and what `aave-indexer status` reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from indexer.store.writer import MAIN_STREAM

UPDATE_HEADS = """
INSERT INTO chain_status (chain_id, name, head_block, finalized_block, last_error, halted,
    updated_at)
VALUES ($1, $2, $3, $4, $5, $6, now())
ON CONFLICT (chain_id) DO UPDATE SET name = EXCLUDED.name, head_block = EXCLUDED.head_block,
    finalized_block = EXCLUDED.finalized_block, last_error = EXCLUDED.last_error,
    halted = EXCLUDED.halted, updated_at = now()
"""
SET_LAST_ERROR = "UPDATE chain_status SET last_error = $2, updated_at = now() WHERE chain_id = $1"
READ_HALT = "SELECT halted, last_error FROM chain_status WHERE chain_id = $1"
CLEAR_HALT = "UPDATE chain_status SET halted = false WHERE chain_id = $1"
ALL_CHAINS = """
SELECT s.chain_id, s.name, s.head_block, s.finalized_block, c.block_number AS indexed,
       s.last_error, s.halted, s.updated_at
FROM chain_status s LEFT JOIN checkpoints c ON c.chain_id = s.chain_id AND c.stream = $1
ORDER BY s.chain_id
"""


@dataclass(frozen=True, slots=True)
class Halt:
    """A chain an operator must look at, and why."""

    reason: str | None


async def update_heads(
    conn: asyncpg.Connection,
    chain_id: int,
    name: str,
    head: int | None,
    finalized: int | None,
    error: str | None = None,
    halted: bool = False,
) -> None:
    await conn.execute(UPDATE_HEADS, chain_id, name, head, finalized, error, halted)


async def set_last_error(conn: asyncpg.Connection, chain_id: int, message: str) -> None:
    await conn.execute(SET_LAST_ERROR, chain_id, message)


async def read_halt(conn: asyncpg.Connection, chain_id: int) -> Halt | None:
    """The chain's halt, or None when it is not halted."""
    row = await conn.fetchrow(READ_HALT, chain_id)
    return Halt(row["last_error"]) if row is not None and row["halted"] else None


async def clear_halt(conn: asyncpg.Connection, chain_id: int) -> None:
    await conn.execute(CLEAR_HALT, chain_id)


async def all_chains(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every chain's status with its checkpoint, for `aave-indexer status`."""
    return list(await conn.fetch(ALL_CHAINS, MAIN_STREAM))
