"""Deploy complete Aave V3 markets from the unmodified @aave/core-v3 artifacts, plus the
devnet's price feeds and SVR contracts, on one chain.

Order matters (see the facts file): provider -> setACLAdmin -> ACLManager -> setACLManager ->
libraries -> Pool/PoolConfigurator implementations -> setPoolImpl / setPoolConfiguratorImpl
(these create and initialise the proxies) -> oracle -> token implementations and strategies
-> initReserves -> risk parameters. Addresses of contracts not yet mined are predicted from
the deployer's nonce, so a whole phase goes out in one batch and one block.

A second market (ethereum's "prime") has a deployer of its own, with its own provider,
ACLManager, Pool, AaveOracle and tokens' aTokens, sharing the libraries, the PoolConfigurator
implementation and the underlying tokens with core; core's addresses stay the same on every
chain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from eth_abi import decode as abi_decode

from . import artifacts as art
from . import manifest as mf
from . import v36
from .artifacts import Artifact
from .chains import PROFILES
from .feeds import (
    CAPO_RATIO,
    STABLE_CAP,
    TYPE_AND_VERSION,
    FeedInfo,
    SourcePlan,
    plan_for,
)
from .market import (
    BONDED_SOLVERS,
    BUILDERS,
    BUNDLER,
    BY_SYMBOL,
    CUTOFF_BLOCKS,
    DEPLOYER,
    LIQUIDATION_PROTOCOL_FEE_BPS,
    LIQUIDATORS,
    MARKET_DEPLOYERS,
    MARKET_RESERVES,
    MARKETS,
    MAX_SYNC_ITERATIONS,
    ORACLE_PRIMARY,
    ORACLE_SECONDARY,
    OTHER_DAPP_CONTROL,
    OTHER_PROTOCOL,
    OTHER_RECIPIENT,
    OTHER_SECONDARY,
    PRICE_SETTER,
    RESERVES,
    SEARCHERS,
    SOLVERS,
    SOURCE_STEWARD,
    STRATEGY_STABLE,
    STRATEGY_VOLATILE,
    SVR_DAPP_CONTROL,
    SVR_RECIPIENT,
    TREASURY,
    UMBRELLA,
    WHALE,
    price_units,
)
from .session import Block, ChainSession, create_address

ZERO = "0x0000000000000000000000000000000000000000"
MAX_UINT = 2**256 - 1
OWN_CONTRACTS = (
    "DualAggregator",
    "AtlasSettlement",
    "SvrSearcher",
    "Forwarder",
    "FeedProxy",
    "CapoAdapter",
    "StableCapoAdapter",
    "PlainAggregator",
    "MockFeed",
)


@dataclass
class Asset:
    """One reserve of one market."""

    symbol: str
    address: str  # the underlying token (shared by the markets)
    decimals: int
    source: str  # the price source AaveOracle reads now
    atoken: str = ""
    stable_debt_token: str = ""
    variable_debt_token: str = ""
    planned_source: str = ""  # what setAssetSources switches to at switch_step
    switch_step: int = 0


@dataclass
class Market:
    name: str
    admin: str  # deployer and pool admin
    provider: str
    acl_manager: str
    pool: str
    pool_impl: str
    configurator: str
    oracle: str
    data_provider: str
    pool_block: int
    assets: dict[str, Asset]  # by symbol
    package: str = "@aave/core-v3 1.19.3"  # where the Pool's code comes from
    libraries: dict[str, str] = field(default_factory=dict)  # its own (v36); else the chain's

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Market:
        assets = {k: Asset(**v) for k, v in data["assets"].items()}
        return cls(**{**data, "assets": assets})


@dataclass
class Deployment:
    """Addresses of one chain's markets; saved in .devnet/state/<chain>.json."""

    chain: str
    chain_id: int
    first_block: int
    pool_artifact: str  # "Pool" or "L2Pool"
    configurator_impl: str
    treasury: str
    libraries: dict[str, str]
    tokens: dict[str, str]  # symbol -> underlying token
    markets: dict[str, Market]  # "core" first
    feeds: dict[str, FeedInfo]  # every price feed contract, by address
    duals: dict[str, str]  # symbol -> the DualAggregator Aave's SVR sources read
    svr_model: str
    svr_recipient: str
    foreign_aggregator: str = ""  # another protocol's DualAggregator, behind no Aave source
    forwarder: str = ""  # ethereum: carries secondary-route reports
    settlement: str = ""  # atlas chains
    dapp_control: str = ""  # atlas chains
    other_dapp_control: str = ""  # atlas chains: the other protocol's DAppControl
    searchers: list[str] = field(default_factory=list)  # SvrSearcher contracts
    builders: list[str] = field(default_factory=list)
    #: DualAggregator settings (seconds; rounds), and per Aave DualAggregator the readers
    #: that get its secondary (SVR) view: the feed proxy in front of it, or the AaveOracle
    #: that reads it directly.
    cutoff_time: int = 0
    max_sync_iterations: int = 0
    secondary_proxies: dict[str, list[str]] = field(default_factory=dict)

    @property
    def core(self) -> Market:
        return self.markets["core"]

    def writable_feeds(self, symbol: str) -> list[str]:
        """The feeds of `symbol` whose answer the scenario sets (MockFeed, PlainAggregator)."""
        return [
            a for a, f in self.feeds.items() if f.symbol == symbol and f.kind in ("mock", "plain")
        ]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        markets = {k: Market.from_json(v) for k, v in data["markets"].items()}
        feeds = {k: FeedInfo(**v) for k, v in data["feeds"].items()}
        return cls(**{**data, "markets": markets, "feeds": feeds})


