"""How rows and the checkpoint reach the database: one transaction per batch.

Rows are COPYed straight into their tables; a replayed range (rows already there, after an
operator moved the checkpoint back) meets a unique violation, and the transaction is then
done again through session-local staging tables and ON CONFLICT DO NOTHING, so a replay
changes nothing (I2). The rollup triggers see only the rows actually inserted (I3); and the
checkpoint moves in the same transaction (I1), only forward from where this batch starts,
so it can never pass data that is not committed.

A transaction is three round trips: BEGIN with the checkpoint's compare-and-set (one simple
query), COPY, COMMIT. Each answer waits for the event loop, which meanwhile decodes and
enriches the ranges that follow, so the fewer round trips, the less PostgreSQL idles. COPY
data is encoded in chunks: PostgreSQL parses one while the next is encoded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from indexer.records import (
    ASSET_SOURCE_COLUMNS,
    DEFICIT_COLUMNS,
    LIQUIDATION_COLUMNS,
    ORACLE_UPDATE_COLUMNS,
    RECAPTURE_COLUMNS,
    AssetSourceRow,
    Batch,
)

MAIN_STREAM = "main"
#: How far every oracle's AssetSourceUpdated history has been read (ahead of the main
#: stream: a range is attributed with the sources known up to its end).
SOURCES_STREAM = "sources"

_STAGING = {
    "liquidations": ("stage_liquidations", LIQUIDATION_COLUMNS),
    "svr_oracle_updates": ("stage_oracle_updates", ORACLE_UPDATE_COLUMNS),
    "svr_recaptures": ("stage_recaptures", RECAPTURE_COLUMNS),
    "deficits": ("stage_deficits", DEFICIT_COLUMNS),
}

CREATE_STAGING = "\n".join(
    f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS;"
    for table, (stage, _) in _STAGING.items()
)

INSERT_FROM_STAGE = "INSERT INTO {table} SELECT * FROM {stage} ON CONFLICT DO NOTHING"

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

# The transaction's first round trip: BEGIN and a compare-and-set of the checkpoint with the
# status row, as one simple query (which takes no parameters: values are inlined by
# _literal). The checkpoint moves to `last` only from `previous` (the block before the
# batch) or from nothing; the statement returns a row only if it moved. ON CONFLICT locks
# the row even when its WHERE is false, so concurrent writers are serialised as by
# SELECT ... FOR UPDATE.
BEGIN_AND_ADVANCE = """BEGIN;
WITH moved AS (
    INSERT INTO checkpoints (chain_id, stream, block_number, block_hash, updated_at)
    VALUES ({chain_id}, {stream}, {last}, {block_hash}, now())
    ON CONFLICT (chain_id, stream) DO UPDATE SET block_number = EXCLUDED.block_number,
        block_hash = EXCLUDED.block_hash, updated_at = now()
    WHERE checkpoints.block_number = {previous}
    RETURNING 1
), status AS (
    INSERT INTO chain_status (chain_id, name, indexed_block, updated_at)
    SELECT {chain_id}, {name}, {last}, now() WHERE EXISTS (SELECT 1 FROM moved)
    ON CONFLICT (chain_id) DO UPDATE SET indexed_block = EXCLUDED.indexed_block,
        updated_at = now()
)
SELECT 1 FROM moved"""
MOVED = "SELECT 1"


def _literal(value: str | int | None) -> str:
    """A SQL literal: an int, NULL, or an E'' string (escaped the same whatever
    standard_conforming_strings says)."""
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(int(value))
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


SKIP_TO = "UPDATE checkpoints SET block_number = $3 WHERE chain_id = $1 AND stream = $2"
START_CHECKPOINT = """
INSERT INTO checkpoints (chain_id, stream, block_number) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
"""
READ_CHECKPOINT = "SELECT block_number FROM checkpoints WHERE chain_id = $1 AND stream = $2"
KNOWN_ASSETS = "SELECT address, symbol, decimals FROM assets WHERE chain_id = $1"
POOL_DEPLOYMENTS = "SELECT pool, block_number FROM pool_deployments WHERE chain_id = $1"
KEEP_POOL_DEPLOYMENT = """
INSERT INTO pool_deployments (chain_id, pool, block_number) VALUES ($1, $2, $3)
ON CONFLICT (chain_id, pool) DO UPDATE SET block_number = EXCLUDED.block_number
"""

INSERT_ASSET_SOURCE = (
    f"INSERT INTO asset_sources ({', '.join(ASSET_SOURCE_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(ASSET_SOURCE_COLUMNS) + 1))}) "
    "ON CONFLICT DO NOTHING"
)
ASSET_SOURCES = f"""
SELECT {", ".join(ASSET_SOURCE_COLUMNS)} FROM asset_sources
WHERE chain_id = $1 ORDER BY block_number, log_index
"""
ADVANCE_SOURCES = """
INSERT INTO checkpoints (chain_id, stream, block_number, updated_at) VALUES ($1, $2, $4, now())
ON CONFLICT (chain_id, stream) DO UPDATE SET block_number = EXCLUDED.block_number,
    updated_at = now()
