"""Every SQL statement the API runs, as named constants and a few builders.

Rules: the builders only ever splice in constants defined in this module (column lists,
condition fragments, ORDER BY clauses, source tables); every value that comes from a
caller is a bind parameter ($n). Nothing here touches a connection: the builders return
`Sql(text, args)` and api.db runs it.

Which table serves which query:
- Query.liquidations / Query.liquidation: the base table `liquidations` (keyset pagination
  on indexes liquidations_time / liquidations_chain_time), joined to `assets` and
  `chain_status` only for the rows of the page.
- Query.liquidationStats: the coarsest rollup that holds every grouped and filtered column
  (see `stats_source`): `chain_rollup_daily` / `chain_rollup_hourly` when neither assets nor
  liquidator are grouped or filtered, `liquidation_rollup` (per asset pair and day) for
  assets, `liquidator_rollup_daily` for the liquidator, and the base table only when no
  rollup holds what the query needs.
- Query.svrRevenue: `svr_revenue_rollup_daily`, always.
- Query.svrFeeds: the view `asset_source_windows` (over `asset_sources`), joined to `assets`.
- Query.indexerStatus and /readyz: `chain_status`.

Every rollup is keyed by market too, so a `markets` filter or a MARKET grouping never
sends a query to the base table.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from api.enums import (
    LiquidationOrder,
    LiquidatorOrder,
    StatsDimension,
    StatsSource,
    SvrRevenueDimension,
)
from api.errors import LIMIT_EXCEEDED, ApiError

# A grouped query may return at most this many rows (time buckets x other dimensions).
MAX_GROUPED_ROWS = 10_000


@dataclass(frozen=True)
class Sql:
    """A statement and its bind parameters, ready for asyncpg."""

    text: str
    args: tuple[object, ...] = ()


class _Params:
    """Hands out $1, $2, ... as values are bound."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def __call__(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _where(conditions: list[str]) -> str:
    return " AND ".join(conditions) if conditions else "TRUE"


def _bound(p: _Params, pairs: list[tuple[str, object]]) -> list[str]:
    """The (fragment, value) pairs whose value is given, as conditions with the value bound."""
    return [fragment.format(p=p(value)) for fragment, value in pairs if value is not None]


def _array(values: tuple[int, ...] | tuple[str, ...] | None) -> list[object] | None:
    """Chain ids or markets as asyncpg binds an integer[] or a text[]."""
    return list(values) if values is not None else None


# --------------------------------------------------------------------------------------
# Status and reference data
# --------------------------------------------------------------------------------------

CHAIN_STATUS = """
SELECT chain_id, name, head_block, finalized_block, indexed_block, last_error, halted,
       updated_at
FROM chain_status
ORDER BY chain_id
"""

ASSETS = """
SELECT chain_id, address, symbol, decimals
FROM assets
WHERE $1::integer[] IS NULL OR chain_id = ANY($1::integer[])
ORDER BY chain_id, symbol, address
LIMIT $2
"""
MAX_ASSETS = 10_000


def chain_status() -> Sql:
    return Sql(CHAIN_STATUS)


def assets(chain_ids: tuple[int, ...] | None) -> Sql:
    return Sql(ASSETS, (list(chain_ids) if chain_ids is not None else None, MAX_ASSETS))


# Each source's window (asset_source_windows, a view over asset_sources), the SVR ones or
# all; a filter on chain or market reaches asset_sources (they are the window's partition).
SVR_FEEDS = """
SELECT w.chain_id, w.market, w.oracle, w.asset, w.source, w.aggregator, w.is_svr,
       w.type_and_version, w.from_block, w.to_block,
       a.symbol AS asset_symbol, a.decimals AS asset_decimals
FROM asset_source_windows w
LEFT JOIN assets a ON a.chain_id = w.chain_id AND a.address = w.asset
WHERE ($1::integer[] IS NULL OR w.chain_id = ANY($1::integer[]))
  AND ($2::text[] IS NULL OR w.market = ANY($2::text[]))
  AND ($3::boolean IS NOT TRUE OR w.is_svr)
ORDER BY w.chain_id, w.market, w.asset, w.from_block, w.from_log_index
LIMIT $4
"""
MAX_SVR_FEEDS = 10_000


def svr_feeds(
    chain_ids: tuple[int, ...] | None, markets: tuple[str, ...] | None, svr_only: bool | None
) -> Sql:
    """The sources' windows, ordered by chain, market, asset and first block."""
    return Sql(SVR_FEEDS, (_array(chain_ids), _array(markets), svr_only, MAX_SVR_FEEDS))


# --------------------------------------------------------------------------------------
# Liquidations (base table)
# --------------------------------------------------------------------------------------


# LiquidationWhere fields added after cursors were first issued (see fingerprint).
_ADDED_LATER = frozenset({"markets"})


