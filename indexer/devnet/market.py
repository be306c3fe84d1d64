"""The devnet market's fixed parameters: reserves, risk settings, roles and prices."""

from __future__ import annotations

from dataclasses import dataclass

from .session import actor

RAY = 10**27
PRICE_UNIT = 10**8  # AaveOracle BASE_CURRENCY_UNIT (USD, 8 decimals)
LIQUIDATION_PROTOCOL_FEE_BPS = 1000  # 10 % of the liquidation bonus goes to the treasury


@dataclass(frozen=True)
class Reserve:
    symbol: str
    name: str
    decimals: int
    price_usd: float  # start price
    ltv: int  # bps
    liquidation_threshold: int  # bps
    liquidation_bonus: int  # bps, 10500 = 5 % bonus
    reserve_factor: int  # bps
    stable: bool  # picks the interest rate strategy


RESERVES: tuple[Reserve, ...] = (
    Reserve("WETH", "Wrapped Ether", 18, 3000.0, 8050, 8300, 10500, 1500, False),
    Reserve("WBTC", "Wrapped BTC", 8, 90000.0, 7300, 7800, 10500, 2000, False),
    Reserve("USDC", "USD Coin", 6, 1.0, 7700, 8000, 10450, 1000, True),
    Reserve("LINK", "ChainLink Token", 18, 13.0, 6000, 6800, 10700, 2000, False),
)
BY_SYMBOL = {r.symbol: r for r in RESERVES}

#: The markets of each chain: "core" everywhere, and on ethereum a second one, "prime"
#: (Aave's Prime shares WETH with Core), listing some of the same tokens.
MARKETS: dict[str, tuple[str, ...]] = {
    "ethereum": ("core", "prime"),
    "polygon": ("core",),
    "avalanche": ("core",),
    "arbitrum": ("core",),
    "base": ("core",),
}
MARKET_RESERVES: dict[str, tuple[str, ...]] = {
    "core": tuple(r.symbol for r in RESERVES),
    "prime": ("WETH", "WBTC", "USDC"),
    "v36": ("WETH", "WBTC", "USDC"),  # ethereum's Aave V3.6 market (v36.py)
}

#: DefaultReserveInterestRateStrategy arguments after the provider, in ray.
STRATEGY_VOLATILE = (
    45 * RAY // 100,
    0,
    4 * RAY // 100,
    300 * RAY // 100,
    0,
    0,
    2 * RAY // 100,
    5 * RAY // 100,
    20 * RAY // 100,
)
STRATEGY_STABLE = (
    90 * RAY // 100,
    0,
    4 * RAY // 100,
    60 * RAY // 100,
    0,
    0,
    2 * RAY // 100,
    5 * RAY // 100,
    20 * RAY // 100,
)

#: anvil's first default account (unlocked, real signatures): deploys and administers.
DEPLOYER = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
#: Deploys and administers the second market, so that core's addresses are the same on every
#: chain whether or not it has one.
MARKET_DEPLOYERS = {
    "core": DEPLOYER,
    "prime": actor("prime/deployer"),
    "v36": actor("v36/deployer"),
}
#: The V3.6 market's UMBRELLA: the one account eliminateReserveDeficit accepts (it covers
#: bad debt with aTokens it supplied, and never borrows).
UMBRELLA = actor("v36/umbrella")
#: Holds the asset-listing admin role and switches price sources (as Aave's SVR steward does).
SOURCE_STEWARD = actor("svr-steward")
#: Another protocol, with its own SVR feed (behind no Aave source) and its own DAppControl.
OTHER_PROTOCOL = actor("other-protocol/deployer")
OTHER_SECONDARY = actor("other-protocol/oracle-node")
OTHER_DAPP_CONTROL = actor("other-protocol/dapp-control")
OTHER_RECIPIENT = actor("other-protocol/svr-recipient")
#: Sets the answers of the devnet's MockFeeds and PlainAggregators.
PRICE_SETTER = actor("price-feeds")
TREASURY = actor("treasury")
SVR_RECIPIENT = actor("svr-recipient")
SVR_DAPP_CONTROL = actor("svr-dapp-control")
ORACLE_PRIMARY = actor("oracle-node/primary")
ORACLE_SECONDARY = actor("oracle-node/secondary")
WHALE = actor("liquidity-whale")
LIQUIDATORS = tuple(actor(f"liquidator/{i}") for i in range(1, 5))
SEARCHERS = (actor("searcher/1"), actor("searcher/2"))
BUILDERS = (actor("builder/1"), actor("builder/2"))
#: Atlas solvers: 1 and 2 are bonded (1's contract holds native coin, 2's only tokens); 3 is
#: bonded but bids below the transaction's gas price, 4 has no escrow (both rejected).
SOLVERS = tuple(actor(f"solver/{i}") for i in range(1, 5))
BONDED_SOLVERS = SOLVERS[:3]
BUNDLER = actor("atlas-bundler")
#: DualAggregator settings: a public round reaches the SVR readers (Aave) only this many
#: block times after it is recorded; catch-ups and the read side look this many rounds back.
CUTOFF_BLOCKS = 5
MAX_SYNC_ITERATIONS = 5
#: Share of a back-run bid that the Ethereum builder refunds to the SVR recipient.
BUILDER_REFUND_BPS = 9000


def price_units(usd: float) -> int:
    return round(usd * PRICE_UNIT)
