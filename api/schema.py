"""GraphQL types and resolvers (Strawberry).

Conventions of the schema:
- Addresses are accepted in any letter case and returned EIP-55 checksummed (scalar
  Address); hashes are returned as lowercase 0x-hex strings.
- Raw token amounts are exact integers serialised as decimal strings (scalar BigInt); USD
  values are exact decimals serialised as strings (scalar Decimal): no floats anywhere.
- Every object carries `chainId`; `chain` is the Chain enum for the five production chains
  and null for any other chain id (a local devnet, say).
- Times are UTC. A DateTime without an offset is read as UTC. `timeFrom` is inclusive,
  `timeTo` exclusive; `blockFrom` and `blockTo` are both inclusive.
- An Asset the indexer has no metadata for (no row in `assets`) still has its chain and
  address; its `symbol` and `decimals` are null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal, InvalidOperation, localcontext
from enum import Enum
from functools import lru_cache
from typing import Annotated, Any, NewType

import asyncpg
import strawberry
from dateutil.parser import isoparse
from eth_hash.auto import keccak
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api import queries
from api.db import Database
from api.errors import LIMIT_EXCEEDED, ApiError
from api.limits import DEFAULT_FIRST, MAX_FIRST, limit_extensions
from api.metrics import ApiMetrics
from api.pagination import Cursor, decode_cursor, encode_cursor
from api.queries import MAX_GROUPED_ROWS, Dim, KeysetPosition, LiquidationWhere, Order, SvrWhere

# --------------------------------------------------------------------------------------
# Scalars
# --------------------------------------------------------------------------------------

Address = NewType("Address", str)
BigInt = NewType("BigInt", int)

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
_MAX_DECIMAL_CHARS = 80
_MAX_USD = Decimal(10) ** 30


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_address(value: object) -> str:
    """A 0x-prefixed 20-byte hex address in any letter case, returned lowercase."""
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise GraphQLError(
            f"invalid address {_short(value)!r}: expected 0x followed by 40 hex digits"
        )
    return value.lower()


_UPPER_NIBBLES = frozenset("89abcdef")


@lru_cache(maxsize=65536)
def checksum(address: str) -> str:
    """EIP-55, computed directly: a page holds up to 3 addresses per row, most of them
    distinct, and eth_utils' validation and normalisation cost more than the hash."""
    if not _ADDRESS.match(address):
        return address  # not a 20-byte hex string (should not happen); shown as stored
    body = address[2:].lower()
    digest = keccak(body.encode("ascii")).hex()[:40]
    return "0x" + "".join(
        c.upper() if d in _UPPER_NIBBLES else c for c, d in zip(body, digest, strict=True)
    )


def _serialize_address(value: object) -> str:
    return checksum(str(value))


def _serialize_bigint(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value.to_integral_exact(), "f")
    return str(int(value))  # type: ignore[call-overload]


def _parse_bigint(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,78}", value):
        return int(value)
    raise GraphQLError(f"invalid BigInt {_short(value)!r}: expected an integer as a string")


def _serialize_decimal(value: object) -> str:
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    return format(value, "f")


def _parse_decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise GraphQLError(f"invalid Decimal {_short(value)!r}: expected a number as a string")
    text = str(value)
    if len(text) > _MAX_DECIMAL_CHARS:
        raise GraphQLError(f"invalid Decimal: longer than {_MAX_DECIMAL_CHARS} characters")
    try:
        result = Decimal(text)
    except InvalidOperation:
        raise GraphQLError(
            f'invalid Decimal {_short(value)!r}: expected a number such as "1000.50"'
        ) from None
    if not result.is_finite():
        raise GraphQLError(f"invalid Decimal {_short(value)!r}: must be finite")
    return result


def _serialize_datetime(value: object) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {value!r}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.isoformat()


def _parse_datetime(value: object) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise GraphQLError(
            f"invalid DateTime {_short(value)!r}: expected ISO 8601 such as 2026-02-01T00:00:00Z"
        )
    try:
        return isoparse(value)
    except (ValueError, OverflowError):
        raise GraphQLError(
            f"invalid DateTime {_short(value)!r}: expected ISO 8601 such as 2026-02-01T00:00:00Z"
        ) from None