@dataclass(frozen=True)
class LiquidationWhere:
    """A validated, normalised liquidation filter (addresses and hashes lowercase,
    datetimes timezone-aware). `time_to` is exclusive, `block_to` inclusive."""

    chain_ids: tuple[int, ...] | None = None
    markets: tuple[str, ...] | None = None
    user: str | None = None
    liquidator: str | None = None
    collateral_asset: str | None = None
    debt_asset: str | None = None
    tx_hash: str | None = None
    svr: bool | None = None
    finalized: bool | None = None
    time_from: datetime | None = None
    time_to: datetime | None = None
    block_from: int | None = None
    block_to: int | None = None
    min_debt_usd: Decimal | None = None
    min_collateral_usd: Decimal | None = None

    def fingerprint(self) -> str:
        """A short stable digest, bound into cursors so a cursor only continues the
        listing it came from. A filter added later is left out while unset, so a cursor of
        an earlier release stays valid across an upgrade."""
        values = {
            f.name: getattr(self, f.name)  # asdict deep-copies
            for f in fields(self)
            if not (f.name in _ADDED_LATER and getattr(self, f.name) is None)
        }
        blob = json.dumps(values, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def needs_base_table(self) -> bool:
        """True when a filter uses a column the rollups do not keep (they keep the SVR
        part of every measure, so `svr` is not one of them)."""
        return any(
            v is not None
            for v in (
                self.user,
                self.tx_hash,
                self.finalized,
                self.block_from,
                self.block_to,
                self.min_debt_usd,
                self.min_collateral_usd,
            )
        )


# Condition fragments on the base table (alias l); {p} is the bind parameter.
L_CHAINS = "l.chain_id = ANY({p}::integer[])"
# One chain as a plain equality: then the planner knows chain_id is constant, so an order
# by (block_time, chain_id, ...) is the order of liquidations_chain_time and a page reads
# its 51 rows from it; with `= ANY(array)` it walks liquidations_time and filters out the
# other chains' rows (about 5x the heap pages at 10^6 rows).
L_CHAIN = "l.chain_id = {p}::integer"
L_MARKETS = "l.market = ANY({p}::text[])"
L_USER = "l.user_address = {p}"
L_LIQUIDATOR = "l.liquidator = {p}"
L_COLLATERAL = "l.collateral_asset = {p}"
L_DEBT = "l.debt_asset = {p}"
L_TX_HASH = "l.tx_hash = {p}"
L_SVR = "l.is_svr = {p}"
L_FINALIZED = (
    "((l.block_number <= (SELECT cs.finalized_block FROM chain_status cs"
    " WHERE cs.chain_id = l.chain_id)) IS TRUE) = {p}"
)
L_TIME_FROM = "l.block_time >= {p}::timestamptz"
L_TIME_TO = "l.block_time < {p}::timestamptz"
L_BLOCK_FROM = "l.block_number >= {p}"
L_BLOCK_TO = "l.block_number <= {p}"
L_MIN_DEBT_USD = "l.debt_usd >= {p}::numeric"
L_MIN_COLLATERAL_USD = "l.collateral_usd >= {p}::numeric"


def _liquidation_conditions(w: LiquidationWhere, p: _Params) -> list[str]:
    chain = w.chain_ids[0] if w.chain_ids is not None and len(w.chain_ids) == 1 else None
    return _bound(
        p,
        [
            (L_CHAIN, chain),
            (L_CHAINS, _array(w.chain_ids) if chain is None else None),
            (L_MARKETS, _array(w.markets)),
            (L_USER, w.user),
            (L_LIQUIDATOR, w.liquidator),
            (L_COLLATERAL, w.collateral_asset),
            (L_DEBT, w.debt_asset),
            (L_TX_HASH, w.tx_hash),
            (L_SVR, w.svr),
            (L_FINALIZED, w.finalized),
            (L_TIME_FROM, w.time_from),
            (L_TIME_TO, w.time_to),
            (L_BLOCK_FROM, w.block_from),
            (L_BLOCK_TO, w.block_to),
            (L_MIN_DEBT_USD, w.min_debt_usd),
            (L_MIN_COLLATERAL_USD, w.min_collateral_usd),
        ],
    )


# Sort key expression per order. A liquidation without a USD value sorts as -1 (below 0).
SORT_KEY = {
    LiquidationOrder.BLOCK_TIME_DESC: "l.block_time",
    LiquidationOrder.BLOCK_TIME_ASC: "l.block_time",
    LiquidationOrder.DEBT_USD_DESC: "coalesce(l.debt_usd, -1)",
    LiquidationOrder.DEBT_USD_ASC: "coalesce(l.debt_usd, -1)",
}

# Each order ends with the (chain_id, tx_hash, log_index) tiebreak, so it is total and a
# keyset cursor never skips or repeats a row. Directions chosen so that the time orders walk
# liquidations_time (block_time DESC, chain_id, tx_hash, log_index) forwards or backwards.
ORDER_BY = {
    LiquidationOrder.BLOCK_TIME_DESC: "l.block_time DESC, l.chain_id, l.tx_hash, l.log_index",
    LiquidationOrder.BLOCK_TIME_ASC: (
        "l.block_time, l.chain_id DESC, l.tx_hash DESC, l.log_index DESC"
    ),
    LiquidationOrder.DEBT_USD_DESC: (
        "coalesce(l.debt_usd, -1) DESC, l.chain_id, l.tx_hash, l.log_index"
    ),
    LiquidationOrder.DEBT_USD_ASC: (
        "coalesce(l.debt_usd, -1), l.chain_id DESC, l.tx_hash DESC, l.log_index DESC"
    ),
}

# "Strictly after the cursor row" for each order. {k} sort key, {c} {h} {i} tiebreak.
# The leading non-strict bound lets the planner use it as an index condition.
KEYSET_AFTER = {
    LiquidationOrder.BLOCK_TIME_DESC: (
        "l.block_time <= {k}::timestamptz AND (l.block_time < {k}::timestamptz"
        " OR (l.chain_id, l.tx_hash, l.log_index) > ({c}::integer, {h}::text, {i}::integer))"
    ),
    LiquidationOrder.BLOCK_TIME_ASC: (
        "l.block_time >= {k}::timestamptz AND (l.block_time > {k}::timestamptz"
        " OR (l.chain_id, l.tx_hash, l.log_index) < ({c}::integer, {h}::text, {i}::integer))"
    ),
    LiquidationOrder.DEBT_USD_DESC: (
        "coalesce(l.debt_usd, -1) <= {k}::numeric AND (coalesce(l.debt_usd, -1) < {k}::numeric"
        " OR (l.chain_id, l.tx_hash, l.log_index) > ({c}::integer, {h}::text, {i}::integer))"
    ),
    LiquidationOrder.DEBT_USD_ASC: (
        "coalesce(l.debt_usd, -1) >= {k}::numeric AND (coalesce(l.debt_usd, -1) > {k}::numeric"
        " OR (l.chain_id, l.tx_hash, l.log_index) < ({c}::integer, {h}::text, {i}::integer))"
    ),
}

LIQUIDATION_COLUMNS = """
    l.chain_id, l.block_number, l.block_hash, l.block_time, l.tx_hash, l.tx_index,
    l.log_index, l.pool, l.market, l.collateral_asset, l.debt_asset, l.user_address, l.liquidator,
    l.debt_to_cover, l.liquidated_collateral_amount, l.receive_atoken, l.collateral_price,
    l.debt_price, l.collateral_usd, l.debt_usd, l.protocol_fee_amount, l.is_svr,
    l.svr_aggregator, l.svr_round_id, l.svr_oracle_tx_hash, l.svr_recaptured_usd,
    l.svr_aave_usd, l.svr_chainlink_usd, l.svr_bid_count, l.svr_best_losing_bid_usd,
    l.bonus_usd, l.protocol_fee_usd, l.collateral_seized_usd, l.closed_fully,
    ca.symbol AS collateral_symbol, ca.decimals AS collateral_decimals,
    da.symbol AS debt_symbol, da.decimals AS debt_decimals,
    (l.block_number <= cs.finalized_block) IS TRUE AS finalized"""

LIQUIDATION_JOINS = """
LEFT JOIN assets ca ON ca.chain_id = l.chain_id AND ca.address = l.collateral_asset
LEFT JOIN assets da ON da.chain_id = l.chain_id AND da.address = l.debt_asset
LEFT JOIN chain_status cs ON cs.chain_id = l.chain_id"""

# The inner query picks the page on the base table alone; the joins run for its rows only.
LIQUIDATIONS_PAGE = """
SELECT {columns}, {sort_key} AS sort_key
FROM (
    SELECT l.* FROM liquidations l
    WHERE {where}
    ORDER BY {order_by}
    LIMIT {limit}
) l{joins}
ORDER BY {order_by}
"""

LIQUIDATIONS_COUNT = "SELECT count(*) FROM liquidations l WHERE {where}"

LIQUIDATION_BY_ID = (
    "SELECT "
    + LIQUIDATION_COLUMNS
    + "\nFROM liquidations l"
    + LIQUIDATION_JOINS
    + "\nWHERE l.chain_id = $1 AND l.tx_hash = $2 AND l.log_index = $3"
)


@dataclass(frozen=True)
class KeysetPosition:
    """The row a page starts after: its sort key and natural key."""

    key: datetime | Decimal
    chain_id: int
    tx_hash: str
    log_index: int


def liquidations_page(
    where: LiquidationWhere, order: LiquidationOrder, limit: int, after: KeysetPosition | None
) -> Sql:
    """One page (fetch `limit` rows; ask for first + 1 to learn hasNextPage)."""
    p = _Params()
    conditions = _liquidation_conditions(where, p)
    if after is not None:
        conditions.append(
            KEYSET_AFTER[order].format(
                k=p(after.key), c=p(after.chain_id), h=p(after.tx_hash), i=p(after.log_index)
            )
        )
    text = LIQUIDATIONS_PAGE.format(
        columns=LIQUIDATION_COLUMNS,
        sort_key=SORT_KEY[order],
        where=_where(conditions),
        order_by=ORDER_BY[order],
        limit=p(limit),
        joins=LIQUIDATION_JOINS,
    )
    return Sql(text, tuple(p.values))


def liquidations_count(where: LiquidationWhere) -> Sql:
    p = _Params()
    text = LIQUIDATIONS_COUNT.format(where=_where(_liquidation_conditions(where, p)))
    return Sql(text, tuple(p.values))


# The public route's twin of SVR rounds (the round's first PrimaryFeedUnlocked), for a page's
# SVR liquidations at once; asked only when a client wants the lead.
PUBLIC_TWINS = """
SELECT u.chain_id, u.aggregator, u.round_id, min(u.block_number) AS block_number,
       min(u.block_time) AS block_time
FROM svr_oracle_updates u
JOIN unnest($1::integer[], $2::text[], $3::bigint[]) AS k(chain_id, aggregator, round_id)
  ON u.chain_id = k.chain_id AND u.aggregator = k.aggregator AND u.round_id = k.round_id
WHERE u.kind = 'primary_feed_unlocked'
GROUP BY 1, 2, 3
"""


def public_twins(keys: list[tuple[int, str, int]]) -> Sql:
    return Sql(PUBLIC_TWINS, ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]))


