"""Live push: one LISTEN connection per API process, fanned out to the subscriptions.

Why this shape:

- The writer's statement triggers (schema.sql) NOTIFY channel `aave_live` with a few numbers
  per statement (block or id range, count, the writing transaction's id). PostgreSQL
  delivers a notification at commit only, in commit order: a subscriber sees committed rows
  only, and a rollback's retractions after the rows they retract. Nothing polls.
- One asyncpg connection LISTENs for the whole process, opened with the first subscription
  and opened again when lost. Each notification's rows are read once, through the pool, by
  the keys it names, turned into GraphQL objects once, and shared by every subscriber; each
  subscriber only filters them (`liquidation_matches` is the SQL filter of api.queries, in
  Python).
- Every subscriber has a bounded queue of pending notifications, and the feed never waits
  for one: a subscriber whose queue is full is dropped (its WebSocket closed with 4429), so a
  slow client neither slows the others nor grows the process's memory.
- A lost listening connection may have missed notifications, so every subscription then
  ends with an UNAVAILABLE error instead of silently skipping rows; the client subscribes
  again and reads the gap with a query.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge

from api import queries
from api.db import CONNECT_TIMEOUT_S, Database
from api.errors import LIMIT_EXCEEDED, UNAVAILABLE, ApiError, DatabaseUnavailable
from api.queries import LiquidationWhere, Sql
from api.types import make_liquidation, make_liquidation_removal, make_svr_recapture

log = logging.getLogger("api.live")

CHANNEL = "aave_live"
#: The WebSocket close code of a subscriber dropped for reading too slowly.
SLOW_CLOSE_CODE = 4429
#: Transactions whose reads are remembered, so that two statements of one transaction
#: (two notifications) never deliver a row twice.
SEEN_TRANSACTIONS = 256
#: Notifications waiting for the feed itself; past this it has fallen behind the database.
MAX_PENDING_NOTICES = 10_000
READ_ATTEMPTS = 3


class Kind(StrEnum):
    """What a notification announces (its `kind`, as the triggers spell it)."""

    LIQUIDATIONS = "liquidations"
    RECAPTURES = "svr_recaptures"
    RETRACTIONS = "liquidation_retractions"


@dataclass(frozen=True)
class Notice:
    """One statement's rows: a block range of one chain (an id range for retractions), their
    count and the id of the (sub)transaction that wrote them."""

    kind: Kind
    chain: int | None
    lo: int
    hi: int
    n: int
    xid: str


def parse_notice(payload: str) -> Notice | None:
    """The payload as the triggers write it; None (and a warning) for anything else."""
    try:
        value = json.loads(payload)
        chain = value.get("chain")
        return Notice(
            kind=Kind(value["kind"]),
            chain=int(chain) if chain is not None else None,
            lo=int(value["lo"]),
            hi=int(value["hi"]),
            n=int(value["n"]),
            xid=str(value["xid"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("ignoring a malformed %s notification: %.200r", CHANNEL, payload)
        return None


@dataclass(frozen=True)
class LiveOptions:
    """Limits of live push, per API process."""

    queue_size: int = 256  # notifications pending per subscriber before it is dropped
    max_websockets: int = 10_000  # open at once; more are closed with 1013
    max_subscriptions: int = 20  # per WebSocket
    init_timeout_s: float = 10.0  # connection_init must arrive within this
    keepalive_s: float = 15.0  # how often the listening connection is checked
    close_timeout_s: float = 5.0  # for the close frame of a dropped subscriber

    @classmethod
    def from_env(cls) -> LiveOptions:
        """AAVE_API_LIVE_QUEUE, AAVE_API_MAX_WEBSOCKETS, AAVE_API_MAX_SUBSCRIPTIONS,
        AAVE_API_WS_INIT_TIMEOUT_S; unset ones keep their default."""
        d = cls()
        env = os.environ.get
        return cls(
            queue_size=int(env("AAVE_API_LIVE_QUEUE") or d.queue_size),
            max_websockets=int(env("AAVE_API_MAX_WEBSOCKETS") or d.max_websockets),
            max_subscriptions=int(env("AAVE_API_MAX_SUBSCRIPTIONS") or d.max_subscriptions),
            init_timeout_s=float(env("AAVE_API_WS_INIT_TIMEOUT_S") or d.init_timeout_s),
        )


def liquidation_matches(w: LiquidationWhere, r: Mapping[str, Any]) -> bool:
    """Whether a row passes the filter, exactly as api.queries' conditions would have it (a
    null USD value passes no minimum). Also for retractions, which keep the same columns."""
    return (
        (w.chain_ids is None or r["chain_id"] in w.chain_ids)
        and (w.markets is None or r["market"] in w.markets)
        and (w.user is None or r["user_address"] == w.user)
        and (w.liquidator is None or r["liquidator"] == w.liquidator)
        and (w.collateral_asset is None or r["collateral_asset"] == w.collateral_asset)
        and (w.debt_asset is None or r["debt_asset"] == w.debt_asset)
        and (w.tx_hash is None or r["tx_hash"] == w.tx_hash)
        and (w.svr is None or r["is_svr"] == w.svr)
        and (w.finalized is None or bool(r["finalized"]) == w.finalized)
        and (w.time_from is None or r["block_time"] >= w.time_from)
        and (w.time_to is None or r["block_time"] < w.time_to)
        and (w.block_from is None or r["block_number"] >= w.block_from)
        and (w.block_to is None or r["block_number"] <= w.block_to)
        and (
            w.min_debt_usd is None
            or (r["debt_usd"] is not None and r["debt_usd"] >= w.min_debt_usd)
        )
        and (
            w.min_collateral_usd is None
            or (r["collateral_usd"] is not None and r["collateral_usd"] >= w.min_collateral_usd)
        )
    )


class Connection:
    """One WebSocket, as the feed sees it: the feed can only ask for it to be dropped (the
    WebSocket's own task closes it, see api.subscriptions)."""

    def __init__(self) -> None:
        self.dropped = asyncio.Event()
        self.code = 1000
        self.reason = ""

    def drop(self, code: int, reason: str) -> None:
        if not self.dropped.is_set():
            self.code, self.reason = code, reason
            self.dropped.set()


Matcher = Callable[[Mapping[str, Any]], bool]
Item = tuple[Mapping[str, Any], object]  # (the row, for filters; its GraphQL object)


class Subscriber:
    """One subscription: its filter and its bounded queue of batches (one per notification
    that had rows for it)."""

    def __init__(
        self, kind: Kind, matches: Matcher, queue_size: int, connection: Connection | None
    ) -> None:
        self.kind = kind
        self.matches = matches
        self.queue_size = queue_size
        self.connection = connection
        self.error: ApiError | None = None
        self._pending: deque[tuple[object, ...]] = deque()
        self._wake = asyncio.Event()

    def offer(self, batch: tuple[object, ...]) -> bool:
        """Queue a batch; False when the queue is full (the caller drops the subscriber)."""
        if len(self._pending) >= self.queue_size:
            return False
        self._pending.append(batch)
        self._wake.set()
        return True

    def fail(self, error: ApiError) -> None:
        """End the subscription with `error`, after the batches already queued."""
        if self.error is None:
            self.error = error
        self._wake.set()

    async def next_batch(self) -> tuple[object, ...]:
        while not self._pending:
            if self.error is not None:
                raise self.error
            self._wake.clear()
            await self._wake.wait()
        return self._pending.popleft()


_LOST = object()  # queued when the listening connection is lost: fail every subscriber


class LiveFeed:
    """The process's one listener, its subscribers and their WebSockets (see the module)."""

    def __init__(
        self,
        db: Database,
        options: LiveOptions | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.db = db
        self.options = options or LiveOptions()
        self._subs: dict[Kind, set[Subscriber]] = {kind: set() for kind in Kind}
        self._notices: asyncio.Queue[Notice | object] = asyncio.Queue()
        self._listening = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._seen: OrderedDict[tuple[Kind, int | None, str], list[tuple[int, int]]] = OrderedDict()
        self.websockets = 0
        registry = registry or CollectorRegistry()
        self.m_websockets = Gauge("aave_api_websockets_open", "WebSockets open", registry=registry)
        self.m_refused = Counter(
            "aave_api_websockets_refused",
            "WebSockets closed at once: the process had max_websockets open",
            registry=registry,
        )
        self.m_subscriptions = Gauge(
            "aave_api_subscriptions_active",
            "Subscriptions receiving rows, by kind",
            ["kind"],
            registry=registry,
        )
        self.m_dropped = Counter(
            "aave_api_subscriptions_dropped",
            "Subscriptions ended by the feed: slow (queue full), lost (listener or reads lost)",
            ["reason"],
            registry=registry,
        )
        self.m_notices = Counter(
            "aave_api_live_notifications",
            "Notifications received from the database, by kind",
            ["kind"],
            registry=registry,
        )
        self.m_rows = Counter(
            "aave_api_live_rows", "Rows read for subscribers, by kind", ["kind"], registry=registry
        )
        self.m_listening = Gauge(
            "aave_api_live_listening",
            "1 while the process's listening connection is up",
            registry=registry,
        )
        for kind in Kind:
            self.m_subscriptions.labels(kind=kind.value)
            self.m_notices.labels(kind=kind.value)
            self.m_rows.labels(kind=kind.value)
        for reason in ("slow", "lost"):
            self.m_dropped.labels(reason=reason)

    # -- WebSockets ------------------------------------------------------------------

    def claim_websocket(self) -> bool:
        """Count one more WebSocket; False when max_websockets are open already."""
        if self.websockets >= self.options.max_websockets:
            self.m_refused.inc()
            return False
        self.websockets += 1
        self.m_websockets.set(self.websockets)
        return True

    def release_websocket(self) -> None:
        self.websockets -= 1
        self.m_websockets.set(self.websockets)

    # -- subscriptions ---------------------------------------------------------------

    async def subscribe(
        self, kind: Kind, matches: Matcher, connection: Connection | None = None
    ) -> Subscriber:
        """A new subscriber, once the process is listening (started here on first use);
        DatabaseUnavailable when it cannot listen."""
        if self._closed:
            raise DatabaseUnavailable("the server is shutting down; subscribe again elsewhere")
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen(), name="live-listener"),
                asyncio.create_task(self._consume(), name="live-consumer"),
            ]
        try:
            await asyncio.wait_for(self._listening.wait(), CONNECT_TIMEOUT_S + 1)
        except TimeoutError:
            raise DatabaseUnavailable() from None
        sub = Subscriber(kind, matches, self.options.queue_size, connection)
        self._subs[kind].add(sub)
        self.m_subscriptions.labels(kind=kind.value).inc()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if sub in self._subs[sub.kind]:
            self._subs[sub.kind].discard(sub)
            self.m_subscriptions.labels(kind=sub.kind.value).dec()

    def subscribers(self, kind: Kind) -> int:
        return len(self._subs[kind])

    async def close(self) -> None:
        self._closed = True
        for tasks in self._tasks:
            tasks.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._fail_all(DatabaseUnavailable("the server is shutting down; subscribe again"))

    # -- the listening connection ----------------------------------------------------

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        notice = parse_notice(payload)
        if notice is None:
            return
        self.m_notices.labels(kind=notice.kind.value).inc()
        if self._notices.qsize() >= MAX_PENDING_NOTICES:
            log.error(
                "live feed %d notifications behind: ending every subscription", MAX_PENDING_NOTICES
            )
            while not self._notices.empty():
                self._notices.get_nowait()
            self._notices.put_nowait(_LOST)
            return
        self._notices.put_nowait(notice)

    async def _listen(self) -> None:
        """Keep one connection LISTENing; on loss, tell the consumer and connect again."""
        delay = 0.2
        while True:
            conn: asyncpg.Connection | None = None
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(
                    self.db.dsn,
                    timeout=CONNECT_TIMEOUT_S,
                    server_settings={
                        **self.db.server_settings,
                        "application_name": "aave-svr-indexer-api-live",
                    },
                )
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                self._listening.set()
                self.m_listening.set(1)
                delay = 0.2
                await self._watch(conn, lost)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("live feed: listening connection unavailable: %r", exc)
            except Exception:  # the listener must outlive any surprise
                log.exception("live feed: unexpected error on the listening connection")
            finally:
                if self._listening.is_set():
                    self._listening.clear()
                    self.m_listening.set(0)
                    self._notices.put_nowait(_LOST)
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is lost: closed under us, or silent to a check."""
        period = self.options.keepalive_s
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), period)
            except TimeoutError:
                await conn.execute("SELECT 1", timeout=period)

    # -- reading and fanning out -----------------------------------------------------

    async def _consume(self) -> None:
        while True:
            notice = await self._notices.get()
            if not isinstance(notice, Notice):
                self._fail_all(
                    DatabaseUnavailable(
                        "the live feed lost its database connection and may have missed rows: "
                        "subscribe again, and query what came meanwhile"
                    )
                )
                continue
            subs = self._subs[notice.kind]
            if not subs:
                continue
            try:
                items = await self._read(notice)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure ends these subscriptions
                log.warning("live feed: cannot read %s: %r", notice, exc)
                self._fail(
                    list(subs),
                    DatabaseUnavailable(
                        "the live feed could not read new rows: subscribe again, and query "
                        "what came meanwhile"
                    ),
                )
                continue
            if items:
                self._fan_out(notice.kind, items)

    async def _read(self, notice: Notice) -> list[Item]:
        """The notice's rows, less those another statement of its transaction brought."""
        key = (notice.kind, notice.chain, notice.xid)
        seen = self._seen.get(key, [])
        rows: list[asyncpg.Record] = []
        for attempt in range(READ_ATTEMPTS):
            try:
                rows = await self.db.fetch(_sql(notice))
                break
            except DatabaseUnavailable:
                if attempt == READ_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        self._seen[key] = [*seen, (notice.lo, notice.hi)]
        self._seen.move_to_end(key)
        while len(self._seen) > SEEN_TRANSACTIONS:
            self._seen.popitem(last=False)
        position = "id" if notice.kind is Kind.RETRACTIONS else "block_number"
        if seen:
            rows = [r for r in rows if not any(lo <= r[position] <= hi for lo, hi in seen)]
        self.m_rows.labels(kind=notice.kind.value).inc(len(rows))
        make = _MAKE[notice.kind]
        return [(r, make(r)) for r in rows]

    def _fan_out(self, kind: Kind, items: list[Item]) -> None:
        for sub in list(self._subs[kind]):
            batch = tuple(obj for row, obj in items if sub.matches(row))
            if batch and not sub.offer(batch):
                self._drop_slow(sub)

    def _drop_slow(self, sub: Subscriber) -> None:
        self.unsubscribe(sub)
        self.m_dropped.labels(reason="slow").inc()
        reason = f"too slow: {sub.queue_size} notifications waiting"
        if sub.connection is not None:
            sub.connection.drop(SLOW_CLOSE_CODE, reason)
        sub.fail(ApiError(f"subscriber {reason}; subscribe again", LIMIT_EXCEEDED))

    def _fail(self, subs: list[Subscriber], error: ApiError) -> None:
        for sub in subs:
            self.unsubscribe(sub)
            sub.fail(error)
        if subs and error.code == UNAVAILABLE:
            self.m_dropped.labels(reason="lost").inc(len(subs))

    def _fail_all(self, error: ApiError) -> None:
        self._fail([s for subs in self._subs.values() for s in subs], error)


def _sql(notice: Notice) -> Sql:
    if notice.kind is Kind.RETRACTIONS:
        return queries.live_retractions(notice.lo, notice.hi, notice.xid)
    chain = notice.chain if notice.chain is not None else 0
    if notice.kind is Kind.LIQUIDATIONS:
        return queries.live_liquidations(chain, notice.lo, notice.hi, notice.xid)
    return queries.live_recaptures(chain, notice.lo, notice.hi, notice.xid)


_MAKE: dict[Kind, Callable[[asyncpg.Record], object]] = {
    Kind.LIQUIDATIONS: make_liquidation,
    Kind.RECAPTURES: make_svr_recapture,
    Kind.RETRACTIONS: make_liquidation_removal,
}