@dataclass
class _Pending:
    """A market being deployed: what earlier blocks produced for the later ones."""

    name: str
    admin: str
    provider: str
    acl: str
    pool_impl: str
    pool: str = ""
    configurator: str = ""
    pool_block: int = 0
    oracle: str = ""
    data_provider: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    planned: dict[str, tuple[str, int]] = field(default_factory=dict)
    impls: tuple[str, str, str] = ("", "", "")
    strategies: tuple[str, str] = ("", "")
    #: DualAggregator -> the readers of it this market's sources put in front of it.
    readers: dict[str, list[str]] = field(default_factory=dict)
    #: A market of another release (v36): its package, own libraries and configurator.
    package: str = ""
    libraries: dict[str, str] = field(default_factory=dict)
    configurator_impl: str = ""


def _next_time(session: ChainSession) -> int:
    return session.head_time + PROFILES[session.name].block_time


def svr_symbols(chain: str) -> list[str]:
    """The assets that have a DualAggregator on `chain` (in some market, at some time)."""
    return [
        r.symbol
        for r in RESERVES
        if any(plan_for(chain, m, r.symbol).feed == "dual" for m in MARKETS[chain])
    ]


def _market_block_1(
    session: ChainSession, name: str, libraries: dict[str, str], pool_name: str
) -> _Pending:
    """Provider, ACL roles and the Pool implementation of one market (block 1)."""
    admin = MARKET_DEPLOYERS[name]
    provider_art = art.aave("PoolAddressesProvider")
    acl_art = art.aave("ACLManager")
    provider = session.deploy(
        admin, provider_art.deploy_data(f"Aave V3 devnet {name}", admin), label="Provider"
    )
    session.send(admin, provider, provider_art.encode("setACLAdmin", admin), label="setACLAdmin")
    acl = session.deploy(admin, acl_art.deploy_data(provider), label="ACLManager")
    session.send(admin, provider, provider_art.encode("setACLManager", acl), label="setACLManager")
    session.send(admin, acl, acl_art.encode("addPoolAdmin", admin), label="addPoolAdmin")
    session.send(admin, acl, acl_art.encode("addRiskAdmin", admin), label="addRiskAdmin")
    session.send(
        admin,
        acl,
        acl_art.encode("addAssetListingAdmin", SOURCE_STEWARD),
        label="addAssetListingAdmin",
    )
    if name == "core":
        for lib in (*art.POOL_LIBRARIES, "ConfiguratorLogic"):
            libraries[lib] = session.deploy(
                admin, art.aave(lib).deploy_data(libraries=libraries), label=lib
            )
    pool_impl = session.deploy(
        admin,
        art.aave(pool_name).deploy_data(provider, libraries=libraries),
        gas=10_000_000,
        label=pool_name,
    )
    return _Pending(name, admin, provider, acl, pool_impl)


