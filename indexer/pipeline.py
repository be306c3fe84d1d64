"""How one chain is driven from backfill to tail.

Backfill: ranges from the checkpoint to the finalized block, several in flight. The planner
fetches each range's logs (one eth_getLogs filter for every stream) and ends the range where
it reached about `RangeSizer.target_logs` logs, so no range holds more than that whatever
the history's density; each range is then decoded and enriched concurrently, and the
results are written strictly in order, small ranges merged into one transaction.
Tail: above the finalized block, headers are fetched and kept; indexer/reorg.py decides
from them whether to advance, wait, read again, roll back to the common ancestor (through
store/rollback.py) or halt, and this module carries the decision out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from indexer import metrics, reorg
from indexer.config import ChainConfig
from indexer.decode.events import DecodedLogs, Log, decode_logs
from indexer.decode.topics import (
    ASSET_SOURCE_UPDATED,
    DEFICIT_COVERED,
    DEFICIT_CREATED,
    LIQUIDATION_CALL,
    ORACLE_TOPICS,
    SOLVER_TX_RESULT,
)
from indexer.enrich.enricher import Enricher, oracle_markets
from indexer.enrich.sources import SourceBook, rows_for
from indexer.enrich.tokens import Token, TokenRegistry
from indexer.fetch.deployment import NoCode, NoHistory, deployment_block
from indexer.fetch.headers import Header, fetch_headers
from indexer.fetch.heads import Heads, HeadTracker
from indexer.fetch.ranges import LogFilter, RangeSizer, fetch_range, fetch_some
from indexer.records import Batch, BlockRow
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import TransientError
from indexer.store import bulk, rollback, status, writer
from indexer.store.locks import own

log = logging.getLogger("aave_indexer.pipeline")

OPEN_ATTEMPTS = 4
RangeResult = TypeVar("RangeResult")

MERGE_EVENTS = 4_000  # write at most about this many events per transaction (memory)
RANGE_ATTEMPTS = 5  # a range whose answers a node got wrong is fetched again this often
DB_ATTEMPTS = 12  # a lost database connection is re-opened this often (about a minute)
BACKOFF = wait_exponential(multiplier=0.5, min=0.5, max=10)  # 0.5, 1, 2, ... 10 s
# What a lost or broken database session looks like. A session the server ended
# (pg_terminate_backend, a failover) may only show it when next used, and then sometimes as
# asyncpg's InternalClientError (its protocol state out of step).
DB_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InternalClientError,
    ConnectionError,
    OSError,
)


class ChainHalted(Exception):
    """A reorg deeper than finality, or a chain marked halted: an operator must look."""


class WrongChain(Exception):
    """The RPC endpoint serves another chain than the config says."""


class PoolUnusable(Exception):
    """No configured pool of the chain can be indexed (no code there, or no history)."""


class FilterGrew(TransientError):
    """A range set a source backed by an SVR aggregator not read so far: the range is read
    again with that aggregator's events."""


@dataclass
class Progress:
    chain: str
    start_block: int
    target_block: int
    done_block: int
    events: int = 0
    started: float = field(default_factory=time.monotonic)
    phase: str = "backfill"

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.events / elapsed if elapsed > 0 else 0.0


ProgressCallback = Callable[[Progress], None]


def build_filter(chain: ChainConfig, aggregators: frozenset[str] = frozenset()) -> LogFilter:
    """One filter for every stream: the pools' liquidations and deficits; where SVR is modelled, the
    oracles' source switches, the SVR aggregators' updates (configured or found behind a
    source) and the Atlas settlement's solver results."""
    addresses = [pool.address for pool in chain.pools]
    topics = [LIQUIDATION_CALL, DEFICIT_CREATED, DEFICIT_COVERED]
    svr = chain.svr.model != "none"
    if svr:
        addresses += [pool.oracle for pool in chain.pools]
        topics.append(ASSET_SOURCE_UPDATED)
        aggregators = aggregators | {agg.address for agg in chain.svr.aggregators}
        addresses += sorted(aggregators)
        if aggregators:
            topics += list(ORACLE_TOPICS)
    if chain.svr.model == "atlas" and chain.svr.atlas:
        addresses.append(chain.svr.atlas)
        topics.append(SOLVER_TX_RESULT)
    return LogFilter(addresses=sorted(set(addresses)), topics=[topics])


