"""Bulk loading: a long backfill writes `liquidations` without its secondary indexes, which
are built once, by sorting, when it ends.

Each row COPYed into `liquidations` costs PostgreSQL an insertion into every index; the
six secondary ones (the API's orders and filters) are most of its cost per row, and more as
they outgrow shared_buffers. A chain far behind (`bulk_load_min_events`) drops them, keeping
the primary key (replays and the rollups' correctness rest on it), and rebuilds them when
its backfill ends. Meanwhile the API answers the same, only slower (its queries scan
instead of using those indexes); the rollup triggers stay on, so statistics stay exact.

The indexes belong to the table, not to a chain: `bulk_load` has a row per chain loading
in bulk, and only the last one to leave rebuilds them. The drop and the definitions it
saved (`bulk_load_indexes`, in the same transaction) survive a crash: a row whose chain
nobody owns any more (no session holds its chain lock) is stale, and whoever next leaves,
or migrates, forgets it and rebuilds what is missing. Every step runs in one transaction
under the bulk lock (store/locks.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from indexer.store.locks import LockSpace, hold_bulk_lock

log = logging.getLogger("aave_indexer.bulk")

#: the tables loaded without their secondary indexes (the only large one)
TABLE = "liquidations"

JOIN = "INSERT INTO bulk_load (chain_id) VALUES ($1) ON CONFLICT DO NOTHING"
QUIT = "DELETE FROM bulk_load WHERE chain_id = $1"
# A row is live while some session of this database holds its chain's lock (I5).
_STALE = """NOT EXISTS (
    SELECT 1 FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = $1::int8::oid AND l.objid = b.chain_id::int8::oid)"""
FORGET_STALE = f"DELETE FROM bulk_load b WHERE {_STALE} RETURNING chain_id"
STALE = f"SELECT chain_id FROM bulk_load b WHERE {_STALE} ORDER BY chain_id"
LOADING = "SELECT chain_id FROM bulk_load ORDER BY chain_id"
# The table's indexes other than its primary key and unique ones (constraints stay).
SECONDARY = """
SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = $1::regclass AND NOT i.indisprimary AND NOT i.indisunique
ORDER BY c.relname
"""
SAVE = "INSERT INTO bulk_load_indexes (name, definition) VALUES ($1, $2) ON CONFLICT DO NOTHING"
SAVED = "SELECT name, definition FROM bulk_load_indexes ORDER BY name"
FORGET_SAVED = "DELETE FROM bulk_load_indexes"
EXISTS = "SELECT to_regclass($1) IS NOT NULL"
DROP = 'DROP INDEX IF EXISTS "{name}"'
# Waiting for the API's readers and other chains' writes to let go of the table, not longer.
ENTER_SETTINGS = "SET LOCAL lock_timeout = '10s'"
# Index builds sort in memory, in parallel where PostgreSQL allows it.
BUILD_SETTINGS = "SET LOCAL maintenance_work_mem = '512MB'"
TABLE_ROWS = "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = $1::regclass"


@dataclass(frozen=True)
class BulkState:
    """What `aave-indexer verify` reports: chains loading (live: their owner runs), stale
    rows (a crash), and indexes dropped and not yet rebuilt."""

    live: tuple[int, ...]
    stale: tuple[int, ...]
    pending: tuple[str, ...]

    @property
    def interrupted(self) -> bool:
        """Indexes missing with nobody loading: the next leave or migrate rebuilds them."""
        return bool(self.pending) and not self.live


async def table_rows(conn: asyncpg.Connection) -> int:
    """The planner's estimate of the table's rows (no scan)."""
    return int(await conn.fetchval(TABLE_ROWS, TABLE) or 0)


async def enter(conn: asyncpg.Connection, chain_id: int) -> bool:
    """Join the bulk load for this chain, dropping the secondary indexes (saved first) if
    another chain has not already; False if the table could not be had in time (the
    backfill then goes on with the indexes)."""
    try:
        async with conn.transaction():
            await hold_bulk_lock(conn)
            await conn.execute(ENTER_SETTINGS)
            await conn.execute(JOIN, chain_id)
            for name, definition in await conn.fetch(SECONDARY, TABLE):
                await conn.execute(SAVE, name, definition)
                await conn.execute(DROP.format(name=name.replace('"', '""')))
    except asyncpg.LockNotAvailableError:
        log.warning("chain %d: %s is busy; backfilling with its indexes", chain_id, TABLE)
        return False
    return True


async def leave(conn: asyncpg.Connection, chain_id: int | None = None) -> bool:
    """This chain's bulk load is over (None: nobody's, a repair): forget it and any stale
    row; if no chain is left loading, rebuild the saved indexes. True if they were."""
    async with conn.transaction():
        await hold_bulk_lock(conn)
        if chain_id is not None:
            await conn.execute(QUIT, chain_id)
        return await _finish(conn)


async def _finish(conn: asyncpg.Connection) -> bool:
    """Under the bulk lock, in a transaction: forget stale rows, rebuild if nobody loads."""
    for (chain_id,) in await conn.fetch(FORGET_STALE, LockSpace.CHAIN):
        log.warning("chain %d: its bulk load was interrupted; forgotten", chain_id)
    if await conn.fetch(LOADING):
        return False
    saved = await conn.fetch(SAVED)
    if not saved:
        return False
    await conn.execute(BUILD_SETTINGS)
    for name, definition in saved:
        if not await conn.fetchval(EXISTS, name):
            await conn.execute(definition)
    await conn.execute(FORGET_SAVED)
    log.info("%s: %d secondary indexes rebuilt after a bulk load", TABLE, len(saved))
    return True


async def repair(conn: asyncpg.Connection) -> bool:
    """For migrate, inside its transaction (which holds the bulk lock, taken before any
    table lock): rebuild what an interrupted bulk load left missing."""
    if await conn.fetchval("SELECT to_regclass('bulk_load')") is None:
        return False
    return await _finish(conn)


async def state(conn: asyncpg.Connection) -> BulkState:
    """The bulk load's state, read without changing it."""
    rows = [int(r[0]) for r in await conn.fetch(LOADING)]
    stale = {int(r[0]) for r in await conn.fetch(STALE, LockSpace.CHAIN)}
    pending = tuple(r[0] for r in await conn.fetch(SAVED))
    live = tuple(c for c in rows if c not in stale)
    return BulkState(live, tuple(sorted(stale)), pending)
