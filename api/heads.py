"""The version of what the API reads, for ETags and the response cache (api.http_cache).

Every write of the indexer moves a checkpoint (rows and checkpoint in one transaction, a
rollback included), so the checkpoints with the chains' status rows name the database's
state: two databases (or one at two moments) with the same heads answer every query
alike. The version is read with one small query (`queries.HEADS`, one row per chain) and
kept for `ttl_s`: a request is answered from heads at most `ttl_s` (plus that query's
time) old. Concurrent requests share one refresh.

Two versions: `data` (checkpoints, indexed and finalized blocks, halts) covers every
query; `status` adds what only `indexerStatus` shows (head block, last error, updated_at),
which moves on every poll of a chain's head, so queries that do not read it are not
invalidated by it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime

from api import queries
from api.db import Database


@dataclass(frozen=True)
class Settled:
    """What of a chain can no longer change: blocks at or below `block` (finalized and
    indexed), and the times before `time` (None: no block time known yet)."""

    block: int | None
    time: datetime | None


@dataclass(frozen=True)
class Heads:
    data: str
    status: str
    settled: dict[int, Settled] = field(default_factory=dict)

    def version(self, reads_status: bool) -> str:
        return self.status if reads_status else self.data


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


class HeadsClock:
    """The current Heads, read at most every `ttl_s` seconds (0: on every request)."""

    def __init__(self, db: Database, ttl_s: float = 0.2) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._heads: Heads | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        self.reads = 0  # how many times the database was asked (tests, metrics)

    async def current(self) -> Heads:
        """Raises ApiError (DatabaseUnavailable, TIMEOUT) when the database cannot say."""
        if self._heads is not None and time.monotonic() - self._read_at < self.ttl_s:
            return self._heads
        async with self._lock:
            if self._heads is not None and time.monotonic() - self._read_at < self.ttl_s:
                return self._heads
            started = time.monotonic()
            rows = await self.db.fetch(queries.heads())
            self.reads += 1
            data = []
            status = []
            settled = {}
            for r in rows:
                data.append(
                    f"{r['chain_id']}|{r['indexed_block']}|{r['finalized_block']}|"
                    f"{r['halted']}|{r['checkpoints']}"
                )
                status.append(f"{r['head_block']}|{r['last_error']}|{r['updated_at']}")
                settled[int(r["chain_id"])] = Settled(r["settled_block"], r["settled_time"])
            heads = Heads(_digest(data), _digest(data + status), settled)
            self._heads, self._read_at = heads, started
            return heads
