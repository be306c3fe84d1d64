"""The API's enums, each written once: the SQL builders in api.queries take the same
members the GraphQL arguments arrive as."""

from __future__ import annotations

from enum import Enum

import strawberry

from indexer.networks import CHAIN_IDS


@strawberry.enum(description="A chain the indexer covers (by EVM chain id).")
class Chain(Enum):
    """Names of indexer.networks.CHAIN_IDS, spelt out so that the published schema only
    changes on purpose; their ids come from there."""

    ETHEREUM = "ETHEREUM"
    POLYGON = "POLYGON"
    AVALANCHE = "AVALANCHE"
    ARBITRUM = "ARBITRUM"
    BASE = "BASE"


CHAIN_ID: dict[Chain, int] = {chain: CHAIN_IDS[chain.name.lower()] for chain in Chain}
CHAIN_BY_ID: dict[int, Chain] = {chain_id: chain for chain, chain_id in CHAIN_ID.items()}


def chain_of(chain_id: int | None) -> Chain | None:
    """The enum member of a chain id; None for a chain outside the enum (a devnet, say)."""
    return CHAIN_BY_ID.get(chain_id) if chain_id is not None else None


@strawberry.enum(description="Orders of `liquidations`; ties break on (chainId, txHash, logIndex).")
class LiquidationOrder(Enum):
    BLOCK_TIME_DESC = "BLOCK_TIME_DESC"
    BLOCK_TIME_ASC = "BLOCK_TIME_ASC"
    DEBT_USD_DESC = "DEBT_USD_DESC"
    DEBT_USD_ASC = "DEBT_USD_ASC"


@strawberry.enum(description="Orders of `liquidators`, largest first; ties break on the address.")
class LiquidatorOrder(Enum):
    COUNT = "COUNT"
    DEBT_USD = "DEBT_USD"
    BONUS_USD = "BONUS_USD"


@strawberry.enum(
    description="A grouping of `liquidationStats`. At most one of HOUR, DAY, WEEK (ISO, from "
    "Monday), MONTH; periods are UTC. COLLATERAL_ASSET and DEBT_ASSET imply CHAIN (an asset "
    "is an address on one chain). MARKET alone adds up a market name over the chains that "
    "have it (every chain has a core market): group by CHAIN and MARKET for each chain's."
)
class StatsDimension(Enum):
    CHAIN = "CHAIN"
    MARKET = "MARKET"
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    COLLATERAL_ASSET = "COLLATERAL_ASSET"
    DEBT_ASSET = "DEBT_ASSET"
    LIQUIDATOR = "LIQUIDATOR"


@strawberry.enum(
    description="A grouping of `svrRevenue` (periods are UTC days, weeks, months). MARKET: an "
    "SVR liquidation's market, and a recapture's is that of the first liquidation it belongs "
    "to (null when it belongs to none)."
)
class SvrRevenueDimension(Enum):
    CHAIN = "CHAIN"
    MARKET = "MARKET"
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


@strawberry.enum(description="What a deficit event says.")
class DeficitKind(Enum):
    CREATED = "created"  # DeficitCreated: a liquidation left debt without collateral
    COVERED = "covered"  # DeficitCovered: the Umbrella covered some of a reserve's deficit
