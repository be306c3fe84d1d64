"""The GraphQL object types, and how a database row becomes one."""

from __future__ import annotations

from datetime import datetime
from decimal import Context, Decimal
from functools import lru_cache

import asyncpg
import strawberry

from api import queries
from api.context import Info
from api.enums import Chain, DeficitKind, StatsSource, chain_of
from api.pagination import Cursor, encode_cursor
from api.queries import LiquidationWhere
from api.scalars import Address, BigInt


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


@lru_cache(maxsize=4096)
def make_asset(chain_id: int, address: str, symbol: str | None, decimals: int | None) -> Asset:
    """Kept per value (a page names the same few assets on every row); the objects are
    only read."""
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
    bonus_usd: Decimal | None = strawberry.field(
        description="The liquidation bonus (collateral USD minus debt USD): the value the "
        "auction competed for. Null when a price is unknown."
    )
    recapture_rate: Decimal | None = strawberry.field(
        description="recapturedUsd / bonusUsd; null when either is unknown or the bonus is "
        "not positive."
    )
    bid_count: int | None = strawberry.field(
        description="Atlas: the bids its metacall's auction logged for Aave (SolverTxResult "
        "of Aave's DAppControl, rejected ones included). Null on Ethereum, where bids are "
        "not on chain."
    )
    best_losing_bid_usd: Decimal | None = strawberry.field(
        description="Atlas: the highest bid that did not win, in USD at the block; null when "
        "every bid won or none was logged."
    )
    _twin: strawberry.Private[tuple[int, str, int] | None] = None
    _block: strawberry.Private[tuple[int, datetime] | None] = None

    @strawberry.field(
        description="How long the SVR report reached Aave before the public route brought "
        "the same report (the round's PrimaryFeedUnlocked), in seconds; null until then, or "
        "where the aggregator's build emits none."
    )
    async def lead_seconds(self, info: Info) -> int | None:
        twin = await self._public_twin(info)
        if twin is None or self._block is None:
            return None
        return int((twin[1] - self._block[1]).total_seconds())

    @strawberry.field(description="The same lead, in blocks.")
    async def lead_blocks(self, info: Info) -> int | None:
        twin = await self._public_twin(info)
        if twin is None or self._block is None:
            return None
        return twin[0] - self._block[0]

    async def _public_twin(self, info: Info) -> tuple[int, datetime] | None:
        if self._twin is None:
            return None
        return await info.context.twins().load(self._twin)


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
    market: str = strawberry.field(
        description="The pool's market, as the configuration names it (core, prime, ...)."
    )
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
    bonus_usd: Decimal | None = strawberry.field(
        description="What the liquidator made: collateralUsd - debtUsd; null without both prices."
    )
    protocol_fee_usd: Decimal | None = strawberry.field(
        description="protocolFeeAmount in USD at the collateral's price; null when either "
        "is unknown."
    )
    collateral_seized_usd: Decimal | None = strawberry.field(
        description="Everything taken from the borrower: collateralUsd + protocolFeeUsd."
    )
    closed_fully: bool | None = strawberry.field(
        description="Whether the borrower owed none of the debt asset after this call (the "
        "debt tokens' balances at the end of the block, for the block's last liquidation of "
        "that borrower and asset); null when unknown."
    )
    finalized: bool = strawberry.field(
        description="Whether the block is at or below the chain's finalized block (a "
        "non-final row may still disappear in a reorg)."
    )
    svr: SvrAttribution | None = strawberry.field(description="Null when not an SVR liquidation.")
    _price_age_key: strawberry.Private[queries.PriceAgeKey | None] = None

    @strawberry.field(
        description="Blocks between this liquidation and the last price update before it "
        "(in block and log order) of the feeds behind its collateral and debt assets in its "
        "market: 0 for a back-run in the update's block. Only indexed feeds (the SVR "
        "aggregators behind Aave's sources) are seen: null when neither asset has one, or "
        "none updated since it was indexed."
    )
    async def blocks_since_price_update(self, info: Info) -> int | None:
        if self._price_age_key is None:
            return None
        return await info.context.price_ages().load(self._price_age_key)


# Wide enough for any uint256 (78 digits): scaling an answer by 1e-8 is then exact.
_PRICE_CONTEXT = Context(prec=100)


def _price(raw: Decimal | None) -> Decimal | None:
    """An 8-decimal raw oracle answer as USD, with exactly 8 decimals."""
    if raw is None:
        return None
    return Decimal(int(raw)).scaleb(-8, _PRICE_CONTEXT)


RATE_PLACES = Decimal("1e-18")