# The blocks since the last price update before each liquidation of the feeds behind its
# collateral and debt assets (the sources in force in its market at its position); only
# indexed feeds (the SVR aggregators) have updates to find. Per page: one query.
BLOCKS_SINCE_PRICE_UPDATE = """
SELECT k.ord, k.block_number - (
    SELECT max(u.block_number)
    FROM asset_source_windows w
    CROSS JOIN LATERAL (
        SELECT u.block_number FROM svr_oracle_updates u
        WHERE u.chain_id = w.chain_id AND u.aggregator = w.aggregator
          AND u.kind = 'answer_updated'
          AND (u.block_number, u.log_index) < (k.block_number, k.log_index)
        ORDER BY u.block_number DESC, u.log_index DESC
        LIMIT 1
    ) u
    WHERE w.chain_id = k.chain_id AND w.market = k.market
      AND w.asset IN (k.collateral_asset, k.debt_asset) AND w.aggregator IS NOT NULL
      AND (w.from_block, w.from_log_index) < (k.block_number, k.log_index)
      AND (w.to_block IS NULL OR (w.to_block, w.to_log_index) > (k.block_number, k.log_index))
) AS blocks
FROM unnest($1::integer[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::integer[])
     WITH ORDINALITY AS k(chain_id, market, collateral_asset, debt_asset, block_number,
                          log_index, ord)
"""


#: (chain id, market, collateral, debt, block number, log index) of a liquidation
PriceAgeKey = tuple[int, str, str, str, int, int]


def blocks_since_price_update(keys: list[PriceAgeKey]) -> Sql:
    columns = list(zip(*keys, strict=True)) if keys else [()] * 6
    return Sql(BLOCKS_SINCE_PRICE_UPDATE, tuple(list(c) for c in columns))


def liquidation_by_id(chain_id: int, tx_hash: str, log_index: int) -> Sql:
    return Sql(LIQUIDATION_BY_ID, (chain_id, tx_hash, log_index))


# --------------------------------------------------------------------------------------
# Liquidation statistics (rollups, base table as a fallback)
# --------------------------------------------------------------------------------------


# A period grouping (both grouping enums spell theirs alike) and the date_trunc unit of its
# buckets, in the order an error names them.
TIME_UNITS = {"HOUR": "hour", "DAY": "day", "WEEK": "week", "MONTH": "month"}


_ASSET_DIMS = frozenset({StatsDimension.COLLATERAL_ASSET, StatsDimension.DEBT_ASSET})


def _aligned(t: datetime | None, unit: str) -> bool:
    if t is None:
        return True
    t = t.astimezone(UTC)
    if t.minute or t.second or t.microsecond:
        return False
    return unit == "hour" or t.hour == 0


def time_unit(dims: frozenset[StatsDimension] | frozenset[SvrRevenueDimension]) -> str | None:
    """The date_trunc unit of the one period grouped by, if any."""
    grouped = {d.value for d in dims}
    found = [name for name in TIME_UNITS if name in grouped]
    if len(found) > 1:
        names = ", ".join(found)
        raise ApiError(f"groupBy may hold at most one of HOUR, DAY, WEEK, MONTH (got {names})")
    return TIME_UNITS[found[0]] if found else None


def stats_source(where: LiquidationWhere, dims: frozenset[StatsDimension]) -> StatsSource:
    """The smallest table that answers the query exactly (every rollup is keyed by chain and
    market, so neither decides).

    - filters on user, txHash, finalized, blockFrom/blockTo, minDebtUsd or
      minCollateralUsd: the base table (no rollup keeps those columns);
    - neither assets nor liquidator grouped or filtered: chain_rollup_daily for whole-day
      bounds and no HOUR, else chain_rollup_hourly for whole-hour bounds;
    - assets or liquidator (not both), whole-day bounds, no HOUR: liquidation_rollup (per
      asset pair) or liquidator_rollup_daily;
    - anything else: the base table.
    """
    if where.needs_base_table():
        return StatsSource.LIQUIDATIONS
    by_asset = bool(dims & _ASSET_DIMS) or (
        where.collateral_asset is not None or where.debt_asset is not None
    )
    by_liquidator = StatsDimension.LIQUIDATOR in dims or where.liquidator is not None
    hours = _aligned(where.time_from, "hour") and _aligned(where.time_to, "hour")
    days = _aligned(where.time_from, "day") and _aligned(where.time_to, "day")
    daily = days and StatsDimension.HOUR not in dims
    if not by_asset and not by_liquidator:
        if daily:
            return StatsSource.CHAIN_ROLLUP_DAILY
        return StatsSource.CHAIN_ROLLUP_HOURLY if hours else StatsSource.LIQUIDATIONS
    if not daily or (by_asset and by_liquidator):
        return StatsSource.LIQUIDATIONS
    return StatsSource.LIQUIDATION_ROLLUP_DAY if by_asset else StatsSource.LIQUIDATOR_ROLLUP_DAILY