class ChainIndexer:
    """Owns one chain: its RPC client, its database connection (which holds the chain's
    advisory lock) and its checkpoint."""

    def __init__(
        self,
        chain: ChainConfig,
        dsn: str,
        *,
        client: RpcClient | None = None,
        on_progress: ProgressCallback | None = None,
        poll_interval: float | None = None,
    ) -> None:
        self.chain = chain
        self.dsn = dsn
        limits = chain.endpoint_limits()
        self.client = client or RpcClient(
            [url for url, _ in limits],
            chain=chain.name,
            requests_per_second=chain.requests_per_second,
            rates=[rate for _, rate in limits],
        )
        self.on_progress = on_progress
        self.poll_interval = (
            poll_interval
            or chain.poll_interval_seconds
            or min(2.0, max(0.05, chain.block_time_seconds / 4))
        )
        self.book = SourceBook(chain.svr.aggregators)
        self._use_pools(chain)
        self.atlas = chain.svr.atlas if chain.svr.model == "atlas" else None
        self.first_block = chain.first_block  # None until the pools' deployments are known
        known = [p.start_block for p in chain.pools if p.start_block is not None]
        # No head can be below the pools' first block (a lower one is a broken endpoint).
        self.heads = HeadTracker(self.client, chain, deployed=min(known, default=0))
        self.sizer = RangeSizer(chain.max_block_range)
        self.conn: asyncpg.Connection | None = None
        self._db_lock = asyncio.Lock()
        self.tokens: TokenRegistry | None = None
        self.enricher: Enricher | None = None
        self.events_written = 0

    def _use_pools(self, chain: ChainConfig) -> None:
        """Index these pools (the configured ones less any found unusable)."""
        self.chain = chain
        self.pools = frozenset(p.address for p in chain.pools)
        self.oracles = frozenset(p.oracle for p in chain.pools)
        self._read_aggregators()

    def _read_aggregators(self) -> None:
        """Filter and decode for every SVR aggregator the book knows."""
        self.aggregators = self.book.aggregators()
        self.log_filter = build_filter(self.chain, self.aggregators)

    # -- lifecycle --------------------------------------------------------------------

    async def open(self, *, clear_halt: bool = False) -> None:
        """Check the endpoint's chain id, connect, take the chain's lock, load state."""
        # Few attempts: an endpoint that is down or mistyped at start-up is reported in
        # seconds; once running, the client's full retries ride out outages.
        chain_id = int(await self.client.call("eth_chainId", attempts=OPEN_ATTEMPTS), 16)
        if chain_id != self.chain.chain_id:
            raise WrongChain(
                f"{self.chain.name}: the RPC endpoint serves chain {chain_id}, "
                f"the config says {self.chain.chain_id}"
            )
        await self._connect()
        assert self.conn is not None
        halt = await status.read_halt(self.conn, chain_id)
        if halt is not None:
            if not clear_halt:
                raise ChainHalted(
                    f"{self.chain.name} is halted ({halt.reason}); fix the cause, "
                    "then run again with --clear-halt"
                )
            await status.clear_halt(self.conn, chain_id)
        await self._check_markets()
        if self.first_block is None:
            self.first_block = await self._find_first_block()
            self.heads.deployed = self.first_block  # the lowest of all the pools'
        await writer.start_checkpoint(self.conn, chain_id, self.first_block - 1)
        await self._load_sources()

    async def _check_markets(self) -> None:
        """Drop, with one line each, the markets whose pool has no code on this chain (an
        address-book entry of another network, a typo); warn of an oracle without code
        (its market is indexed without USD prices or SVR feeds). Raises PoolUnusable when
        no pool is left."""
        chain = self.chain
        addresses = sorted({a for p in chain.pools for a in (p.address, p.oracle)})
        answers = await self.client.batch(
            [("eth_getCode", [address, "latest"]) for address in addresses]
        )
        empty = {a for a, code in zip(addresses, answers, strict=True) if code in ("0x", "0x0")}
        kept = []
        for pool in chain.pools:
            if pool.address in empty:
                message = f"{chain.name} {pool.market}: no contract at pool {pool.address}"
                log.error("%s; the chain's other markets are indexed", message)
                continue
            if pool.oracle in empty:
                message = (
                    f"{chain.name} {pool.market}: no contract at oracle {pool.oracle}; "
                    "its liquidations get no USD prices and no SVR feed"
                )
                log.error("%s", message)
            kept.append(pool)
        if not kept:
            raise PoolUnusable(f"{chain.name}: no configured pool has code on this chain")
        if len(kept) < len(chain.pools):
            self._use_pools(chain.model_copy(update={"pools": kept}))
            self.first_block = self.chain.first_block
            assert self.conn is not None
            self._new_enricher()

    async def _load_sources(self) -> None:
        """The asset sources kept in the database: the book attribution reads."""
        rows = await self._db(lambda c: writer.asset_sources(c, self.chain.chain_id))
        book = SourceBook(self.chain.svr.aggregators)
        book.add(rows)  # type: ignore[arg-type]
        self.book = book
        if self.enricher is not None:
            self.enricher.book = book
        self._read_aggregators()

    async def _sources_start(self) -> int:
        """Where the oracles' source history begins: the first oracle's deployment block.
        An oracle is often created before its pool, and a source set before the chain's
        start_block is still in force after it. Found once (like a pool's) and kept."""
        assert self.first_block is not None
        starts = [self.first_block]
        found = await self._deployments({oracle: "oracle" for oracle in self.oracles})
        for oracle, block in sorted(found.items()):
            if isinstance(block, Exception):
                log.error(
                    "%s: oracle %s: %s; its sources are read from block %d",
                    self.chain.name,
                    oracle,
                    block,
                    self.first_block,
                )
            else:
                starts.append(block)
        return min(starts)

    async def _deployments(self, labels: dict[str, str]) -> dict[str, int | Exception]:
        """The deployment block of each contract (address -> what it is, for the log): kept
        in the database, else found on-chain (fetch/deployment.py) and kept; NoCode or
        NoHistory where it cannot be found."""
        chain_id = self.chain.chain_id
        kept = await self._db(lambda c: writer.pool_deployments(c, chain_id))
        assert isinstance(kept, dict)
        head: int | None = None
        out: dict[str, int | Exception] = {}
        for address in sorted(labels):
            block = kept.get(address)
            if block is None:
                if head is None:
                    head = int(await self.client.call("eth_blockNumber"), 16)
                try:
                    block = await deployment_block(self.client, address, head)
                except (NoCode, NoHistory) as exc:
                    out[address] = exc
                    continue
                log.info("%s: %s deployed in block %d", self.chain.name, labels[address], block)
                await self._db(
                    lambda c, a=address, b=block: writer.keep_pool_deployment(c, chain_id, a, b)  # type: ignore[misc]
                )
            out[address] = int(block)
        return out

    async def discover_sources(self, to_block: int) -> int:
        """Read every market oracle's AssetSourceUpdated history up to `to_block` (from
        where it was last read), resolve each source and keep the result, so that every
        range up to there is read with the SVR aggregators it needs. Returns the number of
        source updates found."""
        chain = self.chain
        if chain.svr.model == "none":
            return 0
        assert self.first_block is not None
        done = await self._db(
            lambda c: writer.read_checkpoint(c, chain.chain_id, writer.SOURCES_STREAM)
        )
        if done is None:
            start = await self._sources_start()
        else:
            start = int(done) + 1  # type: ignore[call-overload]
        if start > to_block:
            return 0
        log_filter = LogFilter(sorted(self.oracles), [[ASSET_SOURCE_UPDATED]])
        # The history is walked in max_in_flight stretches at once (a walk is one span
        # after another: its round trips, not the rate limit, would set its time).
        stretches = _stretches(start, to_block, chain.max_in_flight, chain.max_block_range)

        async def walk(lo: int, hi: int) -> list[Log]:
            sizer = RangeSizer(chain.max_block_range)
            return await self._range_again(
                lo, hi, lambda: fetch_range(self.client, log_filter, lo, hi, sizer)
            )

        parts = await asyncio.gather(*(walk(lo, hi) for lo, hi in stretches))
        logs = [entry for part in parts for entry in part]
        updates = decode_logs(logs, frozenset(), frozenset(), None, self.oracles).source_updates
        rows = await rows_for(
            self.client, chain.name, chain.chain_id, oracle_markets(chain), updates, self.book
        )
        await self._db(
            lambda c: writer.keep_sources(c, chain.chain_id, rows, start - 1, to_block, chain.name)
        )
        self.book.add(rows)
        self._read_aggregators()
        svr = sum(1 for r in rows if r.is_svr)
        if rows:
            log.info(
                "%s: %d asset source updates in blocks %d-%d, %d of them SVR feeds",
                chain.name,
                len(rows),
                start,
                to_block,
                svr,
            )
        return len(updates)

    async def _find_first_block(self) -> int:
        """The lowest deployment block of the pools without a configured start: found
        on-chain once (fetch/deployment.py) and kept in the database."""
        undated = {p.address: f"{p.market} pool" for p in self.chain.pools if p.start_block is None}
        found = await self._deployments(undated)
        starts = []
        for pool in self.chain.pools:
            block = pool.start_block if pool.start_block is not None else found[pool.address]
            if isinstance(block, Exception):
                raise PoolUnusable(f"{self.chain.name} {pool.market}: {block}")
            starts.append(block)
        return min(starts)

    async def _connect(self) -> None:
        """A new session that owns the chain; published in self.conn only when ready, and
        never left open when it fails (an open session would keep holding the lock)."""
        conn = await asyncpg.connect(self.dsn)
        try:
            await own(conn, self.chain.chain_id)
            await writer.prepare(conn)
            rows = await writer.known_assets(conn, self.chain.chain_id)
        except BaseException:
            conn.terminate()
            raise
        known = {r["address"]: Token(r["address"], r["symbol"], r["decimals"]) for r in rows}
        self.tokens = TokenRegistry(self.client, known)
        self._new_enricher()
        self.conn = conn

    def _new_enricher(self) -> None:
        assert self.tokens is not None
        self.enricher = Enricher(self.chain, self.client, self.tokens, self.book)

    async def close(self) -> None:
        if self.conn is not None:
            try:  # a connection the server dropped may never answer a polite goodbye
                await asyncio.wait_for(self.conn.close(), timeout=5)
            except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                self.conn.terminate()
            self.conn = None
        await self.client.close()

    async def _db(self, action: Callable[[asyncpg.Connection], Awaitable[object]]) -> object:
        """Run a database step; on a lost connection reconnect (re-taking the lock) and
        retry, since every step is one transaction that either happened or did not.
        Steps are serialised: one session serves one statement at a time, and two steps
        reconnecting at once would open two sessions, one of them holding the chain's lock
        for ever while the other waits for it."""
        async with self._db_lock:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(DB_ATTEMPTS),
                wait=BACKOFF,
                retry=retry_if_exception_type(DB_LOST),
                before_sleep=self._reconnecting,
                reraise=True,
            ):
                with attempt:
                    try:
                        if self.conn is None or self.conn.is_closed():
                            await self._connect()
                        assert self.conn is not None
                        return await action(self.conn)
                    except DB_LOST:
                        if self.conn is not None:  # never reused: it may still hold the lock
                            self.conn.terminate()
                            self.conn = None
                        raise
        raise AssertionError("unreachable")

    def _reconnecting(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s: database connection lost (%s); reconnecting", self.chain.name, error)

    async def checkpoint(self) -> int:
        value = await self._db(lambda c: writer.read_checkpoint(c, self.chain.chain_id))
        if value is None:
            assert self.first_block is not None, "checkpoint() before open()"
            return self.first_block - 1
        return int(value)  # type: ignore[call-overload]

    # -- one range --------------------------------------------------------------------

    def decode(self, logs: list[Log]) -> DecodedLogs:
        return decode_logs(logs, self.pools, self.aggregators, self.atlas, self.oracles)

    async def process_range(
        self, start: int, end: int, headers: dict[int, Header] | None = None
    ) -> Batch:
        """Fetch, decode and enrich one range. The RPC client retries what fails in
        transport; a range whose answers did not fit together (a node that disagreed with
        another, lost a block, ...) is done again from the start, a few times."""

        async def step() -> Batch:
            logs = await fetch_range(self.client, self.log_filter, start, end, self.sizer)
            assert self.enricher is not None
            batch = await self.enricher.enrich(self.decode(logs), start, end, headers)
            self._check_filter(batch)
            return batch

        return await self._range_again(start, end, step)

    async def fetch_logs(self, start: int, end: int) -> tuple[list[Log], int]:
        """The logs of [start, last] and `last` (<= end; earlier when the range reached
        the sizer's log target), retried like a range."""
        return await self._range_again(
            start,
            end,
            lambda: fetch_some(
                self.client, self.log_filter, start, end, self.sizer, self.sizer.target_logs
            ),
        )

    async def _range_again(
        self, start: int, end: int, step: Callable[[], Awaitable[RangeResult]]
    ) -> RangeResult:
        """Run `step` for [start, end], again from the start (with backoff) when it fails
        with a TransientError, up to RANGE_ATTEMPTS times."""

        def again(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("%s: range %d-%d again: %s", self.chain.name, start, end, error)

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(RANGE_ATTEMPTS),
            wait=BACKOFF,
            retry=retry_if_exception_type(TransientError),
            before_sleep=again,
            reraise=True,
        ):
            with attempt:
                return await step()
        raise AssertionError("unreachable")

    async def enrich_fetched(self, start: int, end: int, logs: list[Log]) -> Batch:
        """Decode and enrich logs already fetched for [start, end]; if their answers do not
        fit together, the range is done again from the start (process_range)."""
        decoded = self.decode(logs)
        del logs  # the raw answers are not needed while the enrichment waits on the node
        try:
            assert self.enricher is not None
            batch = await self.enricher.enrich(decoded, start, end)
            self._check_filter(batch)
            return batch
        except TransientError as exc:
            log.warning("%s: range %d-%d again: %s", self.chain.name, start, end, exc)
        return await self.process_range(start, end)

    def _check_filter(self, batch: Batch) -> None:
        """A range whose new sources bring an SVR aggregator the filter lacks was read
        without that aggregator's updates: widen the filter and read it again."""
        if not batch.asset_sources:
            return
        grown = self.book.extended(batch.asset_sources).aggregators()
        if grown <= self.aggregators:
            return
        self.aggregators = grown
        self.log_filter = build_filter(self.chain, grown)
        raise FilterGrew(
            f"{self.chain.name}: SVR feed(s) {', '.join(sorted(grown - self.book.aggregators()))}"
            f" became sources in blocks {batch.first_block}-{batch.last_block}"
        )

    async def write(self, batch: Batch) -> int:
        tries = 0

        async def action(conn: asyncpg.Connection) -> int:
            nonlocal tries
            tries += 1
            try:
                return await writer.write_batch(conn, batch, self.chain.name)
            except writer.CheckpointConflict:
                # A connection lost while COMMIT was on its way leaves us not knowing whether
                # the batch went in; _db then runs it again. If the checkpoint is where this
                # batch put it (we own the chain, so nobody else moved it), it did.
                stored = await writer.read_checkpoint(conn, self.chain.chain_id)
                if tries > 1 and stored == batch.last_block:
                    return 0
                raise

        inserted = await self._db(action)
        if batch.asset_sources:
            self.book.add(batch.asset_sources)
        metrics.BLOCKS.labels(self.chain.name).inc(batch.last_block - batch.first_block + 1)
        metrics.EVENTS.labels(self.chain.name, "liquidation").inc(len(batch.liquidations))
        metrics.BATCH_SIZE.labels(self.chain.name).observe(batch.events)
        self.events_written += batch.events
        return int(inserted)  # type: ignore[call-overload]

    # -- backfill ---------------------------------------------------------------------

    async def backfill(self, to_block: int | None = None, from_block: int | None = None) -> int:
        """Index from the checkpoint (or from_block, if later) to to_block (default: the
        finalized block). Returns the number of liquidations written."""
        heads = await self.read_heads()
        target = heads.finalized if to_block is None else min(to_block, heads.head)
        await self.discover_sources(target)
        cursor = await self.checkpoint() + 1
        if from_block is not None and from_block > cursor:
            # Jumping ahead: the checkpoint moves to just before from_block.
            await self._db(lambda c: writer.skip_to(c, self.chain.chain_id, from_block - 1))
            cursor = from_block
        progress = Progress(self.chain.name, cursor, target, cursor - 1)
        self._report(progress)
        written = 0
        queue: asyncio.Queue[asyncio.Future[Batch] | None] = asyncio.Queue(
            maxsize=self.chain.max_in_flight
        )

        async def plan() -> None:
            nonlocal cursor
            try:
                while cursor <= target:
                    upper = min(target, cursor + self.sizer.size - 1)
                    logs, last = await self.fetch_logs(cursor, upper)
                    task = asyncio.create_task(self.enrich_fetched(cursor, last, logs))
                    del logs
                    await queue.put(task)
                    cursor = last + 1
            except Exception as exc:  # the writer raises it in order, after what came before
                failed: asyncio.Future[Batch] = asyncio.get_running_loop().create_future()
                failed.set_exception(exc)
                await queue.put(failed)
                return
            await queue.put(None)

        # Bulk loading (store/bulk.py): decided after each write from the events per block so
        # far, once the rest of the backfill is expected to be large.
        table_rows = await self._db(bulk.table_rows) if self.chain.bulk_load_min_events else 0
        assert isinstance(table_rows, int)
        loading = False
        planner = asyncio.create_task(plan())
        try:
            done = False
            while not done:
                task = await queue.get()
                if task is None:
                    break
                batch = await task
                # Merge whatever else is already finished, in order, into one transaction.
                while batch.events < MERGE_EVENTS and not queue.empty():
                    nxt = queue.get_nowait()
                    if nxt is None:
                        done = True
                        break
                    if not nxt.done():
                        batch.extend(await nxt)
                        break
                    batch.extend(nxt.result())
                await self.write(batch)
                written += len(batch.liquidations)
                progress.done_block = batch.last_block
                progress.events += batch.events
                self._report(progress)
                if not loading and self._bulk_worth_it(progress, table_rows):
                    loading = await self._enter_bulk(progress)
        except Exception:
            if loading:  # the indexes are rebuilt (unless another chain still loads)
                with contextlib.suppress(Exception):
                    await self._leave_bulk()
            raise
        finally:
            planner.cancel()
            while not queue.empty():
                leftover = queue.get_nowait()
                if leftover is not None:
                    leftover.cancel()
            await asyncio.gather(planner, return_exceptions=True)
        # Reached on success only. Cancelled (the process stops), the bulk load's row goes
        # stale with the session, and the next migrate or leave rebuilds the indexes.
        if loading:
            await self._leave_bulk()
        return written

    def _bulk_worth_it(self, progress: Progress, table_rows: int) -> bool:
        """Whether the rest of the backfill is expected to write enough events to pay for
        rebuilding the indexes: at least bulk_load_min_events, and at least the rows the
        table already holds (a rebuild sorts all of them)."""
        least = self.chain.bulk_load_min_events
        done = progress.done_block - progress.start_block + 1
        left = progress.target_block - progress.done_block
        if not least or done <= 0 or left <= 0:
            return False
        return progress.events * left / done >= max(least, table_rows)

    async def _enter_bulk(self, progress: Progress) -> bool:
        chain_id = self.chain.chain_id
        entered = await self._db(lambda c: bulk.enter(c, chain_id))
        if entered:
            log.info(
                "%s: bulk load from block %d to %d (secondary indexes of %s deferred)",
                self.chain.name,
                progress.done_block + 1,
                progress.target_block,
                bulk.TABLE,
            )
        return bool(entered)

    async def _leave_bulk(self) -> None:
        started = time.monotonic()
        chain_id = self.chain.chain_id
        rebuilt = await self._db(lambda c: bulk.leave(c, chain_id))
        if rebuilt:
            log.info(
                "%s: indexes of %s rebuilt in %.1f s",
                self.chain.name,
                bulk.TABLE,
                time.monotonic() - started,
            )

    # -- tail -------------------------------------------------------------------------

    async def read_heads(self) -> Heads:
        heads = await self.heads.read()
        metrics.LAG.labels(self.chain.name).set(max(0, heads.head - await self.checkpoint()))
        await self._db(
            lambda c: status.update_heads(
                c, self.chain.chain_id, self.chain.name, heads.head, heads.finalized
            )
        )
        return heads

    async def tail_once(self) -> int:
        """Index what is new above the checkpoint (up to max_block_range blocks), handling
        a reorg first if there is one. Returns the number of blocks advanced."""
        chain = self.chain
        heads = await self.read_heads()
        cp = await self.checkpoint()
        known = await self._db(lambda c: rollback.stored_hash(c, chain.chain_id, cp))
        assert known is None or isinstance(known, str)
        window = reorg.header_window(cp, heads.head, chain.max_block_range)
        headers = await fetch_headers(self.client, window)
        step = reorg.next_step(cp, known, heads.head, headers, chain.max_block_range)
        if isinstance(step, reorg.Diverged):
            await self.handle_reorg(heads)
            return 0
        if not isinstance(step, reorg.Advance):
            if isinstance(step, reorg.Retry):
                log.info("%s: %s; reading again", chain.name, step.reason)
            return 0
        batch = await self.process_range(step.first, step.last, headers)
        off = reorg.off_branch(batch.event_blocks(), headers)
        if off is not None:
            log.info("%s: %s; reading again", chain.name, off.reason)
            if self.enricher is not None:
                self.enricher.forget_above(cp)  # prices read off another branch
            return 0
        keep_from = reorg.keep_headers_from(heads.head, chain.finality_depth)
        batch.blocks = [
            BlockRow(chain.chain_id, h.number, h.hash, h.parent_hash, _ts(h.timestamp))
            for n, h in sorted(headers.items())
            if n > cp and n >= keep_from
        ]
        batch.last_block_hash = headers[step.last].hash
        await self.write(batch)
        await self._db(lambda c: rollback.prune_headers(c, chain.chain_id, keep_from))
        return step.last - cp

    async def handle_reorg(self, heads: Heads) -> None:
        """Roll back to the common ancestor, or halt when there is none within finality."""
        chain = self.chain
        cp = await self.checkpoint()
        since = reorg.ancestor_search_from(cp, chain.finality_depth)
        stored = await self._db(lambda c: rollback.stored_hashes(c, chain.chain_id, since))
        assert isinstance(stored, dict)
        canonical = await fetch_headers(self.client, [n for n in stored if n <= heads.head])
        verdict = reorg.resolve(
            cp, stored, {n: h.hash for n, h in canonical.items()}, chain.finality_depth
        )
        if isinstance(verdict, reorg.Halt):
            await self._db(
                lambda c: status.update_heads(
                    c,
                    chain.chain_id,
                    chain.name,
                    heads.head,
                    heads.finalized,
                    verdict.message,
                    halted=True,
                )
            )
            raise ChainHalted(f"{chain.name}: {verdict.message}; chain halted")
        removed = await self._db(
            lambda c: rollback.rollback(c, chain.chain_id, verdict.ancestor, verdict.ancestor_hash)
        )
        await self._load_sources()  # the sources of the blocks rolled back are gone too
        if self.enricher is not None:
            self.enricher.forget_above(verdict.ancestor)
        metrics.REORGS.labels(chain.name).inc()
        log.warning(
            "%s: reorg of depth %d at block %d; rolled back %s",
            chain.name,
            verdict.depth,
            verdict.ancestor,
            removed,
        )

    async def tail(self, stop: asyncio.Event) -> None:
        progress = Progress(self.chain.name, 0, 0, await self.checkpoint(), phase="tail")
        events_before = self.events_written
        while not stop.is_set():
            try:
                advanced = await self.tail_once()
            except ChainHalted:
                raise
            except Exception as exc:  # keep following; the error is visible in status
                message = f"{type(exc).__name__}: {exc}"[:500]
                log.error("%s: %s", self.chain.name, message)
                await self._db(
                    lambda c, m=message: status.set_last_error(c, self.chain.chain_id, m)  # type: ignore[misc]
                )
                advanced = 0
                await _sleep_or_stop(stop, min(10.0, self.poll_interval * 10))
            if advanced:
                progress.done_block = await self.checkpoint()
                progress.target_block = self.heads.highest_seen
                progress.events = self.events_written - events_before
                self._report(progress)
            else:
                await _sleep_or_stop(stop, self.poll_interval)

    async def run(self, stop: asyncio.Event) -> None:
        await self.backfill()
        await self.tail(stop)

    def _report(self, progress: Progress) -> None:
        if self.on_progress is not None:
            self.on_progress(progress)


def _stretches(start: int, end: int, count: int, least: int) -> list[tuple[int, int]]:
    """[start, end] cut into at most `count` consecutive stretches of at least `least`
    blocks (the last one takes the rest)."""
    size = max(least, -(-(end - start + 1) // max(1, count)))
    return [(lo, min(end, lo + size - 1)) for lo in range(start, end + 1, size)]


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
