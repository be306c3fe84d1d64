"""Every PostgreSQL advisory lock the project takes, in one registry.

Keys are two-part, `(space, id)`: PostgreSQL keeps two-part advisory keys apart from
one-part (bigint) keys, and each concern has its own `space`, so no two concerns can
collide (a chain id can never be mistaken for the migration lock, whatever its value).

- `chain`: which process owns which chain (I5). A session lock: it lives as long as the
  connection that took it, so when the owner dies its session ends, the lock is released,
  and a waiting process takes the chain over.
- `migration`: one schema migration at a time. A transaction lock, released at COMMIT.
- `bulk`: one change of the bulk load's state at a time (store/bulk.py: joining, leaving,
  dropping and rebuilding indexes). A transaction lock; migrate takes it right after the
  migration lock, before any table's, as bulk.py's steps do before theirs.
"""

from __future__ import annotations

import asyncio
from enum import IntEnum

import asyncpg

INT4_MAX = 2**31 - 1  # each half of a two-part key is a PostgreSQL int4


class LockSpace(IntEnum):
    """The first half of every key: one value per concern, never reused."""

    CHAIN = 0x41_41_56_01  # "AAV" + 1
    MIGRATION = 0x41_41_56_02  # "AAV" + 2
    BULK = 0x41_41_56_03  # "AAV" + 3


def chain_key(chain_id: int) -> tuple[int, int]:
    if not 0 < chain_id <= INT4_MAX:
        raise ValueError(f"chain id {chain_id} does not fit an advisory lock key (1..{INT4_MAX})")
    return (LockSpace.CHAIN, chain_id)


MIGRATION_KEY = (LockSpace.MIGRATION, 0)
BULK_KEY = (LockSpace.BULK, 0)


async def try_own(conn: asyncpg.Connection, chain_id: int) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *chain_key(chain_id)))


async def own(conn: asyncpg.Connection, chain_id: int, poll: float = 2.0) -> None:
    """Wait until this connection owns the chain."""
    while not await try_own(conn, chain_id):
        await asyncio.sleep(poll)


async def hold_migration_lock(conn: asyncpg.Connection) -> None:
    """Inside a transaction: wait for any other migration, hold the lock until COMMIT."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *MIGRATION_KEY)


async def hold_bulk_lock(conn: asyncpg.Connection) -> None:
    """Inside a transaction: wait for any other change of the bulk load, hold until COMMIT."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *BULK_KEY)