SCALARS: dict[object, Any] = {
    Address: strawberry.scalar(
        name="Address",
        description="A 20-byte address: accepted in any letter case, returned EIP-55 checksummed.",
        serialize=_serialize_address,
        parse_value=parse_address,
    ),
    BigInt: strawberry.scalar(
        name="BigInt",
        description="An exact integer of any size (a uint256 token amount), as a decimal string.",
        serialize=_serialize_bigint,
        parse_value=_parse_bigint,
    ),
    datetime: strawberry.scalar(
        name="DateTime",
        description="An ISO 8601 date-time, e.g. 2026-02-01T00:00:00Z. Without an offset it "
        "is read as UTC; returned in UTC.",
        serialize=_serialize_datetime,
        parse_value=_parse_datetime,
    ),
    Decimal: strawberry.scalar(
        name="Decimal",
        description="An exact decimal number as a string in plain notation (no exponent), "
        'e.g. "12345.678901". Inputs also accept numbers.',
        serialize=_serialize_decimal,
        parse_value=_parse_decimal,
    ),
}

# --------------------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------------------


@strawberry.enum(description="A chain the indexer covers (by EVM chain id).")
class Chain(Enum):
    ETHEREUM = "ETHEREUM"
    POLYGON = "POLYGON"
    AVALANCHE = "AVALANCHE"
    ARBITRUM = "ARBITRUM"
    BASE = "BASE"


CHAIN_ID: dict[Chain, int] = {
    Chain.ETHEREUM: 1,
    Chain.POLYGON: 137,
    Chain.AVALANCHE: 43114,
    Chain.ARBITRUM: 42161,
    Chain.BASE: 8453,
}
CHAIN_BY_ID: dict[int, Chain] = {v: k for k, v in CHAIN_ID.items()}


def chain_of(chain_id: int | None) -> Chain | None:
    return CHAIN_BY_ID.get(chain_id) if chain_id is not None else None


@strawberry.enum(description="Orders of `liquidations`; ties break on (chainId, txHash, logIndex).")
class LiquidationOrder(Enum):
    BLOCK_TIME_DESC = "BLOCK_TIME_DESC"
    BLOCK_TIME_ASC = "BLOCK_TIME_ASC"
    DEBT_USD_DESC = "DEBT_USD_DESC"
    DEBT_USD_ASC = "DEBT_USD_ASC"


@strawberry.enum(
    description="A grouping of `liquidationStats`. At most one of HOUR, DAY, WEEK (ISO, from "
    "Monday), MONTH; periods are UTC. COLLATERAL_ASSET and DEBT_ASSET imply CHAIN (an asset "
    "is an address on one chain)."
)
class StatsDimension(Enum):
    CHAIN = "CHAIN"
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    COLLATERAL_ASSET = "COLLATERAL_ASSET"
    DEBT_ASSET = "DEBT_ASSET"
    LIQUIDATOR = "LIQUIDATOR"


@strawberry.enum(description="A grouping of `svrRevenue` (periods are UTC days, weeks, months).")
class SvrRevenueDimension(Enum):
    CHAIN = "CHAIN"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    AGGREGATOR = "AGGREGATOR"


@strawberry.enum(description="The table that answered a `liquidationStats` query.")
class StatsSource(Enum):
    CHAIN_ROLLUP_HOURLY = strawberry.enum_value(
        "CHAIN_ROLLUP_HOURLY", description="Totals per chain and hour."
    )
    CHAIN_ROLLUP_DAILY = strawberry.enum_value(
        "CHAIN_ROLLUP_DAILY", description="Totals per chain and day."
    )
    LIQUIDATION_ROLLUP_HOUR = strawberry.enum_value(
        "LIQUIDATION_ROLLUP_HOUR",
        deprecation_reason="No longer returned: hours are kept per chain (CHAIN_ROLLUP_HOURLY).",
    )
    LIQUIDATION_ROLLUP_DAY = strawberry.enum_value(
        "LIQUIDATION_ROLLUP_DAY", description="Totals per chain, day and asset pair."
    )
    LIQUIDATOR_ROLLUP_DAILY = strawberry.enum_value(
        "LIQUIDATOR_ROLLUP_DAILY", description="Totals per chain, day and liquidator."
    )
    LIQUIDATIONS = strawberry.enum_value(
        "LIQUIDATIONS", description="The liquidations themselves (no rollup holds the answer)."
    )