def _months_between(a: datetime, b: datetime) -> int:
    return (b.year - a.year) * 12 + (b.month - a.month)


def check_bucket_count(
    time_from: datetime | None, time_to: datetime | None, unit: str | None
) -> None:
    """Refuse, before touching the database, a bounded range with too many `unit` buckets
    (see time_unit)."""
    if unit is None or time_from is None or time_to is None or time_to <= time_from:
        return
    span = time_to - time_from
    if unit == "hour":
        buckets = span // timedelta(hours=1) + 1
    elif unit == "day":
        buckets = span // timedelta(days=1) + 1
    elif unit == "week":
        buckets = span // timedelta(days=7) + 2
    else:
        buckets = _months_between(time_from.astimezone(UTC), time_to.astimezone(UTC)) + 1
    if buckets > MAX_GROUPED_ROWS:
        raise ApiError(
            f"timeFrom..timeTo spans {buckets:,} {unit} buckets; at most "
            f"{MAX_GROUPED_ROWS:,} per query: narrow the range or group by a longer period",
            LIMIT_EXCEEDED,
        )


def check_row_count(n: int) -> None:
    """Refuse a grouped answer of more than MAX_GROUPED_ROWS rows (the builders below fetch
    one more, to tell)."""
    if n > MAX_GROUPED_ROWS:
        raise ApiError(
            f"this grouping produces more than {MAX_GROUPED_ROWS:,} rows: narrow the filter "
            "(time range, chains) or group by fewer or coarser dimensions",
            LIMIT_EXCEEDED,
        )


STATS = """
WITH g AS (
    SELECT {chain} AS chain_id, {market} AS market, {period} AS period,
           {collateral} AS collateral_asset, {debt} AS debt_asset, {liquidator} AS liquidator,
           {measures}
    FROM {source}
    WHERE {where}
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 3, 1, 2, 4, 5, 6
    LIMIT {limit}
)
SELECT g.*, ca.symbol AS collateral_symbol, ca.decimals AS collateral_decimals,
       da.symbol AS debt_symbol, da.decimals AS debt_decimals
FROM g
LEFT JOIN assets ca ON ca.chain_id = g.chain_id AND ca.address = g.collateral_asset
LEFT JOIN assets da ON da.chain_id = g.chain_id AND da.address = g.debt_asset
ORDER BY g.period, g.chain_id, g.market, g.collateral_asset, g.debt_asset, g.liquidator
"""

# Without an asset dimension there is no asset metadata to join: one plain GROUP BY.
STATS_WITHOUT_ASSETS = """
SELECT {chain} AS chain_id, {market} AS market, {period} AS period,
       {collateral} AS collateral_asset, {debt} AS debt_asset, {liquidator} AS liquidator,
       {measures},
       NULL::text AS collateral_symbol, NULL::integer AS collateral_decimals,
       NULL::text AS debt_symbol, NULL::integer AS debt_decimals
FROM {source}
WHERE {where}
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 3, 1, 2, 4, 5, 6
LIMIT {limit}
"""

STATS_MEASURES_ROLLUP = """sum(r.liquidation_count) AS liquidation_count,
           sum(r.debt_usd) AS debt_usd, sum(r.collateral_usd) AS collateral_usd,
           sum(r.svr_count) AS svr_count, sum(r.svr_debt_usd) AS svr_debt_usd,
           sum(r.bonus_usd) AS bonus_usd, sum(r.protocol_fee_usd) AS protocol_fee_usd"""

# svr: true keeps the SVR part of each measure, svr: false the rest (total minus SVR part).
STATS_MEASURES_ROLLUP_SVR = """sum(r.svr_count) AS liquidation_count,
           sum(r.svr_debt_usd) AS debt_usd, sum(r.svr_collateral_usd) AS collateral_usd,
           sum(r.svr_count) AS svr_count, sum(r.svr_debt_usd) AS svr_debt_usd,
           sum(r.svr_bonus_usd) AS bonus_usd, sum(r.svr_protocol_fee_usd) AS protocol_fee_usd"""

STATS_MEASURES_ROLLUP_NOT_SVR = """sum(r.liquidation_count - r.svr_count) AS liquidation_count,
           sum(r.debt_usd - r.svr_debt_usd) AS debt_usd,
           sum(r.collateral_usd - r.svr_collateral_usd) AS collateral_usd,
           0 AS svr_count, 0 AS svr_debt_usd,
           sum(r.bonus_usd - r.svr_bonus_usd) AS bonus_usd,
           sum(r.protocol_fee_usd - r.svr_protocol_fee_usd) AS protocol_fee_usd"""

STATS_MEASURES_ROLLUP_BY_SVR = {
    None: STATS_MEASURES_ROLLUP,
    True: STATS_MEASURES_ROLLUP_SVR,
    False: STATS_MEASURES_ROLLUP_NOT_SVR,
}

STATS_MEASURES_BASE = """count(*) AS liquidation_count,
           coalesce(sum(l.debt_usd), 0) AS debt_usd,
           coalesce(sum(l.collateral_usd), 0) AS collateral_usd,
           count(*) FILTER (WHERE l.is_svr) AS svr_count,
           coalesce(sum(l.debt_usd) FILTER (WHERE l.is_svr), 0) AS svr_debt_usd,
           coalesce(sum(l.bonus_usd), 0) AS bonus_usd,
           coalesce(sum(l.protocol_fee_usd), 0) AS protocol_fee_usd"""

STATS_FROM = {
    StatsSource.CHAIN_ROLLUP_HOURLY: "chain_rollup_hourly r",
    StatsSource.CHAIN_ROLLUP_DAILY: "chain_rollup_daily r",
    StatsSource.LIQUIDATION_ROLLUP_DAY: "liquidation_rollup r",
    StatsSource.LIQUIDATOR_ROLLUP_DAILY: "liquidator_rollup_daily r",
    StatsSource.LIQUIDATIONS: "liquidations l",
}

