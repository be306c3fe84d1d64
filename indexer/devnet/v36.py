"""Ethereum's third market, "v36": an Aave V3.6 Pool (@aave-dao/aave-v3-origin 3.6.0, compiled
by origin.py), the one devnet Pool that books bad debt (DeficitCreated, DeficitCovered).

Deployed in the chain's four deployment blocks next to core and prime, by a deployer of its
own (so their addresses stay as they were): provider, ACL roles, the six logic libraries,
the one interest rate strategy (DefaultReserveInterestRateStrategyV2, immutable in the Pool),
PoolInstance and PoolConfiguratorInstance; then its own MockFeeds (the scenario moves them
with every other feed of the asset), AaveOracle, data provider, ATokenInstance (treasury
immutable: the devnet treasury) and VariableDebtTokenInstance; then the reserves (WETH, WBTC,
USDC with core's risk parameters, rate data per reserve) and the provider's UMBRELLA address,
the only caller eliminateReserveDeficit accepts.
"""

from __future__ import annotations

from typing import Any

from eth_abi import encode as abi_encode

from .artifacts import Artifact
from .feeds import FeedInfo
from .market import (
    BY_SYMBOL,
    LIQUIDATION_PROTOCOL_FEE_BPS,
    MARKET_DEPLOYERS,
    MARKET_RESERVES,
    SOURCE_STEWARD,
    TREASURY,
)
from .origin import LIBRARIES, origin
from .session import ChainSession

NAME = "v36"
#: The chains that have the market.
CHAINS = ("ethereum",)
PACKAGE = "@aave-dao/aave-v3-origin 3.6.0"
ZERO = "0x0000000000000000000000000000000000000000"
UMBRELLA_ID = b"UMBRELLA".ljust(32, b"\0")
#: DefaultReserveInterestRateStrategyV2 InterestRateData (bps): optimal usage, base rate,
#: slope 1, slope 2; the same curves as core's two strategies.
RATES_VOLATILE = (4500, 0, 400, 30000)
RATES_STABLE = (9000, 0, 400, 6000)


def has_market(chain: str) -> bool:
    return chain in CHAINS


def block_1(session: ChainSession, pending: Any) -> None:
    """Provider, ACL roles, libraries, strategy and the two implementations."""
    admin = MARKET_DEPLOYERS[NAME]
    provider_art, acl_art = origin("PoolAddressesProvider"), origin("ACLManager")
    provider = session.deploy(
        admin, provider_art.deploy_data(f"Aave V3.6 devnet {NAME}", admin), label="Provider v36"
    )
    session.send(admin, provider, provider_art.encode("setACLAdmin", admin), label="setACLAdmin")
    acl = session.deploy(admin, acl_art.deploy_data(provider), label="ACLManager v36")
    session.send(admin, provider, provider_art.encode("setACLManager", acl), label="setACLManager")
    session.send(admin, acl, acl_art.encode("addPoolAdmin", admin), label="addPoolAdmin")
    session.send(admin, acl, acl_art.encode("addRiskAdmin", admin), label="addRiskAdmin")
    session.send(
        admin,
        acl,
        acl_art.encode("addAssetListingAdmin", SOURCE_STEWARD),
        label="addAssetListingAdmin",
    )
    libraries: dict[str, str] = {}
    for lib in LIBRARIES:
        libraries[lib] = session.deploy(
            admin, origin(lib).deploy_data(libraries=libraries), label=f"{lib} v36"
        )
    strategy = session.deploy(
        admin,
        origin("DefaultReserveInterestRateStrategyV2").deploy_data(provider),
        label="strategy v36",
    )
    pending.provider, pending.acl, pending.libraries = provider, acl, libraries
    pending.strategies = (strategy, "")
    pending.pool_impl = session.deploy(
        admin,
        origin("PoolInstance").deploy_data(provider, strategy, libraries=libraries),
        gas=10_000_000,
        label="PoolInstance v36",
    )
    pending.configurator_impl = session.deploy(
        admin,
        origin("PoolConfiguratorInstance").deploy_data(libraries=libraries),
        gas=10_000_000,
        label="PoolConfiguratorInstance v36",
    )


