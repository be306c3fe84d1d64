"""The five chains the replay server imitates: real chain ids, Aave V3 Pool and AaveOracle
addresses, block times, a handful of real reserve assets each, and the knobs that shape the
generated liquidation history (share of events, typical size, SVR routing)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AssetSpec:
    symbol: str
    name: str
    address: str  # lowercase
    decimals: int
    price_e8: int  # typical USD price, 8 decimals
    collateral_weight: int  # relative frequency as liquidated collateral
    debt_weight: int  # relative frequency as repaid debt
    stable: bool = False


@dataclass(frozen=True)
class ChainSpec:
    name: str
    chain_id: int
    block_time_ms: int
    default_head: int
    pool: str  # lowercase
    oracle: str  # lowercase
    native_symbol: str
    native_asset: str  # symbol of the wrapped native asset (values the native coin)
    finality_depth: int
    assets: tuple[AssetSpec, ...]
    event_share: float  # share of all liquidations
    median_usd: int  # median liquidation size (debt repaid, USD)
    svr_model: str  # "mev-share" | "atlas" | "none"
    atlas: str | None = None
    dapp_control: str | None = None
    # each SVR aggregator prices these asset symbols
    svr_aggregators: tuple[tuple[str, ...], ...] = ()
    svr_route_share: float = 0.0  # chance that an eligible liquidation goes through SVR

    @property
    def block_time_seconds(self) -> float:
        return self.block_time_ms / 1000

    def asset(self, symbol: str) -> AssetSpec:
        for a in self.assets:
            if a.symbol == symbol:
                return a
        raise KeyError(symbol)


# Real reserve token addresses on each chain (lowercase).
_ETH_ASSETS = (
    AssetSpec(
        "WETH",
        "Wrapped Ether",
        "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
        18,
        3_000_00000000,
        30,
        6,
    ),
    AssetSpec(
        "WBTC",
        "Wrapped BTC",
        "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599",
        8,
        90_000_00000000,
        14,
        1,
    ),
    AssetSpec(
        "USDC",
        "USD Coin",
        "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
        6,
        1_00000000,
        6,
        40,
        stable=True,
    ),
    AssetSpec(
        "USDT",
        "Tether USD",
        "0xdac17f958d2ee523a2206206994597c13d831ec7",
        6,
        1_00000000,
        2,
        30,
        stable=True,
    ),
    AssetSpec(
        "LINK",
        "ChainLink Token",
        "0x514910771af9ca656af840dff83e8264ecf986ca",
        18,
        15_00000000,
        7,
        1,
    ),
    AssetSpec(
        "AAVE", "Aave Token", "0x7fc66500c84a76ad7e9c93437bfc5ac33e2ddae9", 18, 250_00000000, 5, 0
    ),
    AssetSpec(
        "wstETH",
        "Wrapped liquid staked Ether 2.0",
        "0x7f39c581f595b53c5cb19bd0b3f8da6c935e2ca0",
        18,
        3_600_00000000,
        18,
        1,
    ),
    AssetSpec(
        "cbBTC",
        "Coinbase Wrapped BTC",
        "0xcbb7c0000ab88b473b1f5afd9ef808440eed33bf",
        8,
        90_000_00000000,
        8,
        0,
    ),
)
_POLYGON_ASSETS = (
    AssetSpec(
        "WPOL",
        "Wrapped Polygon Ecosystem Token",
        "0x0d500b1d8e8ef31e21c99d1db9a6444d3adf1270",
        18,
        40000000,
        22,
        3,
    ),
    AssetSpec(
        "WETH",
        "Wrapped Ether",
        "0x7ceb23fd6bc0add59e62ac25578270cff1b9f619",
        18,
        3_000_00000000,
        30,
        5,
    ),
    AssetSpec(
        "WBTC",
        "(PoS) Wrapped BTC",
        "0x1bfd67037b42cf73acf2047067bd4f2c47d9bfd6",
        8,
        90_000_00000000,
        12,
        1,
    ),
    AssetSpec(
        "USDC",
        "USD Coin",
        "0x3c499c542cef5e3811e1192ce70d8cc03d5c3359",
        6,
        1_00000000,
        8,
        35,
        stable=True,
    ),
    AssetSpec(
        "USDC.e",
        "USD Coin (PoS)",
        "0x2791bca1f2de4661ed88a30c99a7a9449aa84174",
        6,
        1_00000000,
        4,
        20,
        stable=True,
    ),
    AssetSpec(
        "USDT",
        "(PoS) Tether USD",
        "0xc2132d05d31c914a87c6611c10748aeb04b58e8f",
        6,
        1_00000000,
        3,
        25,
        stable=True,
    ),
    AssetSpec(
        "LINK",
        "ChainLink Token",
        "0x53e0bca35ec356bd5dddfebbd1fc0fd03fabad39",
        18,
        15_00000000,
        6,
        1,
    ),
    AssetSpec(
        "DAI",
        "(PoS) Dai Stablecoin",
        "0x8f3cf7ad23cd3cadbd9735aff958023239c6a063",
        18,
        1_00000000,
        3,
        10,
        stable=True,
    ),
)
_AVALANCHE_ASSETS = (
    AssetSpec(
        "WAVAX",
        "Wrapped AVAX",
        "0xb31f66aa3c1e785363f0875a1b74e27b85fd66c7",
        18,
        25_00000000,
        32,
        3,
    ),
    AssetSpec(
        "WETH.e",
        "Wrapped Ether",
        "0x49d5c2bdffac6ce2bfdb6640f4f80f226bc10bab",
        18,
        3_000_00000000,
        20,
        2,
    ),
    AssetSpec(
        "BTC.b", "Bitcoin", "0x152b9d0fdc40c096757f570a51e494bd4b943e50", 8, 90_000_00000000, 14, 1
    ),
    AssetSpec(
        "USDC",
        "USD Coin",
        "0xb97ef9ef8734c71904d8002f8b6bc66dd9c48a6e",
        6,
        1_00000000,
        8,
        45,
        stable=True,
    ),
    AssetSpec(
        "USDt",
        "TetherToken",
        "0x9702230a8ea53601f5cd2dc00fdbc13d4df4a8c7",
        6,
        1_00000000,
        4,
        30,
        stable=True,
    ),
    AssetSpec(
        "LINK.e",
        "Chainlink Token",
        "0x5947bb275c521040051d82396192181b413227a3",
        18,
        15_00000000,
        6,
        1,
    ),
)
_ARBITRUM_ASSETS = (
    AssetSpec(
        "WETH",
        "Wrapped Ether",
        "0x82af49447d8a07e3bd95bd0d56f35241523fbab1",
        18,
        3_000_00000000,
        34,
        6,
    ),
    AssetSpec(
        "WBTC",
        "Wrapped BTC",
        "0x2f2a2543b76a4166549f7aab2e75bef0aefc5b0f",
        8,
        90_000_00000000,
        14,
        1,
    ),
    AssetSpec(
        "USDC",
        "USD Coin",
        "0xaf88d065e77c8cc2239327c5edb3a432268e5831",
        6,
        1_00000000,
        8,
        45,
        stable=True,
    ),
    AssetSpec(
        "USDT",
        "Tether USD",
        "0xfd086bc7cd5c481dcc9c85ebe478a1c0b69fcbb9",
        6,
        1_00000000,
        3,
        30,
        stable=True,
    ),
    AssetSpec(
        "LINK",
        "ChainLink Token",
        "0xf97f4df75117a78c1a5a0dbb814af92458539fb4",
        18,
        15_00000000,
        6,
        1,
    ),
    AssetSpec("ARB", "Arbitrum", "0x912ce59144191c1204e64559fe8253a0e49e6548", 18, 50000000, 10, 1),
    AssetSpec(
        "wstETH",
        "Wrapped liquid staked Ether 2.0",
        "0x5979d7b546e38e414f7e9822514be443a4800529",
        18,
        3_600_00000000,
        12,
        1,
    ),
)
_BASE_ASSETS = (
    AssetSpec(
        "WETH",
        "Wrapped Ether",
        "0x4200000000000000000000000000000000000006",
        18,
        3_000_00000000,
        36,
        6,
    ),
    AssetSpec(
        "cbBTC",
        "Coinbase Wrapped BTC",
        "0xcbb7c0000ab88b473b1f5afd9ef808440eed33bf",
        8,
        90_000_00000000,
        16,
        1,
    ),
    AssetSpec(
        "USDC",
        "USD Coin",
        "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913",
        6,
        1_00000000,
        8,
        55,
        stable=True,
    ),
    AssetSpec(
        "cbETH",
        "Coinbase Wrapped Staked ETH",
        "0x2ae3f1ec7f1f5012cfeab0185bfc7aa3cf0dec22",
        18,
        3_250_00000000,
        12,
        1,
    ),
    AssetSpec(
        "wstETH",
        "Wrapped liquid staked Ether 2.0",
        "0xc1cba3fcea344f92d9239c08c0568f6f2f0ee452",
        18,
        3_600_00000000,
        10,
        1,
    ),
    AssetSpec(
        "USDbC",
        "USD Base Coin",
        "0xd9aaec86b65d86f6a7b5b1b0c42ffa531710b6ca",
        6,
        1_00000000,
        3,
        15,
        stable=True,
    ),
)

CHAINS: dict[str, ChainSpec] = {
    c.name: c
    for c in (
        ChainSpec(
            name="ethereum",
            chain_id=1,
            block_time_ms=12_000,
            default_head=24_380_000,
            pool="0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2",
            oracle="0x54586be62e3c3580375ae3723c145253060ca0c2",
            native_symbol="ETH",
            native_asset="WETH",
            finality_depth=64,
            assets=_ETH_ASSETS,
            event_share=0.20,
            median_usd=15_000,
            svr_model="mev-share",
            svr_aggregators=(("WETH", "wstETH"), ("WBTC", "cbBTC"), ("LINK",), ("AAVE",)),
            svr_route_share=0.30,
        ),
        ChainSpec(
            name="polygon",
            chain_id=137,
            block_time_ms=2_000,
            default_head=82_300_000,
            pool="0x794a61358d6845594f94dc1db02a252b5b4814ad",
            oracle="0xb023e699f5a33916ea823a16485e259257ca8bd1",
            native_symbol="POL",
            native_asset="WPOL",
            finality_depth=256,
            assets=_POLYGON_ASSETS,
            event_share=0.40,
            median_usd=1_400,
            svr_model="none",
        ),
        ChainSpec(
            name="avalanche",
            chain_id=43114,
            block_time_ms=2_000,
            default_head=77_100_000,
            pool="0x794a61358d6845594f94dc1db02a252b5b4814ad",
            oracle="0xebd36016b3ed09d4693ed4251c67bd858c3c7c9c",
            native_symbol="AVAX",
            native_asset="WAVAX",
            finality_depth=32,
            assets=_AVALANCHE_ASSETS,
            event_share=0.14,
            median_usd=1_500,
            svr_model="none",
        ),
        ChainSpec(
            name="arbitrum",
            chain_id=42161,
            block_time_ms=250,
            default_head=428_000_000,
            pool="0x794a61358d6845594f94dc1db02a252b5b4814ad",
            oracle="0xb56c2f0b653b2e0b10c9b928c8580ac5df02c7c7",
            native_symbol="ETH",
            native_asset="WETH",
            finality_depth=64,
            assets=_ARBITRUM_ASSETS,
            event_share=0.13,
            median_usd=1_300,
            svr_model="atlas",
            atlas="0x8ad1ae9d97c79aa68a0a151e83ff3942f68f86c1",
            dapp_control="0xe15bba987c002ecc3586e81244517877d294d291",
            svr_aggregators=(("WETH", "wstETH"), ("WBTC",), ("ARB",)),
            svr_route_share=0.35,
        ),
        ChainSpec(
            name="base",
            chain_id=8453,
            block_time_ms=2_000,
            default_head=41_600_000,
            pool="0xa238dd80c259a72e81d7e4664a9801593f98d1c5",
            oracle="0x2cc0fc26ed4563a5ce5e8bdcfe1a2878676ae156",
            native_symbol="ETH",
            native_asset="WETH",
            finality_depth=64,
            assets=_BASE_ASSETS,
            event_share=0.13,
            median_usd=1_000,
            svr_model="atlas",
            atlas="0x583dcfef0d240dc80753f0f0b26513fee27d9b77",
            dapp_control="0xa5e1a36938769cbd5a26f5e19d8fcb379f597c83",
            svr_aggregators=(("WETH",), ("cbBTC",), ("cbETH", "wstETH")),
            svr_route_share=0.35,
        ),
    )
}

CHAIN_NAMES: tuple[str, ...] = tuple(CHAINS)

# Head timestamp of the default history: 2026-02-06T00:00:00Z, just after the 2026-01-31..02-05
# liquidation wave. genesis_ts is derived per chain so that the head block lands here.
END_TIMESTAMP = 1_770_336_000

# Two well-known Ethereum block builders; they pay the MEV-Share refunds and the proposer.
BUILDERS = (
    "0x95222290dd7278aa3ddd389cc1e1d165cc4bafe5",
    "0x4838b106fce9647bdf1e7877bf73ce8b0bad5f97",
)