# Rollup condition fragments (alias r). Bounds are whole buckets here (see stats_source),
# so a bucket start in [from, to) is exactly a block_time in [from, to). A rollup row
# without a liquidation of the asked-for kind is left out, as GROUP BY over rows would.
R_CHAINS = "r.chain_id = ANY({p}::integer[])"
R_MARKETS = "r.market = ANY({p}::text[])"
R_COLLATERAL = "r.collateral_asset = {p}"
R_DEBT = "r.debt_asset = {p}"
R_LIQUIDATOR = "r.liquidator = {p}"
R_BUCKET_FROM = "r.bucket >= {p}::timestamptz"
R_BUCKET_TO = "r.bucket < {p}::timestamptz"
R_SVR = {True: "r.svr_count > 0", False: "r.liquidation_count > r.svr_count"}

PERIOD = "date_trunc('{unit}', {column}, 'UTC')"
NO_CHAIN = "NULL::integer"
NO_PERIOD = "NULL::timestamptz"
NO_TEXT = "NULL::text"


def _rollup_conditions(where: LiquidationWhere, p: _Params) -> list[str]:
    conditions = _bound(
        p,
        [
            (R_CHAINS, _array(where.chain_ids)),
            (R_MARKETS, _array(where.markets)),
            (R_COLLATERAL, where.collateral_asset),
            (R_DEBT, where.debt_asset),
            (R_LIQUIDATOR, where.liquidator),
            (R_BUCKET_FROM, where.time_from),
            (R_BUCKET_TO, where.time_to),
        ],
    )
    if where.svr is not None:
        conditions.append(R_SVR[where.svr])
    return conditions


def liquidation_stats(
    where: LiquidationWhere, dims: frozenset[StatsDimension], source: StatsSource
) -> Sql:
    """Grouped totals; returns at most MAX_GROUPED_ROWS + 1 rows (one more means too many)."""
    p = _Params()
    base = source is StatsSource.LIQUIDATIONS
    alias = "l" if base else "r"
    time_column = "l.block_time" if base else "r.bucket"
    conditions = _liquidation_conditions(where, p) if base else _rollup_conditions(where, p)
    unit = time_unit(dims)
    template = STATS if dims & _ASSET_DIMS else STATS_WITHOUT_ASSETS
    text = template.format(
        chain=f"{alias}.chain_id" if StatsDimension.CHAIN in dims else NO_CHAIN,
        market=f"{alias}.market" if StatsDimension.MARKET in dims else NO_TEXT,
        period=PERIOD.format(unit=unit, column=time_column) if unit else NO_PERIOD,
        collateral=(
            f"{alias}.collateral_asset" if StatsDimension.COLLATERAL_ASSET in dims else NO_TEXT
        ),
        debt=f"{alias}.debt_asset" if StatsDimension.DEBT_ASSET in dims else NO_TEXT,
        liquidator=f"{alias}.liquidator" if StatsDimension.LIQUIDATOR in dims else NO_TEXT,
        measures=STATS_MEASURES_BASE if base else STATS_MEASURES_ROLLUP_BY_SVR[where.svr],
        source=STATS_FROM[source],
        where=_where(conditions),
        limit=p(MAX_GROUPED_ROWS + 1),
    )
    return Sql(text, tuple(p.values))


# --------------------------------------------------------------------------------------
# SVR revenue (svr_revenue_rollup_daily)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SvrWhere:
    chain_ids: tuple[int, ...] | None = None
    markets: tuple[str, ...] | None = None
    aggregator: str | None = None
    time_from: datetime | None = None
    time_to: datetime | None = None


# A recapture of no liquidation has market '' in the rollup: never one of `markets` (a
# market name is not empty), and null when grouped by MARKET.
SVR_REVENUE = """
SELECT {chain} AS chain_id, {market} AS market, {period} AS period,
       {aggregator} AS aggregator,
       sum(r.svr_liquidation_count) AS svr_liquidation_count,
       sum(r.svr_liquidated_usd) AS svr_liquidated_usd,
       sum(r.recapture_count) AS recapture_count,
       sum(r.recaptured_usd) AS recaptured_usd,
       sum(r.aave_usd) AS aave_usd,
       sum(r.chainlink_usd) AS chainlink_usd,
       sum(r.bonus_usd) AS bonus_usd,
       sum(r.unsold_updates) AS unsold_updates
FROM svr_revenue_rollup_daily r
WHERE {where}
GROUP BY 1, 2, 3, 4
ORDER BY 3, 1, 2, 4
LIMIT {limit}
"""

R_AGGREGATOR = "r.aggregator = {p}"


def svr_revenue(where: SvrWhere, dims: frozenset[SvrRevenueDimension]) -> Sql:
    """Grouped SVR revenue; bounds must be whole UTC days (the rollup is daily)."""
    for name, t in (("timeFrom", where.time_from), ("timeTo", where.time_to)):
        if not _aligned(t, "day"):
            raise ApiError(
                f"svrRevenue is kept per UTC day: {name} must be midnight UTC "
                f"(e.g. 2026-02-01T00:00:00Z)"
            )
    p = _Params()
    conditions = _bound(
        p,
        [
            (R_CHAINS, _array(where.chain_ids)),
            (R_MARKETS, _array(where.markets)),
            (R_AGGREGATOR, where.aggregator),
            (R_BUCKET_FROM, where.time_from),
            (R_BUCKET_TO, where.time_to),
        ],
    )
    unit = time_unit(dims)
    text = SVR_REVENUE.format(
        chain="r.chain_id" if SvrRevenueDimension.CHAIN in dims else NO_CHAIN,
        market="nullif(r.market, '')" if SvrRevenueDimension.MARKET in dims else NO_TEXT,
        period=PERIOD.format(unit=unit, column="r.bucket") if unit else NO_PERIOD,
        aggregator="r.aggregator" if SvrRevenueDimension.AGGREGATOR in dims else NO_TEXT,
        where=_where(conditions),
        limit=p(MAX_GROUPED_ROWS + 1),
    )
    return Sql(text, tuple(p.values))


# --------------------------------------------------------------------------------------
# Liquidators and borrowers
# --------------------------------------------------------------------------------------

# Per liquidator: count, debt and bonus USD, its chains. From liquidator_rollup_daily when
# the filter allows (stats_source with LIQUIDATOR grouped), else from the base table; the
# SVR part of each measure answers `svr`, as in liquidationStats.
LIQUIDATOR_MEASURES_ROLLUP = {
    None: "sum(r.liquidation_count) AS liquidation_count, sum(r.debt_usd) AS debt_usd,"
    " sum(r.bonus_usd) AS bonus_usd",
    True: "sum(r.svr_count) AS liquidation_count, sum(r.svr_debt_usd) AS debt_usd,"
    " sum(r.svr_bonus_usd) AS bonus_usd",
    False: "sum(r.liquidation_count - r.svr_count) AS liquidation_count,"
    " sum(r.debt_usd - r.svr_debt_usd) AS debt_usd,"
    " sum(r.bonus_usd - r.svr_bonus_usd) AS bonus_usd",
}
LIQUIDATOR_MEASURES_BASE = (
    "count(*) AS liquidation_count, coalesce(sum(l.debt_usd), 0) AS debt_usd,"
    " coalesce(sum(l.bonus_usd), 0) AS bonus_usd"
)
LIQUIDATOR_SORT = {
    LiquidatorOrder.COUNT: "g.liquidation_count",
    LiquidatorOrder.DEBT_USD: "g.debt_usd",
    LiquidatorOrder.BONUS_USD: "g.bonus_usd",
}

