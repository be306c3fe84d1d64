"""The root Query: each field checks its arguments (api.inputs), runs the SQL api.queries
builds, and turns the rows into the types of api.types."""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from api import queries
from api.context import Info
from api.enums import (
    CHAIN_ID,
    Chain,
    LiquidationOrder,
    LiquidatorOrder,
    StatsDimension,
    SvrRevenueDimension,
    chain_of,
)
from api.errors import LIMIT_EXCEEDED, ApiError
from api.inputs import (
    DeficitFilter,
    LiquidationFilter,
    SvrRevenueFilter,
    deficit_where,
    liquidation_where,
    parse_liquidation_id,
    selected_chain_ids,
    selected_markets,
    svr_where,
)
from api.limits import DEFAULT_FIRST, MAX_FIRST
from api.pagination import (
    Cursor,
    decode_cursor,
    decode_liquidator_cursor,
    encode_liquidator_cursor,
)
from api.queries import MAX_GROUPED_ROWS, KeysetPosition, Sql
from api.scalars import Address
from api.types import (
    Asset,
    BorrowerChainStats,
    BorrowerStats,
    ChainStatus,
    DeficitConnection,
    DeficitEdge,
    Liquidation,
    LiquidationConnection,
    LiquidationEdge,
    LiquidationStatsRow,
    LiquidatorConcentration,
    LiquidatorConnection,
    LiquidatorEdge,
    LiquidatorStats,
    PageInfo,
    SvrFeed,
    SvrRevenueRow,
    make_asset,
    make_deficit,
    make_liquidation,
    make_svr_feed,
    recapture_rate,
)


class _NoRows:
    """The row of totals a query without groupBy answers when nothing matched: every
    column is null, which reads as no chain, no period and zero for each measure."""

    def __getitem__(self, column: str) -> None:
        return None


_NO_ROWS: list[Any] = [_NoRows()]


async def _grouped_rows(info: Info, sql: Sql, dims: Collection[object]) -> list[Any]:
    """The rows of a grouped query, refused when too many; without groupBy there is always
    the one row of totals, even when nothing matched."""
    rows = await info.context.db.fetch(sql)
    queries.check_row_count(len(rows))
    return rows if rows or dims else _NO_ROWS


def _int(value: object) -> int:
    return int(value) if value is not None else 0  # type: ignore[call-overload]


def check_first(first: int) -> None:
    """A page size the listings accept (liquidations, liquidators, deficits)."""
    if not 0 <= first <= MAX_FIRST:
        raise ApiError(
            f"first must be between 0 and {MAX_FIRST} (got {first}); page with `after`",
            LIMIT_EXCEEDED,
        )


def _dec(value: Decimal | None) -> Decimal:
    return value if value is not None else Decimal(0)


