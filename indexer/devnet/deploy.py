"""Deploy a complete Aave V3 market from the unmodified @aave/core-v3 artifacts, plus the
devnet's price feeds and SVR contracts, on one chain.

Order matters (see the facts file): provider -> setACLAdmin -> ACLManager -> setACLManager ->
libraries -> Pool/PoolConfigurator implementations -> setPoolImpl / setPoolConfiguratorImpl
(these create and initialise the proxies) -> oracle -> token implementations and strategies
-> initReserves -> risk parameters. Addresses of contracts not yet mined are predicted from
the deployer's nonce, so a whole phase goes out in one batch and one block.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from eth_abi import decode as abi_decode

from . import artifacts as art
from .chains import PROFILES
from .market import (
    BUILDERS,
    BUNDLER,
    DEPLOYER,
    LIQUIDATION_PROTOCOL_FEE_BPS,
    LIQUIDATORS,
    ORACLE_PRIMARY,
    ORACLE_SECONDARY,
    RESERVES,
    SEARCHERS,
    SOLVERS,
    STRATEGY_STABLE,
    STRATEGY_VOLATILE,
    SVR_DAPP_CONTROL,
    SVR_RECIPIENT,
    TREASURY,
    WHALE,
    price_units,
)
from .session import ChainSession, create_address

ZERO = "0x0000000000000000000000000000000000000000"
MAX_UINT = 2**256 - 1


@dataclass
class Asset:
    symbol: str
    address: str
    decimals: int
    source: str  # the price feed AaveOracle reads
    svr: bool  # True when the source is a DualAggregator
    source_block: int
    atoken: str = ""
    stable_debt_token: str = ""
    variable_debt_token: str = ""


@dataclass
class Deployment:
    """Addresses of one chain's market; saved in .devnet/state/<chain>.json."""

    chain: str
    chain_id: int
    first_block: int
    pool_block: int
    provider: str
    acl_manager: str
    pool: str
    pool_impl: str
    pool_artifact: str  # "Pool" or "L2Pool"
    configurator: str
    oracle: str
    data_provider: str
    treasury: str
    libraries: dict[str, str]
    assets: dict[str, Asset]  # by symbol
    svr_model: str
    svr_recipient: str
    forwarder: str = ""  # ethereum: carries secondary-route reports
    settlement: str = ""  # atlas chains
    dapp_control: str = ""  # atlas chains
    searchers: list[str] = field(default_factory=list)  # SvrSearcher contracts
    builders: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        assets = {k: Asset(**v) for k, v in data["assets"].items()}
        return cls(**{**data, "assets": assets})


def _next_time(session: ChainSession) -> int:
    return session.head_time + PROFILES[session.name].block_time


