"""The API's one asyncpg pool per process.

Every session is made read-only and gets a statement timeout, whatever role the DSN names
(the shipped role aave_indexer_reader is read-only by itself as well). The pool is opened
at startup; if the database is down then, the process still starts (so /healthz answers
and /readyz explains) and the pool is opened on first use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from api.errors import TIMEOUT, ApiError, DatabaseUnavailable
from api.queries import Sql

log = logging.getLogger("api.db")

CONNECT_TIMEOUT_S = 5.0
ACQUIRE_TIMEOUT_S = 10.0

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo when a connection goes back to the pool: the API only reads, and
    never sets, listens, locks or opens cursors (asyncpg still rolls back a transaction
    left open). asyncpg's default reset costs a round trip per request."""


class Database:
    def __init__(
        self,
        dsn: str,
        *,
        statement_timeout_ms: int = 5000,
        pool_min: int = 1,
        pool_max: int = 10,
    ) -> None:
        if statement_timeout_ms <= 0:
            raise ValueError("statement_timeout_ms must be positive")
        if not 0 <= pool_min <= pool_max or pool_max < 1:
            raise ValueError("need 0 <= pool_min <= pool_max and pool_max >= 1")
        self.dsn = dsn
        self.statement_timeout_ms = statement_timeout_ms
        self.pool_min = pool_min
        self.pool_max = pool_max
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    @property
    def server_settings(self) -> dict[str, str]:
        return {
            "default_transaction_read_only": "on",
            "statement_timeout": str(self.statement_timeout_ms),
            "idle_in_transaction_session_timeout": str(max(self.statement_timeout_ms, 10000)),
            "application_name": "aave-svr-indexer-api",
        }

    async def start(self) -> None:
        """Open the pool now; a failure is logged, not raised (retried on first use)."""
        try:
            await self.pool()
        except DatabaseUnavailable as exc:
            log.warning("database not reachable at startup (%s); will retry on use", exc)

    async def pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=self.pool_min,
                        max_size=self.pool_max,
                        timeout=CONNECT_TIMEOUT_S,
                        # client-side guard a little above the server-side timeout
                        command_timeout=self.statement_timeout_ms / 1000 + 5,
                        server_settings=self.server_settings,
                        reset=_keep_session,
                    )
                except _UNAVAILABLE as exc:
                    log.warning("cannot open the database pool: %s", exc)
                    raise DatabaseUnavailable() from exc
            return self._pool

    async def close(self) -> None:
        async with self._lock:
            if self._pool is not None:
                pool, self._pool = self._pool, None
                await pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; database trouble becomes an ApiError the caller can read."""
        pool = await self.pool()
        try:
            async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                yield conn
        except asyncpg.QueryCanceledError as exc:
            raise ApiError(
                f"the query was cancelled after {self.statement_timeout_ms} ms: narrow the "
                "filter (fewer chains, a shorter time range) or ask for fewer rows",
                TIMEOUT,
            ) from exc
        except _UNAVAILABLE as exc:
            log.warning("database error: %r", exc)
            raise DatabaseUnavailable() from exc

    async def fetch(self, sql: Sql) -> list[asyncpg.Record]:
        async with self.connection() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(sql.text, *sql.args)
            return rows

    async def fetchrow(self, sql: Sql) -> asyncpg.Record | None:
        async with self.connection() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(sql.text, *sql.args)
            return row

    async def fetchval(self, sql: Sql) -> Any:
        async with self.connection() as conn:
            return await conn.fetchval(sql.text, *sql.args)