# --------------------------------------------------------------------------------------
# Context
# --------------------------------------------------------------------------------------


@dataclass
class ApiContext:
    db: Database
    cursor_key: bytes
    request: Any = None
    response: Any = None


Info = strawberry.Info[ApiContext, None]

# --------------------------------------------------------------------------------------
# Object types
# --------------------------------------------------------------------------------------


@strawberry.type(description="A token on one chain.")
class Asset:
    chain: Chain | None = strawberry.field(description="Null for a chain outside the enum.")
    chain_id: int
    address: Address
    symbol: str | None = strawberry.field(
        description="Null when the indexer has no metadata for this token."
    )
    decimals: int | None = strawberry.field(
        description="Null when the indexer has no metadata for this token."
    )


def make_asset(chain_id: int, address: str, symbol: str | None, decimals: int | None) -> Asset:
    return Asset(
        chain=chain_of(chain_id),
        chain_id=chain_id,
        address=Address(address),
        symbol=symbol,
        decimals=decimals,
    )


@strawberry.type(
    description="How a liquidation relates to Chainlink SVR: it back-ran a secondary-route "
    "(SVR) price update of `aggregator`, and part of the recaptured bid is this "
    "liquidation's share, split between Aave and Chainlink."
)
class SvrAttribution:
    aggregator: Address | None = strawberry.field(description="The SVR DualAggregator.")
    round_id: BigInt | None = strawberry.field(description="The aggregator round it followed.")
    oracle_tx_hash: str | None = strawberry.field(description="The SVR price update's tx.")
    recaptured_usd: Decimal | None = strawberry.field(
        description="This liquidation's share of the recaptured value, in USD."
    )
    aave_usd: Decimal | None = strawberry.field(description="Aave's part of recapturedUsd.")
    chainlink_usd: Decimal | None = strawberry.field(
        description="Chainlink's part of recapturedUsd."
    )


@strawberry.type(description="One Aave LiquidationCall event.")
class Liquidation:
    id: strawberry.ID = strawberry.field(description='"chainId:txHash:logIndex".')
    chain: Chain | None = strawberry.field(description="Null for a chain outside the enum.")
    chain_id: int
    block_number: int
    block_hash: str
    block_time: datetime
    tx_hash: str
    tx_index: int
    log_index: int
    pool: Address = strawberry.field(description="The Aave Pool that emitted the event.")
    user: Address = strawberry.field(description="The borrower whose position was liquidated.")
    liquidator: Address
    collateral_asset: Asset
    debt_asset: Asset
    debt_to_cover: BigInt = strawberry.field(
        description="Debt repaid, in the debt token's smallest units."
    )
    liquidated_collateral_amount: BigInt = strawberry.field(
        description="Collateral received by the liquidator (without the protocol fee), in "
        "the collateral token's smallest units."
    )
    protocol_fee_amount: BigInt | None = strawberry.field(
        description="Collateral (aToken units) sent to the Aave treasury, when known."
    )
    receive_a_token: bool = strawberry.field(
        name="receiveAToken", description="Whether the liquidator took aTokens."
    )
    collateral_price: Decimal | None = strawberry.field(
        description="USD per whole collateral token at this block (AaveOracle answer / 1e8)."
    )
    debt_price: Decimal | None = strawberry.field(
        description="USD per whole debt token at this block (AaveOracle answer / 1e8)."
    )
    collateral_usd: Decimal | None = strawberry.field(
        description="liquidatedCollateralAmount in USD at this block; null without a price."
    )
    debt_usd: Decimal | None = strawberry.field(
        description="debtToCover in USD at this block; null without a price."
    )
    finalized: bool = strawberry.field(
        description="Whether the block is at or below the chain's finalized block (a "
        "non-final row may still disappear in a reorg)."
    )
    svr: SvrAttribution | None = strawberry.field(description="Null when not an SVR liquidation.")