def _deploy_source(
    session: ChainSession,
    own: dict[str, Artifact],
    plan: SourcePlan,
    duals: dict[str, str],
    feeds: dict[str, FeedInfo],
    m: _Pending,
) -> str:
    """The planned source's contracts, innermost first; returns the outermost. A
    DualAggregator's reader (the wrapper right in front of it, or the market's AaveOracle
    when the source is the aggregator itself) goes to `m.readers`."""
    sender = MARKET_DEPLOYERS[plan.market]
    symbol = plan.symbol
    start = price_units(BY_SYMBOL[symbol].price_usd)
    if plan.feed == "dual":
        inner = duals[symbol]
    elif plan.feed == "plain":
        inner = session.deploy(
            sender,
            own["PlainAggregator"].deploy_data(start, PRICE_SETTER),
            label=f"PlainAggregator {symbol}",
        )
        feeds[inner] = FeedInfo("plain", symbol, None, TYPE_AND_VERSION["plain"])
    else:
        inner = _deploy_mock(session, own, sender, symbol, feeds)
    for wrapper in reversed(plan.wrappers):
        if wrapper == "proxy":
            data = own["FeedProxy"].deploy_data(inner)
        elif wrapper == "capo":
            data = own["CapoAdapter"].deploy_data(inner, CAPO_RATIO)
        else:
            data = own["StableCapoAdapter"].deploy_data(inner, STABLE_CAP)
        address = session.deploy(sender, data, label=f"{wrapper} {plan.market} {symbol}")
        feeds[address] = FeedInfo(wrapper, symbol, inner, None)
        if plan.feed == "dual" and inner == duals[symbol]:
            m.readers.setdefault(inner, []).append(address)
        inner = address
    if plan.feed == "dual" and not plan.wrappers:
        m.readers.setdefault(inner, []).append("")  # the oracle, once deployed
    return inner


def _deploy_mock(
    session: ChainSession,
    own: dict[str, Artifact],
    sender: str,
    symbol: str,
    feeds: dict[str, FeedInfo],
) -> str:
    address = session.deploy(
        sender,
        own["MockFeed"].deploy_data(price_units(BY_SYMBOL[symbol].price_usd), PRICE_SETTER),
        label=f"MockFeed {symbol}",
    )
    feeds[address] = FeedInfo("mock", symbol, None, None)
    return address


def _market_block_3(
    session: ChainSession,
    m: _Pending,
    own: dict[str, Artifact],
    tokens: dict[str, str],
    duals: dict[str, str],
    feeds: dict[str, FeedInfo],
) -> None:
    """Price sources, AaveOracle, data provider, token implementations and strategies."""
    admin = m.admin
    provider_art = art.aave("PoolAddressesProvider")
    symbols = MARKET_RESERVES[m.name]
    for symbol in symbols:
        plan = plan_for(session.name, m.name, symbol)
        if plan.switch_step is None:
            m.sources[symbol] = _deploy_source(session, own, plan, duals, feeds, m)
        else:
            m.sources[symbol] = _deploy_mock(session, own, admin, symbol, feeds)
            planned = _deploy_source(session, own, plan, duals, feeds, m)
            m.planned[symbol] = (planned, plan.switch_step)
    m.oracle = session.deploy(
        admin,
        art.aave("AaveOracle").deploy_data(
            m.provider,
            [tokens[s] for s in symbols],
            [m.sources[s] for s in symbols],
            ZERO,
            ZERO,
            10**8,
        ),
        label=f"AaveOracle {m.name}",
    )
    m.readers = {a: [r or m.oracle for r in rs] for a, rs in m.readers.items()}
    session.send(
        admin, m.provider, provider_art.encode("setPriceOracle", m.oracle), label="setOracle"
    )
    m.data_provider = session.deploy(
        admin, art.aave("AaveProtocolDataProvider").deploy_data(m.provider), label="DataProvider"
    )
    session.send(
        admin,
        m.provider,
        provider_art.encode("setPoolDataProvider", m.data_provider),
        label="setPoolDataProvider",
    )
    m.impls = (
        session.deploy(admin, art.aave("AToken").deploy_data(m.pool), label="AToken"),
        session.deploy(
            admin, art.aave("StableDebtToken").deploy_data(m.pool), label="StableDebtToken"
        ),
        session.deploy(
            admin, art.aave("VariableDebtToken").deploy_data(m.pool), label="VariableDebtToken"
        ),
    )
    strategy_art = art.aave("DefaultReserveInterestRateStrategy")
    m.strategies = (
        session.deploy(
            admin,
            strategy_art.deploy_data(m.provider, *STRATEGY_VOLATILE),
            label="strategy volatile",
        ),
        session.deploy(
            admin, strategy_art.deploy_data(m.provider, *STRATEGY_STABLE), label="strategy stable"
        ),
    )