WHERE checkpoints.block_number = $3
RETURNING 1
"""

COPY_CHUNK_ROWS = 2000  # rows encoded per COPY data message
_NULL = "\\N"
_BOOL = {True: "t", False: "f"}


class _Texts(dict[Any, str]):
    """str() of values met many times in a batch (a block's timestamp, once per row of the
    block), computed once: datetime's str() costs as much as all other fields together."""

    def __missing__(self, value: Any) -> str:
        text = self[value] = str(value)
        return text


def _field(value: Any) -> str:
    if value is None:
        return _NULL
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, list):
        return "{" + ",".join('"' + str(v) + '"' for v in value) + "}"
    return str(value)


def _line(row: Sequence[Any], texts: _Texts) -> str:
    """One row. The common types are converted inline, most frequent first: a function
    call per field would cost more than most conversions."""
    return "\t".join(
        [
            v
            if v.__class__ is str
            else (
                _NULL
                if v is None
                else (
                    str(v)
                    if v.__class__ is int
                    else (
                        texts[v]
                        if v.__class__ is datetime
                        else (_BOOL[v] if v.__class__ is bool else _field(v))
                    )
                )
            )
            for v in row
        ]
    )


def encode_copy_text(rows: Iterable[Sequence[Any]]) -> bytes:
    """COPY text format. Our fields are hex strings (checked by decode/ to be hex), numbers,
    timestamps, booleans, arrays of ids and rule names of our own: none holds a tab, newline
    or backslash, so no escaping is needed. Text COPY costs less Python time than asyncpg's
    binary codecs (about 3 against 13 us for a liquidation row), and Python time is what the
    ingest path is short of."""
    texts = _Texts()
    lines = [_line(row, texts) for row in rows]
    lines.append("")
    return "\n".join(lines).encode()


async def _copy_chunks(rows: Sequence[Sequence[Any]]) -> AsyncIterator[bytes]:
    """COPY data for asyncpg, a chunk at a time: PostgreSQL parses one chunk while the next
    is encoded (and asyncpg's flow control lets the event loop turn between them)."""
    for start in range(0, len(rows), COPY_CHUNK_ROWS):
        yield encode_copy_text(rows[start : start + COPY_CHUNK_ROWS])


class CheckpointConflict(Exception):
    """The batch does not start right after the stored checkpoint: another writer moved it,
    or the caller skipped a range. Nothing was written."""


async def read_checkpoint(
    conn: asyncpg.Connection, chain_id: int, stream: str = MAIN_STREAM
) -> int | None:
    value = await conn.fetchval(READ_CHECKPOINT, chain_id, stream)
    return None if value is None else int(value)


async def prepare(conn: asyncpg.Connection) -> None:
    """Create this session's staging tables (once per connection)."""
    await conn.execute(CREATE_STAGING)


async def write_batch(
    conn: asyncpg.Connection, batch: Batch, chain_name: str, stream: str = MAIN_STREAM
) -> int:
    """Write the batch and move the checkpoint to batch.last_block; returns rows inserted."""
    try:
        return await _write(conn, batch, chain_name, stream, replay=False)
    except asyncpg.UniqueViolationError:
        # Some rows are already stored: a replay. Nothing of the first attempt remains.
        return await _write(conn, batch, chain_name, stream, replay=True)