def deploy_market(session: ChainSession, compiled: dict[str, dict[str, Any]]) -> Deployment:
    """Deploy everything on a chain; about 70 transactions in 5 blocks."""
    profile = PROFILES[session.name]
    dep = DEPLOYER
    own = {
        n: art.from_solc(n, compiled)
        for n in ("DualAggregator", "AtlasSettlement", "SvrSearcher", "Forwarder")
    }
    provider_art = art.aave("PoolAddressesProvider")
    acl_art = art.aave("ACLManager")
    pool_name = "L2Pool" if profile.l2_pool else "Pool"

    # Block 1: provider, ACL, libraries, implementations.
    provider = session.deploy(
        dep, provider_art.deploy_data("Aave V3 devnet market", dep), label="PoolAddressesProvider"
    )
    session.send(dep, provider, provider_art.encode("setACLAdmin", dep), label="setACLAdmin")
    acl = session.deploy(dep, acl_art.deploy_data(provider), label="ACLManager")
    session.send(dep, provider, provider_art.encode("setACLManager", acl), label="setACLManager")
    session.send(dep, acl, acl_art.encode("addPoolAdmin", dep), label="addPoolAdmin")
    session.send(dep, acl, acl_art.encode("addRiskAdmin", dep), label="addRiskAdmin")
    libraries: dict[str, str] = {}
    for lib in (*art.POOL_LIBRARIES, "ConfiguratorLogic"):
        libraries[lib] = session.deploy(
            dep, art.aave(lib).deploy_data(libraries=libraries), label=lib
        )
    pool_art = art.aave(pool_name)
    pool_impl = session.deploy(
        dep, pool_art.deploy_data(provider, libraries=libraries), gas=10_000_000, label=pool_name
    )
    conf_art = art.aave("PoolConfigurator")
    conf_impl = session.deploy(
        dep, conf_art.deploy_data(libraries=libraries), gas=10_000_000, label="PoolConfigurator"
    )
    first = session.mine(_next_time(session))

    # Block 2: the proxies (the provider creates them with CREATE, nonces 1 and 2).
    session.send(
        dep,
        provider,
        provider_art.encode("setPoolImpl", pool_impl),
        gas=3_000_000,
        label="setPoolImpl",
    )
    session.send(
        dep,
        provider,
        provider_art.encode("setPoolConfiguratorImpl", conf_impl),
        gas=3_000_000,
        label="setPoolConfiguratorImpl",
    )
    pool_block = session.mine(_next_time(session))
    pool = create_address(provider, 1)
    configurator = create_address(provider, 2)

    # Block 3: tokens, price feeds, oracle, data provider, token implementations, strategies.
    erc20 = art.aave("MintableERC20")
    tokens = {
        r.symbol: session.deploy(
            dep, erc20.deploy_data(r.name, r.symbol, r.decimals), label=r.symbol
        )
        for r in RESERVES
    }
    forwarder = settlement = ""
    searchers: list[str] = []
    if profile.svr_model == "mev-share":
        forwarder = session.deploy(
            dep, own["Forwarder"].deploy_data([ORACLE_SECONDARY]), label="Forwarder"
        )
    if profile.svr_model == "atlas":
        settlement = session.deploy(
            dep,
            own["AtlasSettlement"].deploy_data(SVR_DAPP_CONTROL, SVR_RECIPIENT),
            label="AtlasSettlement",
        )
    if profile.svr_model != "none":
        searchers = [
            session.deploy(dep, own["SvrSearcher"].deploy_data(), label="SvrSearcher")
            for _ in range(2)
        ]
    sources: dict[str, str] = {}
    for r in RESERVES:
        if r.symbol in profile.svr_assets:
            secondary = [forwarder] if forwarder else [settlement, ORACLE_SECONDARY]
            sources[r.symbol] = session.deploy(
                dep,
                own["DualAggregator"].deploy_data(f"{r.symbol} / USD", [ORACLE_PRIMARY], secondary),
                label=f"DualAggregator {r.symbol}",
            )
        else:
            sources[r.symbol] = session.deploy(
                dep,
                art.aave("MockAggregator").deploy_data(price_units(r.price_usd)),
                label=f"MockAggregator {r.symbol}",
            )
    oracle_art = art.aave("AaveOracle")
    symbols = [r.symbol for r in RESERVES]
    oracle = session.deploy(
        dep,
        oracle_art.deploy_data(
            provider, [tokens[s] for s in symbols], [sources[s] for s in symbols], ZERO, ZERO, 10**8
        ),
        label="AaveOracle",
    )
    session.send(dep, provider, provider_art.encode("setPriceOracle", oracle), label="setOracle")
    data_provider = session.deploy(
        dep, art.aave("AaveProtocolDataProvider").deploy_data(provider), label="DataProvider"
    )
    session.send(
        dep,
        provider,
        provider_art.encode("setPoolDataProvider", data_provider),
        label="setPoolDataProvider",
    )
    atoken_impl = session.deploy(dep, art.aave("AToken").deploy_data(pool), label="AToken")
    stable_impl = session.deploy(
        dep, art.aave("StableDebtToken").deploy_data(pool), label="StableDebtToken"
    )
    variable_impl = session.deploy(
        dep, art.aave("VariableDebtToken").deploy_data(pool), label="VariableDebtToken"
    )
    strategy_art = art.aave("DefaultReserveInterestRateStrategy")
    strategy_volatile = session.deploy(
        dep, strategy_art.deploy_data(provider, *STRATEGY_VOLATILE), label="strategy volatile"
    )
    strategy_stable = session.deploy(
        dep, strategy_art.deploy_data(provider, *STRATEGY_STABLE), label="strategy stable"
    )
    feeds_block = session.mine(_next_time(session))

    # Block 4: reserves and their risk parameters.
    inputs = [
        (
            atoken_impl,
            stable_impl,
            variable_impl,
            r.decimals,
            strategy_stable if r.stable else strategy_volatile,
            tokens[r.symbol],
            TREASURY,
            ZERO,
            f"Aave devnet {r.symbol}",
            f"a{r.symbol}",
            f"Aave devnet Variable Debt {r.symbol}",
            f"variableDebt{r.symbol}",
            f"Aave devnet Stable Debt {r.symbol}",
            f"stableDebt{r.symbol}",
            b"",
        )
        for r in RESERVES
    ]
    session.send(
        dep,
        configurator,
        conf_art.encode("initReserves", inputs),
        gas=12_000_000,
        label="initReserves",
    )
    for r in RESERVES:
        token = tokens[r.symbol]
        calls = [
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
        ]
        for data in calls:
            session.send(dep, configurator, data, gas=500_000, label=f"configure {r.symbol}")
    session.mine(_next_time(session))

    dp_art = art.aave("AaveProtocolDataProvider")
    answers = session.eth_calls(
        [
            (data_provider, dp_art.encode("getReserveTokensAddresses", tokens[r.symbol]))
            for r in RESERVES
        ]
    )
    assets: dict[str, Asset] = {}
    for r, answer in zip(RESERVES, answers, strict=True):
        a_token, stable_debt, variable_debt = abi_decode(
            ["address", "address", "address"], bytes.fromhex(answer[2:])
        )
        assets[r.symbol] = Asset(
            symbol=r.symbol,
            address=tokens[r.symbol],
            decimals=r.decimals,
            source=sources[r.symbol],
            svr=r.symbol in profile.svr_assets,
            source_block=feeds_block.number,
            atoken=a_token.lower(),
            stable_debt_token=stable_debt.lower(),
            variable_debt_token=variable_debt.lower(),
        )
    return Deployment(
        chain=session.name,
        chain_id=session.chain_id,
        first_block=first.number,
        pool_block=pool_block.number,
        provider=provider,
        acl_manager=acl,
        pool=pool,
        pool_impl=pool_impl,
        pool_artifact=pool_name,
        configurator=configurator,
        oracle=oracle,
        data_provider=data_provider,
        treasury=TREASURY,
        libraries=libraries,
        assets=assets,
        svr_model=profile.svr_model,
        svr_recipient=SVR_RECIPIENT,
        forwarder=forwarder,
        settlement=settlement,
        dapp_control=SVR_DAPP_CONTROL if settlement else "",
        searchers=searchers,
        builders=list(BUILDERS) if profile.svr_model == "mev-share" else [],
    )