# The page: groups ordered by the measure (descending; ties by address), after the cursor.
# First and last seen are exact, from the base table for the page's liquidators only
# (index liquidations_liquidator), under the same filter.
LIQUIDATORS_PAGE = """
WITH g AS (
    SELECT {alias}.liquidator, {measures},
           array_agg(DISTINCT {alias}.chain_id ORDER BY {alias}.chain_id) AS chain_ids
    FROM {source}
    WHERE {where}
    GROUP BY {alias}.liquidator
), page AS (
    SELECT g.*, {sort}::numeric AS sort_key FROM g
    WHERE {after}
    ORDER BY {sort} DESC, g.liquidator
    LIMIT {limit}
)
SELECT page.*, seen.first_seen, seen.last_seen
FROM page
CROSS JOIN LATERAL (
    SELECT min(l.block_time) AS first_seen, max(l.block_time) AS last_seen
    FROM liquidations l
    WHERE l.liquidator = page.liquidator AND {base_where}
) seen
ORDER BY page.sort_key DESC, page.liquidator
"""
LIQUIDATORS_AFTER = "({sort} < {k}::numeric OR ({sort} = {k}::numeric AND g.liquidator > {a}))"

# Concentration of the debt repaid among liquidators: how many, the top five's share and
# the Herfindahl index (sum of squared shares), both to 18 places.
LIQUIDATOR_CONCENTRATION = """
WITH g AS (
    SELECT {alias}.liquidator, {measures}
    FROM {source}
    WHERE {where}
    GROUP BY {alias}.liquidator
), t AS (
    SELECT count(*) AS unique_liquidators, coalesce(sum(liquidation_count), 0) AS liquidation_count,
           coalesce(sum(debt_usd), 0) AS debt_usd,
           coalesce(sum(debt_usd * debt_usd), 0) AS debt_squares
    FROM g
)
SELECT t.unique_liquidators, t.liquidation_count, t.debt_usd, top.top5_debt_usd,
       CASE WHEN t.debt_usd > 0 THEN round(top.top5_debt_usd / t.debt_usd, 18) END AS top5_share,
       CASE WHEN t.debt_usd > 0 THEN round(t.debt_squares / (t.debt_usd * t.debt_usd), 18)
       END AS herfindahl
FROM t, (SELECT coalesce(sum(debt_usd), 0) AS top5_debt_usd
         FROM (SELECT debt_usd FROM g ORDER BY debt_usd DESC LIMIT 5) five) top
"""

# One borrower across chains and markets (index liquidations_user).
BORROWER_STATS = """
SELECT l.chain_id, GROUPING(l.chain_id) = 1 AS total, count(*) AS liquidation_count,
       coalesce(sum(l.debt_usd), 0) AS debt_usd, coalesce(sum(l.bonus_usd), 0) AS bonus_usd,
       coalesce(sum(l.collateral_seized_usd), 0) AS collateral_seized_usd,
       min(l.block_time) AS first_seen, max(l.block_time) AS last_seen
FROM liquidations l
WHERE l.user_address = $1 AND ($2::integer[] IS NULL OR l.chain_id = ANY($2::integer[]))
GROUP BY GROUPING SETS ((l.chain_id), ())
ORDER BY total, l.chain_id
"""


@dataclass(frozen=True)
class LiquidatorPosition:
    """The liquidator a page starts after: its sort value and address."""

    key: Decimal
    liquidator: str


def _liquidator_source(where: LiquidationWhere) -> StatsSource:
    return stats_source(where, frozenset({StatsDimension.LIQUIDATOR}))


def _grouped_by_liquidator(where: LiquidationWhere, p: _Params) -> dict[str, str]:
    """The FROM, WHERE and measures of a GROUP BY liquidator under this filter."""
    source = _liquidator_source(where)
    base = source is StatsSource.LIQUIDATIONS
    conditions = _liquidation_conditions(where, p) if base else _rollup_conditions(where, p)
    return {
        "alias": "l" if base else "r",
        "source": STATS_FROM[source],
        "where": _where(conditions),
        "measures": LIQUIDATOR_MEASURES_BASE if base else LIQUIDATOR_MEASURES_ROLLUP[where.svr],
    }


def liquidators_page(
    where: LiquidationWhere,
    order: LiquidatorOrder,
    limit: int,
    after: LiquidatorPosition | None,
) -> tuple[Sql, StatsSource]:
    p = _Params()
    parts = _grouped_by_liquidator(where, p)
    sort = LIQUIDATOR_SORT[order]
    after_sql = (
        LIQUIDATORS_AFTER.format(sort=sort, k=p(after.key), a=p(after.liquidator))
        if after is not None
        else "TRUE"
    )
    text = LIQUIDATORS_PAGE.format(
        **parts,
        sort=sort,
        after=after_sql,
        limit=p(limit),
        base_where=_where(_liquidation_conditions(where, p)),
    )
    return Sql(text, tuple(p.values)), _liquidator_source(where)


def liquidator_concentration(where: LiquidationWhere) -> tuple[Sql, StatsSource]:
    p = _Params()
    text = LIQUIDATOR_CONCENTRATION.format(**_grouped_by_liquidator(where, p))
    return Sql(text, tuple(p.values)), _liquidator_source(where)


def borrower_stats(user: str, chain_ids: tuple[int, ...] | None) -> Sql:
    return Sql(BORROWER_STATS, (user, _array(chain_ids)))


# Deficits (bad debt of V3.3+ pools; the base table, small)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeficitWhere:
    """A validated deficit filter; `time_to` exclusive."""

    chain_ids: tuple[int, ...] | None = None
    markets: tuple[str, ...] | None = None
    kind: str | None = None
    user: str | None = None
    asset: str | None = None
    tx_hash: str | None = None
    time_from: datetime | None = None
    time_to: datetime | None = None

    def fingerprint(self) -> str:
        """Bound into cursors, as LiquidationWhere's; prefixed so that a cursor of one
        listing is never taken for one of the other."""
        blob = json.dumps({"deficits": [str(getattr(self, f.name)) for f in fields(self)]})
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


