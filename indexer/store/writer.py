"""How rows and the checkpoint reach the database: one transaction per batch.

Rows are COPYed into session-local staging tables, then inserted with ON CONFLICT DO
NOTHING, so a replayed range changes nothing (I2); the rollup triggers see only the rows
actually inserted (I3); and the checkpoint moves in the same transaction (I1), only
forward from where this batch starts, so it can never pass data that is not committed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from indexer.records import (
    ASSET_COLUMNS,
    BLOCK_COLUMNS,
    LIQUIDATION_COLUMNS,
    ORACLE_UPDATE_COLUMNS,
    RECAPTURE_COLUMNS,
    Batch,
)

MAIN_STREAM = "main"

_STAGING = {
    "liquidations": ("stage_liquidations", LIQUIDATION_COLUMNS),
    "svr_oracle_updates": ("stage_oracle_updates", ORACLE_UPDATE_COLUMNS),
    "svr_recaptures": ("stage_recaptures", RECAPTURE_COLUMNS),
}

CREATE_STAGING = "\n".join(
    f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS;"
    for table, (stage, _) in _STAGING.items()
)

INSERT_FROM_STAGE = "INSERT INTO {table} SELECT * FROM {stage} ON CONFLICT DO NOTHING"

# Rows above the checkpoint cannot exist (I1), so a batch normally goes straight into its
# table; only when this probe finds rows in the batch's blocks (a replay after an operator
# moved the checkpoint back) does it go through staging and ON CONFLICT DO NOTHING.
ANY_ROWS_IN_RANGE = """
SELECT EXISTS (SELECT 1 FROM liquidations WHERE chain_id = $1 AND block_number BETWEEN $2 AND $3)
    OR EXISTS (SELECT 1 FROM svr_oracle_updates
               WHERE chain_id = $1 AND block_number BETWEEN $2 AND $3)
    OR EXISTS (SELECT 1 FROM svr_recaptures WHERE chain_id = $1 AND block_number BETWEEN $2 AND $3)
"""

UPSERT_ASSET = """
INSERT INTO assets (chain_id, address, symbol, decimals) VALUES ($1, $2, $3, $4)
ON CONFLICT (chain_id, address) DO UPDATE SET symbol = EXCLUDED.symbol,
    decimals = EXCLUDED.decimals
"""

UPSERT_BLOCK = """
INSERT INTO blocks (chain_id, block_number, block_hash, parent_hash, block_time)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (chain_id, block_number) DO UPDATE SET block_hash = EXCLUDED.block_hash,
    parent_hash = EXCLUDED.parent_hash, block_time = EXCLUDED.block_time