def fund_actors(session: ChainSession, d: Deployment) -> None:
    """Give gas money to every actor and let liquidators and searchers hold debt tokens.

    Liquidity itself (the whale's deposits) is part of the scenario, not of the deployment.
    """
    actors = [
        WHALE,
        ORACLE_PRIMARY,
        ORACLE_SECONDARY,
        *LIQUIDATORS,
        *SEARCHERS,
        *BUILDERS,
        *SOLVERS,
        BUNDLER,
    ]
    session.rpc.batch([("anvil_setBalance", [a, hex(10**24)]) for a in actors])
    if d.searchers:
        # The first searcher/solver contract can pay native bids; the second cannot, so its
        # attempts in an Atlas metacall fail (a losing solver).
        session.rpc.batch([("anvil_setBalance", [d.searchers[0], hex(10**24)])])
    erc20 = art.aave("MintableERC20")
    holders = [*LIQUIDATORS, *d.searchers]
    for symbol, asset in d.assets.items():
        if symbol == "WBTC":
            continue  # nobody borrows WBTC on the devnet
        amount = 10 ** (asset.decimals + 12)
        for holder in holders:
            session.send(
                holder if holder in LIQUIDATORS else LIQUIDATORS[0],
                asset.address,
                erc20.encode("mint(address,uint256)", holder, amount),
                gas=200_000,
                label=f"mint {symbol}",
            )
        for liquidator in LIQUIDATORS:
            session.send(
                liquidator,
                asset.address,
                erc20.encode("approve", d.pool, MAX_UINT),
                gas=100_000,
                label=f"approve {symbol}",
            )
    session.mine(_next_time(session))
