"""The GraphQL filter inputs, and their validation into the plain values api.queries
binds: a caller's mistake is refused here with a message, before any SQL is built.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, localcontext

import strawberry

from api.enums import CHAIN_ID, Chain, DeficitKind
from api.errors import ApiError, excerpt
from api.queries import DeficitWhere, LiquidationWhere, SvrWhere
from api.scalars import Address

MAX_CHAIN_IDS = 64
MAX_MARKETS = 64
MAX_MARKET_CHARS = 64
_MAX_USD = Decimal(10) ** 30
_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


@strawberry.input(description="All given conditions must hold.")
class LiquidationFilter:
    chains: list[Chain] | None = strawberry.field(default=None, description="Any of these.")
    chain_ids: list[int] | None = strawberry.field(
        default=None, description="Any of these chain ids (also chains outside the enum)."
    )
    markets: list[str] | None = strawberry.field(
        default=None,
        description="Any of these markets, by the configuration's names (core, prime, ...).",
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
    markets: list[str] | None = strawberry.field(
        default=None,
        description="Any of these markets (recaptures that belong to no liquidation have none, "
        "so they are left out).",
    )
    aggregator: Address | None = None
    time_from: datetime | None = strawberry.field(
        default=None, description="Inclusive; midnight UTC (the data is daily)."
    )
    time_to: datetime | None = strawberry.field(
        default=None, description="Exclusive; midnight UTC (the data is daily)."
    )


def selected_chain_ids(
    chains: list[Chain] | None, chain_ids: list[int] | None
) -> tuple[int, ...] | None:
    """The union of `chains` and `chainIds`, sorted; None when neither is given (all)."""
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


def selected_markets(markets: list[str] | None) -> tuple[str, ...] | None:
    """The distinct market names, sorted; None when not given (all). A name is never empty
    (the configuration refuses one), so an empty name is a mistake, not a market."""
    if markets is None:
        return None
    for name in markets:
        if not name.strip():
            raise ApiError("markets: a market name is not empty (e.g. core, prime)")
        if len(name) > MAX_MARKET_CHARS:
            raise ApiError(
                f"markets: {excerpt(name)!r} is not a market name (at most "
                f"{MAX_MARKET_CHARS} characters)"
            )
        if not name.isprintable():  # a NUL cannot even reach PostgreSQL text
            raise ApiError(f"markets: {excerpt(name)!r} is not a market name (control characters)")
    names = set(markets)
    if len(names) > MAX_MARKETS:
        raise ApiError(f"markets: at most {MAX_MARKETS} markets")
    return tuple(sorted(names))


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
        raise ApiError(f"invalid txHash {excerpt(value)!r}: expected 0x followed by 64 hex digits")
    return value.lower()


def liquidation_where(f: LiquidationFilter | None) -> LiquidationWhere:
    """The filter checked and normalised (UTC times, lowercase hash, USD to 18 places)."""
    if f is None:
        return LiquidationWhere()
    for name, block in (("blockFrom", f.block_from), ("blockTo", f.block_to)):
        if block is not None and block < 0:
            raise ApiError(f"{name} must be >= 0")
    if f.block_from is not None and f.block_to is not None and f.block_from > f.block_to:
        raise ApiError("blockFrom must be <= blockTo (both are inclusive)")
    time_from, time_to = _time_range(f.time_from, f.time_to)
    return LiquidationWhere(
        chain_ids=selected_chain_ids(f.chains, f.chain_ids),
        markets=selected_markets(f.markets),
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
        chain_ids=selected_chain_ids(f.chains, f.chain_ids),
        markets=selected_markets(f.markets),
        aggregator=f.aggregator,
        time_from=time_from,
        time_to=time_to,
    )


def parse_liquidation_id(value: str) -> tuple[int, str, int]:
    """(chain id, lowercase tx hash, log index) of a "chainId:txHash:logIndex" id."""
    parts = value.split(":") if len(value) <= 100 else []
    if len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit():
        chain_id, log_index = int(parts[0]), int(parts[2])
        if 0 < chain_id < 2**31 and log_index < 2**31 and _TX_HASH.match(parts[1]):
            return chain_id, parts[1].lower(), log_index
    raise ApiError(f'invalid liquidation id {excerpt(value)!r}: expected "chainId:txHash:logIndex"')


@strawberry.input(description="All given conditions must hold.")
class DeficitFilter:
    chains: list[Chain] | None = None
    chain_ids: list[int] | None = None
    markets: list[str] | None = None
    kind: DeficitKind | None = None
    user: Address | None = strawberry.field(default=None, description="The borrower (CREATED).")
    asset: Address | None = strawberry.field(default=None, description="The reserve.")
    tx_hash: str | None = None
    time_from: datetime | None = strawberry.field(default=None, description="Inclusive.")
    time_to: datetime | None = strawberry.field(default=None, description="Exclusive.")


def deficit_where(f: DeficitFilter | None) -> DeficitWhere:
    if f is None:
        return DeficitWhere()
    time_from, time_to = _time_range(f.time_from, f.time_to)
    return DeficitWhere(
        chain_ids=selected_chain_ids(f.chains, f.chain_ids),
        markets=selected_markets(f.markets),
        kind=f.kind.value if f.kind is not None else None,
        user=f.user,
        asset=f.asset,
        tx_hash=_tx_hash(f.tx_hash),
        time_from=time_from,
        time_to=time_to,
    )