# Wide enough for any uint256 (78 digits): scaling an answer by 1e-8 is then exact.
_PRICE_CONTEXT = Context(prec=100)


def _price(raw: Decimal | None) -> Decimal | None:
    """An 8-decimal raw oracle answer as USD, with exactly 8 decimals."""
    if raw is None:
        return None
    return Decimal(int(raw)).scaleb(-8, _PRICE_CONTEXT)


def make_liquidation(row: asyncpg.Record) -> Liquidation:
    chain_id = row["chain_id"]
    svr = None
    if row["is_svr"]:
        svr = SvrAttribution(
            aggregator=Address(row["svr_aggregator"]) if row["svr_aggregator"] else None,
            round_id=BigInt(row["svr_round_id"]) if row["svr_round_id"] is not None else None,
            oracle_tx_hash=row["svr_oracle_tx_hash"],
            recaptured_usd=row["svr_recaptured_usd"],
            aave_usd=row["svr_aave_usd"],
            chainlink_usd=row["svr_chainlink_usd"],
        )
    fee = row["protocol_fee_amount"]
    return Liquidation(
        id=strawberry.ID(f"{chain_id}:{row['tx_hash']}:{row['log_index']}"),
        chain=chain_of(chain_id),
        chain_id=chain_id,
        block_number=row["block_number"],
        block_hash=row["block_hash"],
        block_time=row["block_time"],
        tx_hash=row["tx_hash"],
        tx_index=row["tx_index"],
        log_index=row["log_index"],
        pool=Address(row["pool"]),
        user=Address(row["user_address"]),
        liquidator=Address(row["liquidator"]),
        collateral_asset=make_asset(
            chain_id, row["collateral_asset"], row["collateral_symbol"], row["collateral_decimals"]
        ),
        debt_asset=make_asset(
            chain_id, row["debt_asset"], row["debt_symbol"], row["debt_decimals"]
        ),
        debt_to_cover=BigInt(int(row["debt_to_cover"])),
        liquidated_collateral_amount=BigInt(int(row["liquidated_collateral_amount"])),
        protocol_fee_amount=BigInt(int(fee)) if fee is not None else None,
        receive_a_token=row["receive_atoken"],
        collateral_price=_price(row["collateral_price"]),
        debt_price=_price(row["debt_price"]),
        collateral_usd=row["collateral_usd"],
        debt_usd=row["debt_usd"],
        finalized=row["finalized"],
        svr=svr,
    )


@strawberry.type
class LiquidationEdge:
    node: Liquidation
    position: strawberry.Private[Cursor]
    key: strawberry.Private[bytes]

    @strawberry.field(description="Pass as `after` to continue after this row.")
    def cursor(self) -> str:
        return encode_cursor(self.position, self.key)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="True when this page was asked for with `after`."
    )
    start_cursor: str | None
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; null on an empty page."
    )


@strawberry.type(description="A page of liquidations (keyset pagination, never OFFSET).")
class LiquidationConnection:
    edges: list[LiquidationEdge]
    page_info: PageInfo
    where: strawberry.Private[LiquidationWhere]

    @strawberry.field(
        description="How many liquidations match the filter (all pages, not just the ones "
        "after the cursor). Computed only when selected: it counts rows, so it costs more "
        "than a page."
    )
    async def total_count(self, info: Info) -> int:
        value = await info.context.db.fetchval(queries.liquidations_count(self.where))
        return int(value)


@strawberry.type(
    description="Liquidation totals for one group. A dimension that is not grouped is null."
)
class LiquidationStatsRow:
    chain: Chain | None = strawberry.field(description="Set when grouped by CHAIN.")
    chain_id: int | None
    period: datetime | None = strawberry.field(
        description="Start of the UTC hour/day/week/month, when grouped by one."
    )
    collateral_asset: Asset | None
    debt_asset: Asset | None
    liquidator: Address | None
    count: int
    debt_usd: Decimal
    collateral_usd: Decimal
    svr_count: int
    svr_debt_usd: Decimal
    source: StatsSource = strawberry.field(
        description="The table that answered the query (the same on every row)."
    )