def recapture_rate(recaptured: Decimal | None, bonus: Decimal | None) -> Decimal | None:
    """Recaptured value over the bonus it was competed for, to 18 places (None without a
    positive bonus)."""
    if recaptured is None or bonus is None or bonus <= 0:
        return None
    return (recaptured / bonus).quantize(RATE_PLACES)


def make_liquidation(row: asyncpg.Record) -> Liquidation:
    chain_id = row["chain_id"]
    svr = None
    if row["is_svr"]:
        bonus = row["bonus_usd"]
        svr = SvrAttribution(
            aggregator=Address(row["svr_aggregator"]) if row["svr_aggregator"] else None,
            round_id=BigInt(row["svr_round_id"]) if row["svr_round_id"] is not None else None,
            oracle_tx_hash=row["svr_oracle_tx_hash"],
            recaptured_usd=row["svr_recaptured_usd"],
            aave_usd=row["svr_aave_usd"],
            chainlink_usd=row["svr_chainlink_usd"],
            bonus_usd=bonus,
            recapture_rate=recapture_rate(row["svr_recaptured_usd"], bonus),
            _twin=(chain_id, row["svr_aggregator"], row["svr_round_id"])
            if row["svr_aggregator"] and row["svr_round_id"] is not None
            else None,
            _block=(row["block_number"], row["block_time"]),
            bid_count=row["svr_bid_count"],
            best_losing_bid_usd=row["svr_best_losing_bid_usd"],
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
        market=row["market"],
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
        bonus_usd=row["bonus_usd"],
        protocol_fee_usd=row["protocol_fee_usd"],
        collateral_seized_usd=row["collateral_seized_usd"],
        closed_fully=row["closed_fully"],
        finalized=row["finalized"],
        svr=svr,
        _price_age_key=(
            chain_id,
            row["market"],
            row["collateral_asset"],
            row["debt_asset"],
            row["block_number"],
            row["log_index"],
        ),
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
    market: str | None = strawberry.field(description="Set when grouped by MARKET.")
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
    bonus_usd: Decimal = strawberry.field(
        description="Liquidation bonuses: collateral received minus debt repaid, in USD."
    )
    protocol_fee_usd: Decimal = strawberry.field(description="Fees to the Aave treasury, USD.")
    collateral_seized_usd: Decimal = strawberry.field(
        description="Collateral taken from borrowers: collateralUsd + protocolFeeUsd."
    )
    source: StatsSource = strawberry.field(
        description="The table that answered the query (the same on every row)."
    )
    deficit_usd: Decimal = strawberry.field(
        default=Decimal(0),
        description="Bad debt the group's liquidations left (DeficitCreated of V3.3+ pools in "
        "the liquidation's transaction), in USD at the block; always from the `deficits` table.",
    )


@strawberry.type(description="SVR revenue for one group. A dimension not grouped is null.")
class SvrRevenueRow:
    chain: Chain | None
    chain_id: int | None
    market: str | None = strawberry.field(
        description="Null when not grouped by MARKET, or for recaptures that belong to no "
        "liquidation."
    )
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
    bonus_usd: Decimal = strawberry.field(
        description="The liquidation bonus of the SVR liquidations (collateral USD minus debt "
        "USD): the value their auctions competed for."
    )
    recapture_rate: Decimal | None = strawberry.field(
        description="recapturedUsd / bonusUsd (value-weighted); null without a bonus."
    )
    unsold_updates: int = strawberry.field(
        description="New SVR reports of feeds behind Aave sources that nobody bought (no "
        "refund followed on Ethereum, no winning bid in the metacall). Not kept per market: "
        "counted in the rows without one."
    )


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


@strawberry.type(
    description="One price source of an asset in a market's AaveOracle, from the block of its "
    "AssetSourceUpdated event until the asset's next source took over, with the aggregator "
    "found behind it and whether that is an SVR DualAggregator."
)
class SvrFeed:
    chain: Chain | None
    chain_id: int
    market: str
    oracle: Address = strawberry.field(description="The market's AaveOracle.")
    asset: Asset
    source: Address = strawberry.field(description="The source the AaveOracle was given.")
    aggregator: Address | None = strawberry.field(
        description="The aggregator behind the source (through proxies and CAPO adapters); "
        "null when nothing answered."
    )
    is_svr: bool = strawberry.field(description="Whether the aggregator is an SVR one.")
    type_and_version: str | None = strawberry.field(
        description="The aggregator's typeAndVersion(), if it has one."
    )
    from_block: int = strawberry.field(description="The block the source took over in.")
    to_block: int | None = strawberry.field(
        description="The block the asset's next source took over in; null while in force."
    )


def make_svr_feed(row: asyncpg.Record) -> SvrFeed:
    chain_id = row["chain_id"]
    return SvrFeed(
        chain=chain_of(chain_id),
        chain_id=chain_id,
        market=row["market"],
        oracle=Address(row["oracle"]),
        asset=make_asset(chain_id, row["asset"], row["asset_symbol"], row["asset_decimals"]),
        source=Address(row["source"]),
        aggregator=Address(row["aggregator"]) if row["aggregator"] is not None else None,
        is_svr=row["is_svr"],
        type_and_version=row["type_and_version"],
        from_block=row["from_block"],
        to_block=row["to_block"],
    )


@strawberry.type(description="One liquidator's totals under the filter.")
class LiquidatorStats:
    address: Address
    count: int
    debt_usd: Decimal = strawberry.field(description="Debt repaid, USD.")
    bonus_usd: Decimal = strawberry.field(description="Bonuses earned (collateral - debt), USD.")
    chain_ids: list[int]
    first_seen: datetime = strawberry.field(description="Its first liquidation's block time.")
    last_seen: datetime = strawberry.field(description="Its last liquidation's block time.")

    @strawberry.field(description="Null for a chain id outside the enum.")
    def chains(self) -> list[Chain | None]:
        return [chain_of(c) for c in self.chain_ids]


@strawberry.type
class LiquidatorEdge:
    node: LiquidatorStats
    cursor: str = strawberry.field(description="Pass as `after` to continue after this row.")


@strawberry.type(description="A page of liquidators, ordered by a measure, largest first.")
class LiquidatorConnection:
    edges: list[LiquidatorEdge]
    page_info: PageInfo
    source: StatsSource = strawberry.field(description="The table that answered.")


@strawberry.type(description="How concentrated liquidating is, by debt repaid.")
class LiquidatorConcentration:
    unique_liquidators: int
    count: int = strawberry.field(description="Liquidations.")
    debt_usd: Decimal = strawberry.field(description="Debt repaid by all of them, USD.")
    top5_debt_usd: Decimal = strawberry.field(
        name="top5DebtUsd", description="Debt repaid by the five largest, USD."
    )
    top5_share: Decimal | None = strawberry.field(
        name="top5Share", description="top5DebtUsd / debtUsd, to 18 places; null without debt."
    )
    herfindahl: Decimal | None = strawberry.field(
        description="Sum over liquidators of their squared share of the debt repaid (1: one "
        "liquidator does everything), to 18 places; null without debt."
    )
    source: StatsSource


@strawberry.type(description="One borrower's liquidations on one chain.")
class BorrowerChainStats:
    chain_id: int
    count: int
    debt_usd: Decimal = strawberry.field(description="Debt repaid by liquidators, USD.")
    bonus_usd: Decimal = strawberry.field(description="Bonuses the borrower paid, USD.")
    collateral_seized_usd: Decimal
    first_seen: datetime
    last_seen: datetime

    @strawberry.field
    def chain(self) -> Chain | None:
        return chain_of(self.chain_id)


@strawberry.type(description="How often a borrower was liquidated and what it cost, per chain.")
class BorrowerStats:
    user: Address
    count: int
    debt_usd: Decimal
    bonus_usd: Decimal
    collateral_seized_usd: Decimal
    chains: list[BorrowerChainStats]


@strawberry.type(
    description="A deficit event of an Aave V3.3+ pool: bad debt booked when a liquidation "
    "left a borrower with debt and no collateral (CREATED), or covered by the Umbrella "
    "(COVERED)."
)
class Deficit:
    id: strawberry.ID = strawberry.field(description='"chainId:txHash:logIndex".')
    chain: Chain | None
    chain_id: int
    block_number: int
    block_hash: str
    block_time: datetime
    tx_hash: str
    tx_index: int
    log_index: int
    pool: Address
    market: str
    kind: DeficitKind
    user: Address | None = strawberry.field(description="CREATED: the borrower.")
    asset: Asset = strawberry.field(description="The reserve the deficit is booked in.")
    amount: BigInt = strawberry.field(description="In the asset's smallest units.")
    caller: Address | None = strawberry.field(description="COVERED: who covered it.")
    price: Decimal | None = strawberry.field(description="The asset's USD price at the block.")
    usd: Decimal | None = strawberry.field(description="amount x price; null without a price.")
    liquidation_id: strawberry.ID | None = strawberry.field(
        description="CREATED: the liquidation of the same transaction it belongs to."
    )
    finalized: bool


def make_deficit(row: asyncpg.Record) -> Deficit:
    chain_id, tx = row["chain_id"], row["tx_hash"]
    link = row["liquidation_log_index"]
    return Deficit(
        id=strawberry.ID(f"{chain_id}:{tx}:{row['log_index']}"),
        chain=chain_of(chain_id),
        chain_id=chain_id,
        block_number=row["block_number"],
        block_hash=row["block_hash"],
        block_time=row["block_time"],
        tx_hash=tx,
        tx_index=row["tx_index"],
        log_index=row["log_index"],
        pool=Address(row["pool"]),
        market=row["market"],
        kind=DeficitKind(row["kind"]),
        user=Address(row["user_address"]) if row["user_address"] else None,
        asset=make_asset(chain_id, row["asset"], row["asset_symbol"], row["asset_decimals"]),
        amount=BigInt(int(row["amount"])),
        caller=Address(row["caller"]) if row["caller"] else None,
        price=_price(row["price"]),
        usd=row["usd"],
        liquidation_id=strawberry.ID(f"{chain_id}:{tx}:{link}") if link is not None else None,
        finalized=row["finalized"],
    )


@strawberry.type
class DeficitEdge:
    node: Deficit
    position: strawberry.Private[Cursor]
    key: strawberry.Private[bytes]

    @strawberry.field(description="Pass as `after` to continue after this row.")
    def cursor(self) -> str:
        return encode_cursor(self.position, self.key)


@strawberry.type(description="A page of deficit events, newest first (keyset pagination).")
class DeficitConnection:
    edges: list[DeficitEdge]
    page_info: PageInfo


@strawberry.type(
    description="One payment recaptured from an SVR auction (an MEV-Share refund on Ethereum, "
    "a winning bid elsewhere), with the liquidations it belongs to and its Aave / Chainlink "
    "split."
)
class SvrRecapture:
    id: strawberry.ID = strawberry.field(description='"chainId:txHash:sourceIndex".')
    chain: Chain | None
    chain_id: int
    block_number: int
    block_hash: str
    block_time: datetime
    tx_hash: str
    source_index: int = strawberry.field(
        description="The log index of the payment, or -1 for a native transfer carried by the "
        "transaction itself (the MEV-Share refund)."
    )
    recipient: Address
    token: Address | None = strawberry.field(description="Null: the chain's native coin.")
    amount: BigInt = strawberry.field(description="In the token's smallest units.")
    amount_usd: Decimal | None
    aggregator: Address | None = strawberry.field(description="The SVR feed it is tied to.")
    market: str | None = strawberry.field(
        description="Its first liquidation's market; null when it belongs to none."
    )
    liquidation_ids: list[strawberry.ID]
    aave_bps: int = strawberry.field(description="Aave's share, in basis points.")
    aave_usd: Decimal | None
    chainlink_usd: Decimal | None
    split_rule: str


def make_svr_recapture(row: asyncpg.Record) -> SvrRecapture:
    chain_id = row["chain_id"]
    return SvrRecapture(
        id=strawberry.ID(f"{chain_id}:{row['tx_hash']}:{row['source_index']}"),
        chain=chain_of(chain_id),
        chain_id=chain_id,
        block_number=row["block_number"],
        block_hash=row["block_hash"],
        block_time=row["block_time"],
        tx_hash=row["tx_hash"],
        source_index=row["source_index"],
        recipient=Address(row["recipient"]),
        token=Address(row["token"]) if row["token"] is not None else None,
        amount=BigInt(int(row["amount"])),
        amount_usd=row["amount_usd"],
        aggregator=Address(row["aggregator"]) if row["aggregator"] else None,
        market=row["market"],
        liquidation_ids=[strawberry.ID(i) for i in row["liquidation_ids"]],
        aave_bps=row["aave_bps"],
        aave_usd=row["aave_usd"],
        chainlink_usd=row["chainlink_usd"],
        split_rule=row["split_rule"],
    )


@strawberry.type(
    description="A liquidation a reorg removed: it was committed (so a query or a "
    "subscription may have shown it) and its block is no longer on the chain."
)
class LiquidationRemoval:
    id: strawberry.ID = strawberry.field(description='"chainId:txHash:logIndex".')
    chain: Chain | None
    chain_id: int
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str = strawberry.field(description="The hash of the block that is gone.")


def make_liquidation_removal(row: asyncpg.Record) -> LiquidationRemoval:
    chain_id = row["chain_id"]
    return LiquidationRemoval(
        id=strawberry.ID(f"{chain_id}:{row['tx_hash']}:{row['log_index']}"),
        chain=chain_of(chain_id),
        chain_id=chain_id,
        tx_hash=row["tx_hash"],
        log_index=row["log_index"],
        block_number=row["block_number"],
        block_hash=row["block_hash"],
    )