def _market_block_4(session: ChainSession, m: _Pending, tokens: dict[str, str]) -> None:
    """Reserves and their risk parameters."""
    conf_art = art.aave("PoolConfigurator")
    reserves = [BY_SYMBOL[s] for s in MARKET_RESERVES[m.name]]
    atoken_impl, stable_impl, variable_impl = m.impls
    volatile, stable = m.strategies
    label = "" if m.name == "core" else f"{m.name} "
    inputs = [
        (
            atoken_impl,
            stable_impl,
            variable_impl,
            r.decimals,
            stable if r.stable else volatile,
            tokens[r.symbol],
            TREASURY,
            ZERO,
            f"Aave devnet {label}{r.symbol}",
            f"a{r.symbol}",
            f"Aave devnet {label}Variable Debt {r.symbol}",
            f"variableDebt{r.symbol}",
            f"Aave devnet {label}Stable Debt {r.symbol}",
            f"stableDebt{r.symbol}",
            b"",
        )
        for r in reserves
    ]
    session.send(
        m.admin,
        m.configurator,
        conf_art.encode("initReserves", inputs),
        gas=12_000_000,
        label="initReserves",
    )
    for r in reserves:
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
            session.send(m.admin, m.configurator, data, gas=500_000, label=f"configure {r.symbol}")


def _market(session: ChainSession, m: _Pending, tokens: dict[str, str]) -> Market:
    """The finished market, its reserve token addresses read from its data provider."""
    dp_art = art.aave("AaveProtocolDataProvider")
    symbols = MARKET_RESERVES[m.name]
    answers = session.eth_calls(
        [(m.data_provider, dp_art.encode("getReserveTokensAddresses", tokens[s])) for s in symbols]
    )
    assets: dict[str, Asset] = {}
    for symbol, answer in zip(symbols, answers, strict=True):
        a_token, stable_debt, variable_debt = abi_decode(
            ["address", "address", "address"], bytes.fromhex(answer[2:])
        )
        planned, step = m.planned.get(symbol, ("", 0))
        assets[symbol] = Asset(
            symbol=symbol,
            address=tokens[symbol],
            decimals=BY_SYMBOL[symbol].decimals,
            source=m.sources[symbol],
            atoken=a_token.lower(),
            stable_debt_token=stable_debt.lower(),
            variable_debt_token=variable_debt.lower(),
            planned_source=planned,
            switch_step=step,
        )
    market = Market(
        name=m.name,
        admin=m.admin,
        provider=m.provider,
        acl_manager=m.acl,
        pool=m.pool,
        pool_impl=m.pool_impl,
        configurator=m.configurator,
        oracle=m.oracle,
        data_provider=m.data_provider,
        pool_block=m.pool_block,
        assets=assets,
    )
    if m.package:
        market.package, market.libraries = m.package, m.libraries
    return market