@strawberry.type(description="SVR revenue for one group. A dimension not grouped is null.")
class SvrRevenueRow:
    chain: Chain | None
    chain_id: int | None
    period: datetime | None
    aggregator: Address | None = strawberry.field(
        description="Null when not grouped by AGGREGATOR, or for recaptures not tied to one."
    )
    svr_liquidation_count: int
    svr_liquidated_usd: Decimal = strawberry.field(description="Debt USD of SVR liquidations.")
    recapture_count: int
    recaptured_usd: Decimal = strawberry.field(description="Value recaptured from searchers.")
    aave_usd: Decimal = strawberry.field(description="Aave's share of recapturedUsd.")
    chainlink_usd: Decimal = strawberry.field(description="Chainlink's share of recapturedUsd.")


@strawberry.type(description="What the indexer knows of one chain.")
class ChainStatus:
    chain: Chain | None
    chain_id: int
    name: str
    head_block: int | None
    indexed_block: int | None
    finalized_block: int | None
    lag_blocks: int | None = strawberry.field(description="headBlock - indexedBlock.")
    halted: bool
    updated_at: datetime
    last_error: str | None


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------

MAX_CHAIN_IDS = 64


@strawberry.input(description="All given conditions must hold.")
class LiquidationFilter:
    chains: list[Chain] | None = strawberry.field(default=None, description="Any of these.")
    chain_ids: list[int] | None = strawberry.field(
        default=None, description="Any of these chain ids (also chains outside the enum)."
    )
    user: Address | None = strawberry.field(default=None, description="The borrower.")
    liquidator: Address | None = None
    collateral_asset: Address | None = None
    debt_asset: Address | None = None
    tx_hash: str | None = None
    svr: bool | None = strawberry.field(
        default=None, description="true: SVR liquidations only; false: the others."
    )
    finalized: bool | None = None
    time_from: datetime | None = strawberry.field(default=None, description="Inclusive.")
    time_to: datetime | None = strawberry.field(default=None, description="Exclusive.")
    block_from: int | None = strawberry.field(default=None, description="Inclusive.")
    block_to: int | None = strawberry.field(default=None, description="Inclusive.")
    min_debt_usd: Decimal | None = None
    min_collateral_usd: Decimal | None = None


@strawberry.input
class SvrRevenueFilter:
    chains: list[Chain] | None = None
    chain_ids: list[int] | None = None
    aggregator: Address | None = None
    time_from: datetime | None = strawberry.field(
        default=None, description="Inclusive; midnight UTC (the data is daily)."
    )
    time_to: datetime | None = strawberry.field(
        default=None, description="Exclusive; midnight UTC (the data is daily)."
    )


# --------------------------------------------------------------------------------------
# Input normalisation
# --------------------------------------------------------------------------------------


def _chain_ids(chains: list[Chain] | None, chain_ids: list[int] | None) -> tuple[int, ...] | None:
    if chains is None and chain_ids is None:
        return None
    ids = {CHAIN_ID[c] for c in chains or ()}
    for cid in chain_ids or ():
        if cid <= 0:
            raise ApiError(f"chainIds: {cid} is not a chain id (must be positive)")
        ids.add(cid)
    if len(ids) > MAX_CHAIN_IDS:
        raise ApiError(f"chainIds: at most {MAX_CHAIN_IDS} chains")
    return tuple(sorted(ids))


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _time_range(
    time_from: datetime | None, time_to: datetime | None
) -> tuple[datetime | None, datetime | None]:
    try:
        start, end = _utc(time_from), _utc(time_to)
    except (OverflowError, ValueError):
        raise ApiError("timeFrom/timeTo out of range") from None
    if start is not None and end is not None and start >= end:
        raise ApiError("timeFrom must be before timeTo (timeTo is exclusive)")
    return start, end


