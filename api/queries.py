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

from api.enums import LiquidationOrder, StatsDimension, StatsSource, SvrRevenueDimension
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
    return _bound(
        p,
        [
            (L_CHAINS, _array(w.chain_ids)),
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
           sum(r.svr_count) AS svr_count, sum(r.svr_debt_usd) AS svr_debt_usd"""

# svr: true keeps the SVR part of each measure, svr: false the rest (total minus SVR part).
STATS_MEASURES_ROLLUP_SVR = """sum(r.svr_count) AS liquidation_count,
           sum(r.svr_debt_usd) AS debt_usd, sum(r.svr_collateral_usd) AS collateral_usd,
           sum(r.svr_count) AS svr_count, sum(r.svr_debt_usd) AS svr_debt_usd"""

STATS_MEASURES_ROLLUP_NOT_SVR = """sum(r.liquidation_count - r.svr_count) AS liquidation_count,
           sum(r.debt_usd - r.svr_debt_usd) AS debt_usd,
           sum(r.collateral_usd - r.svr_collateral_usd) AS collateral_usd,
           0 AS svr_count, 0 AS svr_debt_usd"""

STATS_MEASURES_ROLLUP_BY_SVR = {
    None: STATS_MEASURES_ROLLUP,
    True: STATS_MEASURES_ROLLUP_SVR,
    False: STATS_MEASURES_ROLLUP_NOT_SVR,
}

STATS_MEASURES_BASE = """count(*) AS liquidation_count,
           coalesce(sum(l.debt_usd), 0) AS debt_usd,
           coalesce(sum(l.collateral_usd), 0) AS collateral_usd,
           count(*) FILTER (WHERE l.is_svr) AS svr_count,
           coalesce(sum(l.debt_usd) FILTER (WHERE l.is_svr), 0) AS svr_debt_usd"""

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