def deploy_market(
    session: ChainSession, compiled: dict[str, dict[str, Any]]
) -> tuple[Deployment, list[dict[str, Any]]]:
    """Deploy everything on a chain, in 4 blocks (about 70 transactions a market).

    Returns the deployment and the `sources` entries of the oracles' constructors.
    """
    profile = PROFILES[session.name]
    dep = DEPLOYER
    own = {n: art.from_solc(n, compiled) for n in OWN_CONTRACTS}
    provider_art = art.aave("PoolAddressesProvider")
    pool_name = "L2Pool" if profile.l2_pool else "Pool"
    names = MARKETS[session.name]
    others = [MARKET_DEPLOYERS[n] for n in names if n != "core"]
    later: list[_Pending] = []  # markets of another release, deployed after the others
    if v36.has_market(session.name):
        admin = MARKET_DEPLOYERS[v36.NAME]
        later.append(_Pending(v36.NAME, admin, "", "", "", package=v36.PACKAGE))
        others += [admin, UMBRELLA]
    if profile.svr_model != "none":
        others.append(OTHER_PROTOCOL)
    if others:
        session.rpc.batch([("anvil_setBalance", [a, hex(10**24)]) for a in others])

    # Block 1: providers, ACLs, libraries, implementations.
    libraries: dict[str, str] = {}
    pending = [_market_block_1(session, n, libraries, pool_name) for n in names]
    conf_impl = session.deploy(
        dep,
        art.aave("PoolConfigurator").deploy_data(libraries=libraries),
        gas=10_000_000,
        label="PoolConfigurator",
    )
    for m in later:
        v36.block_1(session, m)
    first = session.mine(_next_time(session))

    # Block 2: the proxies (each provider creates them with CREATE, nonces 1 and 2).
    for m in pending:
        session.send(
            m.admin,
            m.provider,
            provider_art.encode("setPoolImpl", m.pool_impl),
            gas=3_000_000,
            label="setPoolImpl",
        )
        session.send(
            m.admin,
            m.provider,
            provider_art.encode("setPoolConfiguratorImpl", conf_impl),
            gas=3_000_000,
            label="setPoolConfiguratorImpl",
        )
    for m in later:
        v36.block_2(session, m)
    pool_block = session.mine(_next_time(session))
    for m in pending + later:
        m.pool = create_address(m.provider, 1)
        m.configurator = create_address(m.provider, 2)
        m.pool_block = pool_block.number

    # Block 3: tokens, SVR contracts, price feeds, oracles, data providers, implementations.
    erc20 = art.aave("MintableERC20")
    tokens = {
        r.symbol: session.deploy(
            dep, erc20.deploy_data(r.name, r.symbol, r.decimals), label=r.symbol
        )
        for r in RESERVES
    }
    forwarder = settlement = foreign = ""
    searchers: list[str] = []
    if profile.svr_model == "mev-share":
        forwarder = session.deploy(
            dep, own["Forwarder"].deploy_data([ORACLE_SECONDARY]), label="Forwarder"
        )
    if profile.svr_model == "atlas":
        settlement = session.deploy(
            dep,
            own["AtlasSettlement"].deploy_data(
                [SVR_DAPP_CONTROL, OTHER_DAPP_CONTROL],
                [SVR_RECIPIENT, OTHER_RECIPIENT],
                [True, False],  # Aave's SVR DAppControl lets several solvers win
                list(BONDED_SOLVERS),
            ),
            label="AtlasSettlement",
        )
    if profile.svr_model != "none":
        searchers = [
            session.deploy(dep, own["SvrSearcher"].deploy_data(), label="SvrSearcher")
            for _ in range(2)
        ]
    secondary = [forwarder] if forwarder else [settlement, ORACLE_SECONDARY]
    cutoff = CUTOFF_BLOCKS * profile.block_time
    feeds: dict[str, FeedInfo] = {}
    duals: dict[str, str] = {}
    for symbol in svr_symbols(session.name):
        duals[symbol] = session.deploy(
            dep,
            own["DualAggregator"].deploy_data(
                f"{symbol} / USD", [ORACLE_PRIMARY], secondary, cutoff, MAX_SYNC_ITERATIONS
            ),
            label=f"DualAggregator {symbol}",
        )
        feeds[duals[symbol]] = FeedInfo("dual", symbol, None, TYPE_AND_VERSION["dual"])
    if profile.svr_model != "none":
        # Another protocol's SVR feed for ETH / USD: its own node sends its secondary reports
        # (through the shared Atlas settlement on atlas chains).
        foreign_secondary = [OTHER_SECONDARY, *([settlement] if settlement else [])]
        foreign = session.deploy(
            OTHER_PROTOCOL,
            own["DualAggregator"].deploy_data(
                "ETH / USD (another protocol)",
                [ORACLE_PRIMARY],
                foreign_secondary,
                cutoff,
                MAX_SYNC_ITERATIONS,
            ),
            label="DualAggregator other protocol",
        )
    for m in pending:
        _market_block_3(session, m, own, tokens, duals, feeds)
    for m in later:
        v36.block_3(session, m, own, tokens, feeds, _deploy_mock)
    feeds_block = session.mine(_next_time(session))

    # Block 4: reserves and their risk parameters; the readers of the SVR view.
    for m in pending:
        _market_block_4(session, m, tokens)
    for m in later:
        v36.block_4(session, m, tokens, UMBRELLA)
    readers: dict[str, list[str]] = {}
    for m in pending:
        for aggregator, rs in m.readers.items():
            readers.setdefault(aggregator, []).extend(rs)
    dual_art = own["DualAggregator"]
    for aggregator, rs in readers.items():
        for reader in rs:
            session.send(
                dep,
                aggregator,
                dual_art.encode("setSecondaryProxy", reader, True),
                gas=100_000,
                label="setSecondaryProxy",
            )
    session.mine(_next_time(session))

    markets = {m.name: _market(session, m, tokens) for m in pending + later}
    sources: list[dict[str, Any]] = []
    for m in pending + later:
        (sent,) = [s for s in feeds_block.txs if s.label == f"AaveOracle {m.name}"]
        sources += mf.source_entries(feeds_block, sent, m.name, m.oracle, feeds)
    deployment = Deployment(
        chain=session.name,
        chain_id=session.chain_id,
        first_block=first.number,
        pool_artifact=pool_name,
        configurator_impl=conf_impl,
        treasury=TREASURY,
        libraries=libraries,
        tokens=tokens,
        markets=markets,
        feeds=feeds,
        duals=duals,
        svr_model=profile.svr_model,
        svr_recipient=SVR_RECIPIENT,
        foreign_aggregator=foreign,
        forwarder=forwarder,
        settlement=settlement,
        dapp_control=SVR_DAPP_CONTROL if settlement else "",
        other_dapp_control=OTHER_DAPP_CONTROL if settlement else "",
        searchers=searchers,
        builders=list(BUILDERS) if profile.svr_model == "mev-share" else [],
        cutoff_time=cutoff if duals else 0,
        max_sync_iterations=MAX_SYNC_ITERATIONS if duals else 0,
        secondary_proxies=readers,
    )
    return deployment, sources