def _stats_key(row: Any) -> tuple[object, ...]:
    """A liquidationStats group's key: its six grouping columns."""
    return tuple(
        row[c]
        for c in ("chain_id", "market", "period", "collateral_asset", "debt_asset", "liquidator")
    )


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
        check_first(first)
        ctx = info.context
        where = liquidation_where(filter)
        scope = where.fingerprint()
        position: KeysetPosition | None = None
        if after is not None:
            position = decode_cursor(after, ctx.cursor_key, order=order_by, scope=scope)
        # one row more than asked for tells whether there is a next page
        rows = await ctx.db.fetch(queries.liquidations_page(where, order_by, first + 1, position))
        has_next = len(rows) > first
        edges = [
            LiquidationEdge(
                node=make_liquidation(row),
                position=Cursor(
                    order_by,
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
        chain_id, tx_hash, log_index = parse_liquidation_id(str(id))
        row = await info.context.db.fetchrow(
            queries.liquidation_by_id(chain_id, tx_hash, log_index)
        )
        return make_liquidation(row) if row is not None else None

    @strawberry.field(
        description="Liquidation totals grouped by the given dimensions, one row per non-empty "
        "group, ordered by period, chain, market, assets, liquidator; without groupBy, one row "
        "with the totals. Served from the rollups (their cost does not grow with the number of "
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
        dims = set(group_by or ())
        if dims & {StatsDimension.COLLATERAL_ASSET, StatsDimension.DEBT_ASSET}:
            dims.add(StatsDimension.CHAIN)
        frozen = frozenset(dims)
        queries.check_bucket_count(where.time_from, where.time_to, queries.time_unit(frozen))
        source = queries.stats_source(where, frozen)
        rows = await _grouped_rows(info, queries.liquidation_stats(where, frozen, source), dims)
        deficits = {
            _stats_key(r): r["deficit_usd"]
            for r in await info.context.db.fetch(queries.deficit_stats(where, frozen))
        }
        return [
            LiquidationStatsRow(
                chain=chain_of(r["chain_id"]),
                chain_id=r["chain_id"],
                market=r["market"],
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
                bonus_usd=_dec(r["bonus_usd"]),
                protocol_fee_usd=_dec(r["protocol_fee_usd"]),
                collateral_seized_usd=_dec(r["collateral_usd"]) + _dec(r["protocol_fee_usd"]),
                source=source,
                deficit_usd=_dec(deficits.get(_stats_key(r))),
            )
            for r in rows
        ]

    @strawberry.field(
        description="Liquidators ordered by COUNT, DEBT_USD or BONUS_USD (largest first, "
        "ties by address), with their chains and first and last liquidation, one page at a "
        "time. Served from liquidator_rollup_daily where the filter allows it, as "
        "liquidationStats grouped by LIQUIDATOR is (see `source`)."
    )
    async def liquidators(
        self,
        info: Info,
        filter: LiquidationFilter | None = None,
        first: Annotated[
            int, strawberry.argument(description=f"Page size, 0 to {MAX_FIRST}.")
        ] = DEFAULT_FIRST,
        after: str | None = None,
        order_by: LiquidatorOrder = LiquidatorOrder.DEBT_USD,
    ) -> LiquidatorConnection:
        check_first(first)
        ctx = info.context
        where = liquidation_where(filter)
        scope = where.fingerprint()
        position = None
        if after is not None:
            position = decode_liquidator_cursor(after, ctx.cursor_key, order=order_by, scope=scope)
        sql, source = queries.liquidators_page(where, order_by, first + 1, position)
        rows = await ctx.db.fetch(sql)
        edges = [
            LiquidatorEdge(
                node=LiquidatorStats(
                    address=Address(r["liquidator"]),
                    count=_int(r["liquidation_count"]),
                    debt_usd=_dec(r["debt_usd"]),
                    bonus_usd=_dec(r["bonus_usd"]),
                    chain_ids=list(r["chain_ids"]),
                    first_seen=r["first_seen"],
                    last_seen=r["last_seen"],
                ),
                cursor=encode_liquidator_cursor(
                    order_by,
                    queries.LiquidatorPosition(r["sort_key"], r["liquidator"]),
                    scope,
                    ctx.cursor_key,
                ),
            )
            for r in rows[:first]
        ]
        page = PageInfo(
            has_next_page=len(rows) > first,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return LiquidatorConnection(edges=edges, page_info=page, source=source)

    @strawberry.field(
        description="How concentrated liquidating is under the filter (any window and set of "
        "chains): unique liquidators, the top five's share of the debt repaid and the "
        "Herfindahl index, from the same table as `liquidators`."
    )
    async def liquidator_concentration(
        self, info: Info, filter: LiquidationFilter | None = None
    ) -> LiquidatorConcentration:
        sql, source = queries.liquidator_concentration(liquidation_where(filter))
        r = await info.context.db.fetchrow(sql)
        assert r is not None  # an aggregate without GROUP BY: always one row
        return LiquidatorConcentration(
            unique_liquidators=_int(r["unique_liquidators"]),
            count=_int(r["liquidation_count"]),
            debt_usd=_dec(r["debt_usd"]),
            top5_debt_usd=_dec(r["top5_debt_usd"]),
            top5_share=r["top5_share"],
            herfindahl=r["herfindahl"],
            source=source,
        )

    @strawberry.field(
        description="One borrower's liquidations across chains and markets: times "
        "liquidated, debt repaid, bonus paid and collateral seized, per chain and in total."
    )
    async def borrower_stats(
        self, info: Info, user: Address, chains: list[Chain] | None = None
    ) -> BorrowerStats:
        chain_ids = tuple(CHAIN_ID[c] for c in chains) if chains is not None else None
        rows = await info.context.db.fetch(queries.borrower_stats(user, chain_ids))
        per_chain = [
            BorrowerChainStats(
                chain_id=r["chain_id"],
                count=_int(r["liquidation_count"]),
                debt_usd=_dec(r["debt_usd"]),
                bonus_usd=_dec(r["bonus_usd"]),
                collateral_seized_usd=_dec(r["collateral_seized_usd"]),
                first_seen=r["first_seen"],
                last_seen=r["last_seen"],
            )
            for r in rows
            if not r["total"]
        ]
        total = next((r for r in rows if r["total"]), None)
        return BorrowerStats(
            user=user,
            count=_int(total["liquidation_count"]) if total else 0,
            debt_usd=_dec(total["debt_usd"] if total else None),
            bonus_usd=_dec(total["bonus_usd"] if total else None),
            collateral_seized_usd=_dec(total["collateral_seized_usd"] if total else None),
            chains=per_chain,
        )

    @strawberry.field(
        description="SVR revenue (liquidations that went through SVR, value recaptured, and "
        "its Aave / Chainlink split) grouped by the given dimensions, one row per non-empty "
        "group ordered by period, chain, market, aggregator; without groupBy, one row with the "
        f"totals. From the daily SVR rollup. At most {MAX_GROUPED_ROWS:,} rows."
    )
    async def svr_revenue(
        self,
        info: Info,
        filter: SvrRevenueFilter | None = None,
        group_by: list[SvrRevenueDimension] | None = None,
    ) -> list[SvrRevenueRow]:
        where = svr_where(filter)
        dims = frozenset(group_by or ())
        queries.check_bucket_count(where.time_from, where.time_to, queries.time_unit(dims))
        rows = await _grouped_rows(info, queries.svr_revenue(where, dims), dims)
        return [
            SvrRevenueRow(
                chain=chain_of(r["chain_id"]),
                chain_id=r["chain_id"],
                market=r["market"],
                period=r["period"],
                aggregator=Address(r["aggregator"]) if r["aggregator"] else None,
                svr_liquidation_count=_int(r["svr_liquidation_count"]),
                svr_liquidated_usd=_dec(r["svr_liquidated_usd"]),
                recapture_count=_int(r["recapture_count"]),
                recaptured_usd=_dec(r["recaptured_usd"]),
                aave_usd=_dec(r["aave_usd"]),
                chainlink_usd=_dec(r["chainlink_usd"]),
                bonus_usd=_dec(r["bonus_usd"]),
                recapture_rate=recapture_rate(r["recaptured_usd"], r["bonus_usd"]),
                unsold_updates=_int(r["unsold_updates"]),
            )
            for r in rows
        ]

    @strawberry.field(
        description="Deficit events of Aave V3.3+ pools (bad debt booked in liquidations, and "
        "covered by the Umbrella), newest first, one page at a time."
    )
    async def deficits(
        self,
        info: Info,
        filter: DeficitFilter | None = None,
        first: Annotated[
            int, strawberry.argument(description=f"Page size, 0 to {MAX_FIRST}.")
        ] = DEFAULT_FIRST,
        after: Annotated[
            str | None, strawberry.argument(description="An endCursor from a previous page.")
        ] = None,
    ) -> DeficitConnection:
        check_first(first)
        ctx = info.context
        where = deficit_where(filter)
        scope, order = where.fingerprint(), LiquidationOrder.BLOCK_TIME_DESC
        position = None
        if after is not None:
            position = decode_cursor(after, ctx.cursor_key, order=order, scope=scope)
        rows = await ctx.db.fetch(queries.deficits_page(where, first + 1, position))
        edges = [
            DeficitEdge(
                node=make_deficit(row),
                position=Cursor(
                    order,
                    KeysetPosition(
                        row["block_time"], row["chain_id"], row["tx_hash"], row["log_index"]
                    ),
                    scope,
                ),
                key=ctx.cursor_key,
            )
            for row in rows[:first]
        ]
        page = PageInfo(
            has_next_page=len(rows) > first,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor() if edges else None,
            end_cursor=edges[-1].cursor() if edges else None,
        )
        return DeficitConnection(edges=edges, page_info=page)

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
        ids = selected_chain_ids(chains, None)
        rows = await info.context.db.fetch(queries.assets(ids))
        return [make_asset(r["chain_id"], r["address"], r["symbol"], r["decimals"]) for r in rows]

    @strawberry.field(
        description="The price sources of the markets' AaveOracles over time, one row per "
        "source and the blocks it was in force (ordered by chain, market, asset address, "
        "fromBlock): by default only those whose aggregator is an SVR one; svrOnly: false "
        f"gives every source. At most {queries.MAX_SVR_FEEDS:,} rows."
    )
    async def svr_feeds(
        self,
        info: Info,
        chains: list[Chain] | None = None,
        chain_ids: list[int] | None = None,
        markets: list[str] | None = None,
        svr_only: Annotated[
            bool | None,
            strawberry.argument(description="true (default): SVR sources only; false: all."),
        ] = True,
    ) -> list[SvrFeed]:
        ids = selected_chain_ids(chains, chain_ids)
        sql = queries.svr_feeds(ids, selected_markets(markets), svr_only)
        return [make_svr_feed(r) for r in await info.context.db.fetch(sql)]