async def _write(
    conn: asyncpg.Connection, batch: Batch, chain_name: str, stream: str, *, replay: bool
) -> int:
    if conn.is_in_transaction():
        raise asyncpg.InterfaceError("write_batch runs its own transaction; one is open")
    begin = BEGIN_AND_ADVANCE.format(
        chain_id=_literal(batch.chain_id),
        stream=_literal(stream),
        previous=_literal(batch.first_block - 1),
        last=_literal(batch.last_block),
        block_hash=_literal(batch.last_block_hash),
        name=_literal(chain_name),
    )
    try:
        if await conn.execute(begin) != MOVED:
            current = await read_checkpoint(conn, batch.chain_id, stream)
            raise CheckpointConflict(
                f"{chain_name}: checkpoint is at {current}, batch starts at {batch.first_block}"
            )
        inserted = await _write_rows(conn, batch, replay=replay)
        await conn.execute("COMMIT")
    except BaseException:
        if not conn.is_closed() and conn.is_in_transaction():
            await conn.execute("ROLLBACK")
        raise
    return inserted


async def _write_rows(conn: asyncpg.Connection, batch: Batch, *, replay: bool) -> int:
    inserted = 0
    if batch.assets:
        await conn.executemany(UPSERT_ASSET, batch.assets)
    for table, rows in (
        ("liquidations", batch.liquidations),
        ("svr_oracle_updates", batch.oracle_updates),
        ("svr_recaptures", batch.recaptures),
        ("deficits", batch.deficits),
    ):
        if not rows:
            continue
        stage, columns = _STAGING[table]
        if not replay:
            status = await conn.copy_to_table(table, source=_copy_chunks(rows), columns=columns)
        else:
            await conn.copy_to_table(stage, source=_copy_chunks(rows), columns=columns)
            status = await conn.execute(INSERT_FROM_STAGE.format(table=table, stage=stage))
        inserted += int(status.rsplit(" ", 1)[1])
    if batch.blocks:
        await conn.executemany(UPSERT_BLOCK, batch.blocks)
    if batch.asset_sources:
        await conn.executemany(INSERT_ASSET_SOURCE, batch.asset_sources)
    return inserted


async def keep_sources(
    conn: asyncpg.Connection,
    chain_id: int,
    rows: Sequence[AssetSourceRow],
    previous: int,
    last: int,
    chain_name: str,
) -> None:
    """The asset sources found in (previous, last] and the sources checkpoint moved to
    `last`, in one transaction (compare-and-set, as the main stream's)."""
    async with conn.transaction():
        moved = await conn.fetchval(ADVANCE_SOURCES, chain_id, SOURCES_STREAM, previous, last)
        if moved is None:
            current = await read_checkpoint(conn, chain_id, SOURCES_STREAM)
            raise CheckpointConflict(
                f"{chain_name}: sources checkpoint is at {current}, expected {previous}"
            )
        if rows:
            await conn.executemany(INSERT_ASSET_SOURCE, rows)


async def asset_sources(conn: asyncpg.Connection, chain_id: int) -> list[AssetSourceRow]:
    """Every asset source kept for the chain, in chain order."""
    return [AssetSourceRow(*r) for r in await conn.fetch(ASSET_SOURCES, chain_id)]


async def skip_to(
    conn: asyncpg.Connection, chain_id: int, block: int, stream: str = MAIN_STREAM
) -> None:
    """Move the checkpoint ahead to `block` (an operator's --from past it)."""
    await conn.execute(SKIP_TO, chain_id, stream, block)


async def start_checkpoint(
    conn: asyncpg.Connection, chain_id: int, block: int, stream: str = MAIN_STREAM
) -> None:
    """Place a chain's first checkpoint just before its start block (if it has none)."""
    await conn.execute(START_CHECKPOINT, chain_id, stream, block)


async def known_assets(conn: asyncpg.Connection, chain_id: int) -> list[asyncpg.Record]:
    """The tokens already stored for a chain (address, symbol, decimals)."""
    return list(await conn.fetch(KNOWN_ASSETS, chain_id))


async def pool_deployments(conn: asyncpg.Connection, chain_id: int) -> dict[str, int]:
    """Deployment blocks found on-chain earlier, by pool address."""
    rows = await conn.fetch(POOL_DEPLOYMENTS, chain_id)
    return {r["pool"]: int(r["block_number"]) for r in rows}


async def keep_pool_deployment(
    conn: asyncpg.Connection, chain_id: int, pool: str, block: int
) -> None:
    await conn.execute(KEEP_POOL_DEPLOYMENT, chain_id, pool, block)