D_CHAINS = "d.chain_id = ANY({p}::integer[])"
D_MARKETS = "d.market = ANY({p}::text[])"
D_KIND = "d.kind = {p}"
D_USER = "d.user_address = {p}"
D_ASSET = "d.asset = {p}"
D_TX_HASH = "d.tx_hash = {p}"
D_TIME_FROM = "d.block_time >= {p}::timestamptz"
D_TIME_TO = "d.block_time < {p}::timestamptz"
D_ORDER_BY = "d.block_time DESC, d.chain_id, d.tx_hash, d.log_index"
D_KEYSET_AFTER = (
    "d.block_time <= {k}::timestamptz AND (d.block_time < {k}::timestamptz"
    " OR (d.chain_id, d.tx_hash, d.log_index) > ({c}::integer, {h}::text, {i}::integer))"
)

DEFICITS_PAGE = """
SELECT d.*, a.symbol AS asset_symbol, a.decimals AS asset_decimals,
       (d.block_number <= cs.finalized_block) IS TRUE AS finalized
FROM (
    SELECT d.* FROM deficits d
    WHERE {where}
    ORDER BY {order_by}
    LIMIT {limit}
) d
LEFT JOIN assets a ON a.chain_id = d.chain_id AND a.address = d.asset
LEFT JOIN chain_status cs ON cs.chain_id = d.chain_id
ORDER BY {order_by}
"""


def deficits_page(where: DeficitWhere, limit: int, after: KeysetPosition | None) -> Sql:
    """Newest first, keyset on (block_time, chain_id, tx_hash, log_index) (deficits_time)."""
    p = _Params()
    conditions = _bound(
        p,
        [
            (D_CHAINS, _array(where.chain_ids)),
            (D_MARKETS, _array(where.markets)),
            (D_KIND, where.kind),
            (D_USER, where.user),
            (D_ASSET, where.asset),
            (D_TX_HASH, where.tx_hash),
            (D_TIME_FROM, where.time_from),
            (D_TIME_TO, where.time_to),
        ],
    )
    if after is not None:
        conditions.append(
            D_KEYSET_AFTER.format(
                k=p(after.key), c=p(after.chain_id), h=p(after.tx_hash), i=p(after.log_index)
            )
        )
    text = DEFICITS_PAGE.format(where=_where(conditions), order_by=D_ORDER_BY, limit=p(limit))
    return Sql(text, tuple(p.values))


# The bad debt the liquidations of each liquidationStats group booked: deficits created,
# through the liquidation of the same transaction they belong to, grouped and filtered by
# that liquidation's columns exactly as the statistics are (one join by primary key).
DEFICIT_STATS = """
SELECT {chain} AS chain_id, {market} AS market, {period} AS period,
       {collateral} AS collateral_asset, {debt} AS debt_asset, {liquidator} AS liquidator,
       coalesce(sum(d.usd), 0) AS deficit_usd
FROM deficits d
JOIN liquidations l ON l.chain_id = d.chain_id AND l.tx_hash = d.tx_hash
    AND l.log_index = d.liquidation_log_index
WHERE d.kind = 'created' AND {where}
GROUP BY 1, 2, 3, 4, 5, 6
LIMIT {limit}
"""


def deficit_stats(where: LiquidationWhere, dims: frozenset[StatsDimension]) -> Sql:
    """deficitUsd per liquidationStats group (same keys as liquidation_stats' rows)."""
    p = _Params()
    unit = time_unit(dims)
    text = DEFICIT_STATS.format(
        chain="l.chain_id" if StatsDimension.CHAIN in dims else NO_CHAIN,
        market="l.market" if StatsDimension.MARKET in dims else NO_TEXT,
        period=PERIOD.format(unit=unit, column="l.block_time") if unit else NO_PERIOD,
        collateral="l.collateral_asset" if StatsDimension.COLLATERAL_ASSET in dims else NO_TEXT,
        debt="l.debt_asset" if StatsDimension.DEBT_ASSET in dims else NO_TEXT,
        liquidator="l.liquidator" if StatsDimension.LIQUIDATOR in dims else NO_TEXT,
        where=_where(_liquidation_conditions(where, p)),
        limit=p(MAX_GROUPED_ROWS + 1),
    )
    return Sql(text, tuple(p.values))


# --------------------------------------------------------------------------------------
# HTTP caching: the version of what the API reads (api.heads)
# --------------------------------------------------------------------------------------

# One row per chain: what moves whenever the indexer writes (the checkpoints and the
# indexed block move in every batch's transaction and in a rollback; the finalized block
# and the halt with the heads), what only indexerStatus reads (head, error, updated_at),
# and the settled block (at or below both the finalized and the indexed block: it can no
# longer change) with a lower bound of its time: the newest block time kept at or below it
# (block times never decrease along a chain, so a row not yet seen is at least that late).
HEADS = """
SELECT s.chain_id, s.head_block, s.finalized_block, s.indexed_block, s.halted,
       s.last_error, s.updated_at, c.checkpoints,
       least(s.finalized_block, s.indexed_block) AS settled_block,
       greatest(
           (SELECT max(l.block_time) FROM liquidations l WHERE l.chain_id = s.chain_id
              AND l.block_number <= least(s.finalized_block, s.indexed_block)),
           (SELECT max(b.block_time) FROM blocks b WHERE b.chain_id = s.chain_id
              AND b.block_number <= least(s.finalized_block, s.indexed_block))
       ) AS settled_time
FROM chain_status s
LEFT JOIN LATERAL (
    SELECT string_agg(concat_ws('/', k.stream, k.block_number, k.block_hash, k.updated_at),
                      ',' ORDER BY k.stream) AS checkpoints
    FROM checkpoints k WHERE k.chain_id = s.chain_id
) c ON TRUE
ORDER BY s.chain_id
"""


def heads() -> Sql:
    return Sql(HEADS)


# --------------------------------------------------------------------------------------
# Bulk export (api.export): the liquidations filter, every matching row, oldest first
# --------------------------------------------------------------------------------------