def switch_source(session: ChainSession, d: Deployment, market: str, symbol: str) -> None:
    """Queue the steward's setAssetSources of `symbol` to its planned source."""
    m = d.markets[market]
    asset = m.assets[symbol]
    data = art.aave("AaveOracle").encode("setAssetSources", [asset.address], [asset.planned_source])
    session.send(
        SOURCE_STEWARD, m.oracle, data, gas=200_000, label=f"setAssetSources {market} {symbol}"
    )


def switched(d: Deployment, block: Block) -> list[dict[str, Any]]:
    """The `sources` entries of the block's setAssetSources, and the deployment updated."""
    out: list[dict[str, Any]] = []
    for sent in block.txs:
        if not sent.label.startswith("setAssetSources "):
            continue
        _, market, symbol = sent.label.split()
        m = d.markets[market]
        entries = mf.source_entries(block, sent, market, m.oracle, d.feeds)
        out += entries
        m.assets[symbol].source = entries[-1]["source"]
    return out


def fund_actors(session: ChainSession, d: Deployment) -> None:
    """Give gas money to every actor and let liquidators and searchers hold debt tokens.

    Liquidity itself (the whale's deposits) is part of the scenario, not of the deployment.
    """
    actors = [
        WHALE,
        ORACLE_PRIMARY,
        ORACLE_SECONDARY,
        OTHER_SECONDARY,
        SOURCE_STEWARD,
        PRICE_SETTER,
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
    for symbol, token in d.tokens.items():
        if symbol == "WBTC":
            continue  # nobody borrows WBTC on the devnet
        amount = 10 ** (BY_SYMBOL[symbol].decimals + 12)
        for holder in holders:
            session.send(
                holder if holder in LIQUIDATORS else LIQUIDATORS[0],
                token,
                erc20.encode("mint(address,uint256)", holder, amount),
                gas=200_000,
                label=f"mint {symbol}",
            )
        for m in d.markets.values():
            if symbol not in m.assets:
                continue
            for liquidator in LIQUIDATORS:
                session.send(
                    liquidator,
                    token,
                    erc20.encode("approve", m.pool, MAX_UINT),
                    gas=100_000,
                    label=f"approve {symbol}",
                )
    session.mine(_next_time(session))