"""

READ_CHECKPOINT = """
SELECT block_number, block_hash FROM checkpoints WHERE chain_id = $1 AND stream = $2
FOR UPDATE
"""

MOVE_CHECKPOINT = """
INSERT INTO checkpoints (chain_id, stream, block_number, block_hash, updated_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (chain_id, stream) DO UPDATE SET block_number = EXCLUDED.block_number,
    block_hash = EXCLUDED.block_hash, updated_at = now()
"""

UPDATE_STATUS_INDEXED = """
INSERT INTO chain_status (chain_id, name, indexed_block, updated_at) VALUES ($1, $2, $3, now())
ON CONFLICT (chain_id) DO UPDATE SET indexed_block = EXCLUDED.indexed_block, updated_at = now()
"""


def _field(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, list):
        return "{" + ",".join('"' + str(v) + '"' for v in value) + "}"
    return str(value)


def encode_copy_text(rows: Iterable[Sequence[Any]]) -> bytes:
    """COPY text format. Our fields are hex strings (checked by decode/ to be hex), numbers,
    timestamps, booleans, arrays of ids and rule names of our own: none holds a tab, newline
    or backslash, so no escaping is needed. Text COPY costs less Python time than asyncpg's
    binary codecs, and Python time is what the ingest path is short of."""
    text = "".join("\t".join(map(_field, row)) + "\n" for row in rows)
    return text.encode()


class CheckpointConflict(Exception):
    """The batch does not start right after the stored checkpoint: another writer moved it,
    or the caller skipped a range. Nothing was written."""


async def read_checkpoint(
    conn: asyncpg.Connection, chain_id: int, stream: str = MAIN_STREAM
) -> int | None:
    value = await conn.fetchval(
        "SELECT block_number FROM checkpoints WHERE chain_id = $1 AND stream = $2",
        chain_id,
        stream,
    )
    return None if value is None else int(value)


async def prepare(conn: asyncpg.Connection) -> None:
    """Create this session's staging tables (once per connection)."""
    await conn.execute(CREATE_STAGING)


async def write_batch(
    conn: asyncpg.Connection, batch: Batch, chain_name: str, stream: str = MAIN_STREAM
) -> int:
    """Write the batch and move the checkpoint to batch.last_block; returns rows inserted."""
    inserted = 0
    async with conn.transaction():
        current = await conn.fetchrow(READ_CHECKPOINT, batch.chain_id, stream)
        if current is not None and int(current["block_number"]) != batch.first_block - 1:
            raise CheckpointConflict(
                f"{chain_name}: checkpoint is at {current['block_number']}, "
                f"batch starts at {batch.first_block}"
            )
        if batch.assets:
            await conn.executemany(UPSERT_ASSET, batch.assets)
        replay = batch.events > 0 and await conn.fetchval(
            ANY_ROWS_IN_RANGE, batch.chain_id, batch.first_block, batch.last_block
        )
        for table, rows in (
            ("liquidations", batch.liquidations),
            ("svr_oracle_updates", batch.oracle_updates),
            ("svr_recaptures", batch.recaptures),
        ):
            if not rows:
                continue
            stage, columns = _STAGING[table]
            source = io.BytesIO(encode_copy_text(rows))
            if not replay:
                status = await conn.copy_to_table(table, source=source, columns=columns)
            else:
                await conn.copy_to_table(stage, source=source, columns=columns)
                status = await conn.execute(INSERT_FROM_STAGE.format(table=table, stage=stage))
            inserted += int(status.rsplit(" ", 1)[1])
        if batch.blocks:
            await conn.executemany(UPSERT_BLOCK, batch.blocks)
        await conn.execute(
            MOVE_CHECKPOINT, batch.chain_id, stream, batch.last_block, batch.last_block_hash
        )
        await conn.execute(UPDATE_STATUS_INDEXED, batch.chain_id, chain_name, batch.last_block)
    return inserted


async def start_checkpoint(
    conn: asyncpg.Connection, chain_id: int, block: int, stream: str = MAIN_STREAM
) -> None:
    """Place a chain's first checkpoint just before its start block (if it has none)."""
    await conn.execute(
        "INSERT INTO checkpoints (chain_id, stream, block_number) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        chain_id,
        stream,
        block,
    )


UPDATE_STATUS_HEADS = """
INSERT INTO chain_status (chain_id, name, head_block, finalized_block, last_error, halted,
    updated_at)
VALUES ($1, $2, $3, $4, $5, $6, now())
ON CONFLICT (chain_id) DO UPDATE SET name = EXCLUDED.name, head_block = EXCLUDED.head_block,
    finalized_block = EXCLUDED.finalized_block, last_error = EXCLUDED.last_error,
    halted = EXCLUDED.halted, updated_at = now()
"""


async def update_status(
    conn: asyncpg.Connection,
    chain_id: int,
    name: str,
    head: int | None,
    finalized: int | None,
    error: str | None = None,
    halted: bool = False,
) -> None:
    await conn.execute(UPDATE_STATUS_HEADS, chain_id, name, head, finalized, error, halted)


def now() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "ASSET_COLUMNS",
    "BLOCK_COLUMNS",
    "CheckpointConflict",
    "prepare",
    "read_checkpoint",
    "write_batch",
]