def block_2(session: ChainSession, pending: Any) -> None:
    """The proxies, created by the provider."""
    provider_art = origin("PoolAddressesProvider")
    for call, impl in (
        ("setPoolImpl", pending.pool_impl),
        ("setPoolConfiguratorImpl", pending.configurator_impl),
    ):
        session.send(
            pending.admin,
            pending.provider,
            provider_art.encode(call, impl),
            gas=3_000_000,
            label=f"{call} v36",
        )


def block_3(
    session: ChainSession,
    pending: Any,
    own: dict[str, Artifact],
    tokens: dict[str, str],
    feeds: dict[str, FeedInfo],
    deploy_mock: Any,
) -> None:
    """Mock sources, AaveOracle, data provider, token implementations."""
    admin = pending.admin
    provider_art = origin("PoolAddressesProvider")
    symbols = MARKET_RESERVES[NAME]
    for symbol in symbols:
        pending.sources[symbol] = deploy_mock(session, own, admin, symbol, feeds)
    pending.oracle = session.deploy(
        admin,
        origin("AaveOracle").deploy_data(
            pending.provider,
            [tokens[s] for s in symbols],
            [pending.sources[s] for s in symbols],
            ZERO,
            ZERO,
            10**8,
        ),
        label=f"AaveOracle {NAME}",
    )
    session.send(
        admin,
        pending.provider,
        provider_art.encode("setPriceOracle", pending.oracle),
        label="setOracle v36",
    )
    pending.data_provider = session.deploy(
        admin,
        origin("AaveProtocolDataProvider").deploy_data(pending.provider),
        label="DataProvider v36",
    )
    session.send(
        admin,
        pending.provider,
        provider_art.encode("setPoolDataProvider", pending.data_provider),
        label="setPoolDataProvider v36",
    )
    atoken = session.deploy(
        admin,
        origin("ATokenInstance").deploy_data(pending.pool, ZERO, TREASURY),
        label="ATokenInstance v36",
    )
    variable = session.deploy(
        admin,
        origin("VariableDebtTokenInstance").deploy_data(pending.pool, ZERO),
        label="VariableDebtTokenInstance v36",
    )
    pending.impls = (atoken, "", variable)


def block_4(session: ChainSession, pending: Any, tokens: dict[str, str], umbrella: str) -> None:
    """Reserves, their risk parameters and rate data; the UMBRELLA address."""
    conf_art = origin("PoolConfiguratorInstance")
    reserves = [BY_SYMBOL[s] for s in MARKET_RESERVES[NAME]]
    atoken_impl, _, variable_impl = pending.impls
    inputs = [
        (
            atoken_impl,
            variable_impl,
            tokens[r.symbol],
            f"Aave devnet v36 {r.symbol}",
            f"av36{r.symbol}",
            f"Aave devnet v36 Variable Debt {r.symbol}",
            f"variableDebtV36{r.symbol}",
            b"",
            abi_encode(
                ["uint16", "uint32", "uint32", "uint32"],
                list(RATES_STABLE if r.stable else RATES_VOLATILE),
            ),
        )
        for r in reserves
    ]
    session.send(
        pending.admin,
        pending.configurator,
        conf_art.encode("initReserves", inputs),
        gas=12_000_000,
        label="initReserves v36",
    )
    for r in reserves:
        token = tokens[r.symbol]
        for data in (
            conf_art.encode(
                "configureReserveAsCollateral",
                token,
                r.ltv,
                r.liquidation_threshold,
                r.liquidation_bonus,
            ),
            conf_art.encode("setReserveBorrowing", token, True),
            conf_art.encode("setReserveFactor", token, r.reserve_factor),
            conf_art.encode("setLiquidationProtocolFee", token, LIQUIDATION_PROTOCOL_FEE_BPS),
        ):
            session.send(
                pending.admin,
                pending.configurator,
                data,
                gas=500_000,
                label=f"configure {r.symbol}",
            )
    session.send(
        pending.admin,
        pending.provider,
        origin("PoolAddressesProvider").encode("setAddress", UMBRELLA_ID, umbrella),
        gas=200_000,
        label="setAddress UMBRELLA",
    )
