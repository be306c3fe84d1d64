"""Which process owns which chain: a PostgreSQL session advisory lock per chain (I5).

The lock lives as long as the connection that took it, so when the owner dies its session
ends, the lock is released, and a waiting process takes the chain over.
"""

from __future__ import annotations

import asyncio

import asyncpg

LOCK_NAMESPACE = 727_100_000


def lock_key(chain_id: int) -> int:
    return LOCK_NAMESPACE + chain_id


async def try_own(conn: asyncpg.Connection, chain_id: int) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(chain_id)))


async def own(conn: asyncpg.Connection, chain_id: int, poll: float = 2.0) -> None:
    """Wait until this connection owns the chain."""
    while not await try_own(conn, chain_id):
        await asyncio.sleep(poll)


async def release(conn: asyncpg.Connection, chain_id: int) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", lock_key(chain_id))