def _usd(name: str, value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if not value.is_finite() or value < 0 or value >= _MAX_USD:
        raise ApiError(f"{name} must be a number from 0 to 1e30")
    with localcontext(prec=100):
        return value.quantize(Decimal("1e-18"))


def _tx_hash(value: str | None) -> str | None:
    if value is None:
        return None
    if not _TX_HASH.match(value):
        raise ApiError(f"invalid txHash {_short(value)!r}: expected 0x followed by 64 hex digits")
    return value.lower()


def liquidation_where(f: LiquidationFilter | None) -> LiquidationWhere:
    if f is None:
        return LiquidationWhere()
    for name, block in (("blockFrom", f.block_from), ("blockTo", f.block_to)):
        if block is not None and block < 0:
            raise ApiError(f"{name} must be >= 0")
    if f.block_from is not None and f.block_to is not None and f.block_from > f.block_to:
        raise ApiError("blockFrom must be <= blockTo (both are inclusive)")
    time_from, time_to = _time_range(f.time_from, f.time_to)
    return LiquidationWhere(
        chain_ids=_chain_ids(f.chains, f.chain_ids),
        user=f.user,
        liquidator=f.liquidator,
        collateral_asset=f.collateral_asset,
        debt_asset=f.debt_asset,
        tx_hash=_tx_hash(f.tx_hash),
        svr=f.svr,
        finalized=f.finalized,
        time_from=time_from,
        time_to=time_to,
        block_from=f.block_from,
        block_to=f.block_to,
        min_debt_usd=_usd("minDebtUsd", f.min_debt_usd),
        min_collateral_usd=_usd("minCollateralUsd", f.min_collateral_usd),
    )


def svr_where(f: SvrRevenueFilter | None) -> SvrWhere:
    if f is None:
        return SvrWhere()
    time_from, time_to = _time_range(f.time_from, f.time_to)
    return SvrWhere(
        chain_ids=_chain_ids(f.chains, f.chain_ids),
        aggregator=f.aggregator,
        time_from=time_from,
        time_to=time_to,
    )


def _parse_liquidation_id(value: str) -> tuple[int, str, int]:
    parts = value.split(":") if len(value) <= 100 else []
    if len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit():
        chain_id, log_index = int(parts[0]), int(parts[2])
        if 0 < chain_id < 2**31 and log_index < 2**31 and _TX_HASH.match(parts[1]):
            return chain_id, parts[1].lower(), log_index
    raise ApiError(f'invalid liquidation id {_short(value)!r}: expected "chainId:txHash:logIndex"')


def _int(value: object) -> int:
    return int(value) if value is not None else 0  # type: ignore[call-overload]


def _dec(value: Decimal | None) -> Decimal:
    return value if value is not None else Decimal(0)


# --------------------------------------------------------------------------------------
# Query
# --------------------------------------------------------------------------------------

_ORDER = {o: Order[o.name] for o in LiquidationOrder}
_STATS_DIM = {d: Dim[d.name] for d in StatsDimension}
_SVR_DIM = {d: Dim[d.name] for d in SvrRevenueDimension}


@strawberry.type
class Query:
    @strawberry.field(description="Liquidations, newest first by default, one page at a time.")
    async def liquidations(
        self,
        info: Info,
        filter: LiquidationFilter | None = None,
        first: Annotated[
            int, strawberry.argument(description=f"Page size, 0 to {MAX_FIRST}.")
        ] = DEFAULT_FIRST,
        after: Annotated[
            str | None, strawberry.argument(description="An endCursor from a previous page.")
        ] = None,
        order_by: LiquidationOrder = LiquidationOrder.BLOCK_TIME_DESC,
    ) -> LiquidationConnection:
        if not 0 <= first <= MAX_FIRST:
            raise ApiError(
                f"first must be between 0 and {MAX_FIRST} (got {first}); page with `after`",
                LIMIT_EXCEEDED,
            )
        ctx = info.context
        where = liquidation_where(filter)
        order = _ORDER[order_by]
        scope = where.fingerprint()
        position: KeysetPosition | None = None
        if after is not None:
            position = decode_cursor(after, ctx.cursor_key, order=order, scope=scope)
        # one row more than asked for tells whether there is a next page
        rows = await ctx.db.fetch(queries.liquidations_page(where, order, first + 1, position))
        has_next = len(rows) > first
        edges = [
            LiquidationEdge(
                node=make_liquidation(row),
                position=Cursor(
                    order,
                    KeysetPosition(
                        row["sort_key"], row["chain_id"], row["tx_hash"], row["log_index"]
                    ),
                    scope,
                ),
                key=ctx.cursor_key,
            )
            for row in rows[:first]
        ]
        page = PageInfo(
            has_next_page=has_next,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor() if edges else None,
            end_cursor=edges[-1].cursor() if edges else None,
        )
        return LiquidationConnection(edges=edges, page_info=page, where=where)

    @strawberry.field(description='One liquidation by id ("chainId:txHash:logIndex").')
    async def liquidation(self, info: Info, id: strawberry.ID) -> Liquidation | None:
        chain_id, tx_hash, log_index = _parse_liquidation_id(str(id))
        row = await info.context.db.fetchrow(
            queries.liquidation_by_id(chain_id, tx_hash, log_index)
        )
        return make_liquidation(row) if row is not None else None

    @strawberry.field(
        description="Liquidation totals grouped by the given dimensions, one row per non-empty "
        "group, ordered by period, chain, assets, liquidator; without groupBy, one row with "
        "the totals. Served from the rollups (their cost does not grow with the number of "
        "liquidations); filters on user, txHash, finalized, blocks or minimum USD, time bounds "
        "that are not whole hours (whole days when assets or the liquidator are grouped or "
        "filtered), HOUR with assets or liquidator, and assets together with liquidator are "
        f"answered from the base table instead (see `source`). At most {MAX_GROUPED_ROWS:,} "
        "rows."
    )
    async def liquidation_stats(
        self,
        info: Info,
        filter: LiquidationFilter | None = None,
        group_by: list[StatsDimension] | None = None,
    ) -> list[LiquidationStatsRow]:
        where = liquidation_where(filter)
        dims = {_STATS_DIM[d] for d in group_by or ()}
        if dims & {Dim.COLLATERAL_ASSET, Dim.DEBT_ASSET}:
            dims.add(Dim.CHAIN)
        frozen = frozenset(dims)
        tdim = queries.time_dimension(frozen)
        if tdim is not None:
            queries.check_bucket_count(where.time_from, where.time_to, tdim)
        source = queries.stats_source(where, frozen)
        rows = await info.context.db.fetch(queries.liquidation_stats(where, frozen, source))
        _check_row_count(len(rows))
        served_from = StatsSource[source.name]
        out = [
            LiquidationStatsRow(
                chain=chain_of(r["chain_id"]),
                chain_id=r["chain_id"],
                period=r["period"],
                collateral_asset=make_asset(
                    r["chain_id"],
                    r["collateral_asset"],
                    r["collateral_symbol"],
                    r["collateral_decimals"],
                )
                if r["collateral_asset"] is not None
                else None,
                debt_asset=make_asset(
                    r["chain_id"], r["debt_asset"], r["debt_symbol"], r["debt_decimals"]
                )
                if r["debt_asset"] is not None
                else None,
                liquidator=Address(r["liquidator"]) if r["liquidator"] is not None else None,
                count=_int(r["liquidation_count"]),
                debt_usd=_dec(r["debt_usd"]),
                collateral_usd=_dec(r["collateral_usd"]),
                svr_count=_int(r["svr_count"]),
                svr_debt_usd=_dec(r["svr_debt_usd"]),
                source=served_from,
            )
            for r in rows
        ]
        if not out and not dims:
            zero = Decimal(0)
            out = [
                LiquidationStatsRow(
                    chain=None,
                    chain_id=None,
                    period=None,
                    collateral_asset=None,
                    debt_asset=None,
                    liquidator=None,
                    count=0,
                    debt_usd=zero,
                    collateral_usd=zero,
                    svr_count=0,
                    svr_debt_usd=zero,
                    source=served_from,
                )
            ]
        return out

    @strawberry.field(
        description="SVR revenue (liquidations that went through SVR, value recaptured, and "
        "its Aave / Chainlink split) grouped by the given dimensions, one row per non-empty "
        "group ordered by period, chain, aggregator; without groupBy, one row with the "
        f"totals. From the daily SVR rollup. At most {MAX_GROUPED_ROWS:,} rows."
    )
    async def svr_revenue(
        self,
        info: Info,
        filter: SvrRevenueFilter | None = None,
        group_by: list[SvrRevenueDimension] | None = None,
    ) -> list[SvrRevenueRow]:
        where = svr_where(filter)
        dims = frozenset(_SVR_DIM[d] for d in group_by or ())
        tdim = queries.time_dimension(dims)
        if tdim is not None:
            queries.check_bucket_count(where.time_from, where.time_to, tdim)
        rows = await info.context.db.fetch(queries.svr_revenue(where, dims))
        _check_row_count(len(rows))
        out = [
            SvrRevenueRow(
                chain=chain_of(r["chain_id"]),
                chain_id=r["chain_id"],
                period=r["period"],
                aggregator=Address(r["aggregator"]) if r["aggregator"] else None,
                svr_liquidation_count=_int(r["svr_liquidation_count"]),
                svr_liquidated_usd=_dec(r["svr_liquidated_usd"]),
                recapture_count=_int(r["recapture_count"]),
                recaptured_usd=_dec(r["recaptured_usd"]),
                aave_usd=_dec(r["aave_usd"]),
                chainlink_usd=_dec(r["chainlink_usd"]),
            )
            for r in rows
        ]
        if not out and not dims:
            zero = Decimal(0)
            out = [
                SvrRevenueRow(
                    chain=None,
                    chain_id=None,
                    period=None,
                    aggregator=None,
                    svr_liquidation_count=0,
                    svr_liquidated_usd=zero,
                    recapture_count=0,
                    recaptured_usd=zero,
                    aave_usd=zero,
                    chainlink_usd=zero,
                )
            ]
        return out

    @strawberry.field(description="Per chain: head, indexed and finalized blocks, and lag.")
    async def indexer_status(self, info: Info) -> list[ChainStatus]:
        rows = await info.context.db.fetch(queries.chain_status())
        return [
            ChainStatus(
                chain=chain_of(r["chain_id"]),
                chain_id=r["chain_id"],
                name=r["name"],
                head_block=r["head_block"],
                indexed_block=r["indexed_block"],
                finalized_block=r["finalized_block"],
                lag_blocks=(
                    max(r["head_block"] - r["indexed_block"], 0)
                    if r["head_block"] is not None and r["indexed_block"] is not None
                    else None
                ),
                halted=r["halted"],
                updated_at=r["updated_at"],
                last_error=r["last_error"],
            )
            for r in rows
        ]

    @strawberry.field(description="Tokens the indexer has metadata for.")
    async def assets(self, info: Info, chains: list[Chain] | None = None) -> list[Asset]:
        ids = _chain_ids(chains, None)
        rows = await info.context.db.fetch(queries.assets(ids))
        return [make_asset(r["chain_id"], r["address"], r["symbol"], r["decimals"]) for r in rows]


def _check_row_count(n: int) -> None:
    if n > MAX_GROUPED_ROWS:
        raise ApiError(
            f"this grouping produces more than {MAX_GROUPED_ROWS:,} rows: narrow the filter "
            "(time range, chains) or group by fewer or coarser dimensions",
            LIMIT_EXCEEDED,
        )


class ApiSchema(strawberry.Schema):
    """Logs only what is ours to fix: MaskInternalErrors logs internal errors with their
    traceback; the caller's own errors are not worth an ERROR line each."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(metrics: ApiMetrics | None = None) -> strawberry.Schema:
    return ApiSchema(
        query=Query,
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=limit_extensions(metrics),
    )


schema = build_schema()