# (name in the file, kind, expression). Kinds: int, text, bool, time, amount (NUMERIC(78,0),
# exported as its exact decimal text), usd (unconstrained NUMERIC). Lowercase addresses as
# stored (checksumming millions of addresses would dominate the export's CPU time).
EXPORT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("chain_id", "int", "l.chain_id"),
    ("market", "text", "l.market"),
    ("block_number", "int", "l.block_number"),
    ("block_hash", "text", "l.block_hash"),
    ("block_time", "time", "l.block_time"),
    ("tx_hash", "text", "l.tx_hash"),
    ("tx_index", "int", "l.tx_index"),
    ("log_index", "int", "l.log_index"),
    ("pool", "text", "l.pool"),
    ("user", "text", "l.user_address"),
    ("liquidator", "text", "l.liquidator"),
    ("collateral_asset", "text", "l.collateral_asset"),
    ("collateral_symbol", "text", "ca.symbol"),
    ("debt_asset", "text", "l.debt_asset"),
    ("debt_symbol", "text", "da.symbol"),
    ("debt_to_cover", "amount", "l.debt_to_cover"),
    ("liquidated_collateral_amount", "amount", "l.liquidated_collateral_amount"),
    ("protocol_fee_amount", "amount", "l.protocol_fee_amount"),
    ("receive_atoken", "bool", "l.receive_atoken"),
    ("collateral_price", "amount", "l.collateral_price"),
    ("debt_price", "amount", "l.debt_price"),
    ("collateral_usd", "usd", "l.collateral_usd"),
    ("debt_usd", "usd", "l.debt_usd"),
    ("finalized", "bool", "(l.block_number <= cs.finalized_block) IS TRUE"),
    ("svr", "bool", "l.is_svr"),
    ("svr_aggregator", "text", "l.svr_aggregator"),
    ("svr_round_id", "int", "l.svr_round_id"),
    ("svr_oracle_tx_hash", "text", "l.svr_oracle_tx_hash"),
    ("svr_recaptured_usd", "usd", "l.svr_recaptured_usd"),
    ("svr_aave_usd", "usd", "l.svr_aave_usd"),
    ("svr_chainlink_usd", "usd", "l.svr_chainlink_usd"),
    ("svr_bid_count", "int", "l.svr_bid_count"),
    ("svr_best_losing_bid_usd", "usd", "l.svr_best_losing_bid_usd"),
)

# As text, the way a CSV file spells it: exact decimals (NUMERIC's text is never in
# exponent notation), ISO 8601 UTC times whatever the session's time zone, true/false.
_AS_TEXT = {
    "int": "({e})::text",
    "text": "{e}",
    "bool": "({e})::text",
    "time": "(to_json({e} AT TIME ZONE 'UTC') #>> '{{}}') || 'Z'",
    "amount": "({e})::text",
    "usd": "({e})::text",
}
# Native, for Parquet: only NUMERIC(78,0) amounts go as text (they exceed decimal128).
_AS_NATIVE = {"amount": "({e})::text"}

LIQUIDATIONS_EXPORT = """
SELECT {columns}
FROM liquidations l{joins}
WHERE {where}
ORDER BY {order_by}
"""


def liquidations_export(where: LiquidationWhere, *, as_text: bool) -> Sql:
    """Every liquidation the filter matches, oldest first (the same total order as
    BLOCK_TIME_ASC pages), for a server-side cursor."""
    p = _Params()
    spell = _AS_TEXT if as_text else _AS_NATIVE
    columns = ",\n       ".join(
        f'{spell.get(kind, "{e}").format(e=expr)} AS "{name}"'
        for name, kind, expr in EXPORT_COLUMNS
    )
    text = LIQUIDATIONS_EXPORT.format(
        columns=columns,
        joins=LIQUIDATION_JOINS,
        where=_where(_liquidation_conditions(where, p)),
        order_by=ORDER_BY[LiquidationOrder.BLOCK_TIME_ASC],
    )
    return Sql(text, tuple(p.values))


# Per USD column of an export: the largest scale and magnitude among the matching rows, to
# pick a Parquet decimal128(38, s) that holds every value exactly (or text when none does).
LIQUIDATIONS_EXPORT_SCALES = """
SELECT {measures}
FROM liquidations l
WHERE {where}
"""


def liquidations_export_scales(where: LiquidationWhere) -> Sql:
    p = _Params()
    measures = ",\n       ".join(
        f'max(scale({expr})) AS "{name}_scale", max(abs({expr})) AS "{name}_max"'
        for name, kind, expr in EXPORT_COLUMNS
        if kind == "usd"
    )
    text = LIQUIDATIONS_EXPORT_SCALES.format(
        measures=measures, where=_where(_liquidation_conditions(where, p))
    )
    return Sql(text, tuple(p.values))


# Inside an export's transaction: a longer budget than a GraphQL statement's, for the
# cursor's fetches and the client's pauses between them.
EXPORT_TIMEOUTS = """
SELECT set_config('statement_timeout', $1, true),
       set_config('idle_in_transaction_session_timeout', $2, true)
"""


def export_timeouts(statement_ms: int, idle_ms: int) -> Sql:
    return Sql(EXPORT_TIMEOUTS, (str(statement_ms), str(idle_ms)))


# --------------------------------------------------------------------------------------
# Live push (api.live): the rows one transaction wrote, as its notification names them
# --------------------------------------------------------------------------------------

# The (sub)transaction's rows in the block range: `xmin` tells them from rows of the same
# blocks written by another transaction (a rollback and a new branch in between). The
# range narrows the scan to the (chain_id, block_number) index first.
LIVE_LIQUIDATIONS = (
    "SELECT "
    + LIQUIDATION_COLUMNS
    + "\nFROM liquidations l"
    + LIQUIDATION_JOINS
    + "\nWHERE l.chain_id = $1 AND l.block_number BETWEEN $2 AND $3 AND l.xmin::text = $4"
    + "\nORDER BY l.block_number, l.tx_index, l.log_index"
)

LIVE_RECAPTURES = """
SELECT r.chain_id, r.block_number, r.block_hash, r.block_time, r.tx_hash, r.source_index,
       r.recipient, r.token, r.amount, r.amount_usd, r.aggregator, r.market,
       r.liquidation_ids, r.aave_bps, r.aave_usd, r.chainlink_usd, r.split_rule
FROM svr_recaptures r
WHERE r.chain_id = $1 AND r.block_number BETWEEN $2 AND $3 AND r.xmin::text = $4
ORDER BY r.block_number, r.tx_hash, r.source_index
"""

# Retractions carry no finalized flag: a deleted row was above the ancestor, never final.
LIVE_RETRACTIONS = """
SELECT id, chain_id, tx_hash, log_index, block_number, block_hash, block_time, market,
       collateral_asset, debt_asset, user_address, liquidator, is_svr, debt_usd,
       collateral_usd, false AS finalized
FROM liquidation_retractions
WHERE id BETWEEN $1 AND $2 AND xmin::text = $3
ORDER BY id
"""


def live_liquidations(chain_id: int, lo: int, hi: int, xid: str) -> Sql:
    return Sql(LIVE_LIQUIDATIONS, (chain_id, lo, hi, xid))


def live_recaptures(chain_id: int, lo: int, hi: int, xid: str) -> Sql:
    return Sql(LIVE_RECAPTURES, (chain_id, lo, hi, xid))


def live_retractions(lo: int, hi: int, xid: str) -> Sql:
    return Sql(LIVE_RETRACTIONS, (lo, hi, xid))
