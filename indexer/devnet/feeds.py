"""Which price source each market gives each asset, and what stands behind it.

On real chains an Aave source is seldom the aggregator that receives the reports: it is a feed
proxy (aggregator()), a CAPO adapter (BASE_TO_USD_AGGREGATOR()) or a stable CAPO adapter
(ASSET_TO_USD_AGGREGATOR()), possibly one in front of another. The devnet uses every one of
these paths, switches some sources part-way through the crash (AaveOracle.setAssetSources),
and gives one asset an SVR source in one market and a plain one in the other, so that an
indexer dating SVR feeds on-chain meets each case.

Every feed contract the devnet deploys is registered with what it is (`FeedInfo`); `resolve`
answers, from that register alone, what the manifest says stands behind a source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DUAL_TYPE_AND_VERSION = "DualAggregator 1.0.0"
PLAIN_TYPE_AND_VERSION = "AccessControlledOCR2Aggregator 1.0.0"
CAPO_RATIO = 10**18  # a ratio of 1 (CapoAdapter.RATIO_UNIT)
STABLE_CAP = 104_000_000  # 1.04 USD, the stable CAPO adapter's cap

#: The getter by which each kind of wrapper names the feed behind it.
BEHIND_GETTER = {
    "proxy": "aggregator()",
    "capo": "BASE_TO_USD_AGGREGATOR()",
    "stable_capo": "ASSET_TO_USD_AGGREGATOR()",
}


@dataclass(frozen=True)
class SourcePlan:
    """One market's source for one asset: wrappers (outermost first) around a feed."""

    market: str
    symbol: str
    wrappers: tuple[str, ...]  # "proxy", "capo", "stable_capo"
    feed: str  # "dual" (the asset's DualAggregator), "mock" (MockFeed), "plain"
    #: When set, the market starts on a MockFeed and switches to this source with
    #: setAssetSources in block (a) of this crash step.
    switch_step: int | None = None


PLANS: dict[str, tuple[SourcePlan, ...]] = {
    "ethereum": (
        SourcePlan("core", "WETH", (), "dual"),
        SourcePlan("core", "WBTC", ("capo", "proxy"), "dual"),
        SourcePlan("core", "LINK", ("proxy",), "dual", switch_step=28),
        SourcePlan("core", "USDC", ("stable_capo",), "mock"),
        # Prime reads core's WETH aggregator through its own proxy, and WBTC from a plain
        # MockFeed: an SVR update of WBTC never makes a prime liquidation SVR.
        SourcePlan("prime", "WETH", ("proxy",), "dual"),
        SourcePlan("prime", "WBTC", (), "mock"),
        SourcePlan("prime", "USDC", ("proxy",), "plain"),
    ),
    "arbitrum": (
        SourcePlan("core", "WETH", ("proxy",), "dual"),
        SourcePlan("core", "WBTC", (), "dual", switch_step=18),
    ),
    "base": (
        SourcePlan("core", "WETH", (), "dual"),
        SourcePlan("core", "WBTC", ("capo", "proxy"), "dual", switch_step=20),
    ),
}


def plan_for(chain: str, market: str, symbol: str) -> SourcePlan:
    """The planned source; a plain MockFeed where the table says nothing."""
    for plan in PLANS.get(chain, ()):
        if (plan.market, plan.symbol) == (market, symbol):
            return plan
    return SourcePlan(market, symbol, (), "mock")


@dataclass(frozen=True)
class FeedInfo:
    """A deployed feed contract: what it is, for which asset, and what it wraps."""

    kind: str  # "dual", "mock", "plain", "proxy", "capo", "stable_capo"
    symbol: str
    behind: str | None  # the feed it reads (wrappers only)
    type_and_version: str | None  # what typeAndVersion() answers (None: no such function)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "symbol": self.symbol,
            "behind": self.behind,
            "type_and_version": self.type_and_version,
        }


TYPE_AND_VERSION = {"dual": DUAL_TYPE_AND_VERSION, "plain": PLAIN_TYPE_AND_VERSION}


@dataclass(frozen=True)
class Behind:
    """What stands behind a source, as the manifest's `sources` entries state it."""

    aggregator: str | None
    is_svr: bool
    type_and_version: str | None


def resolve(feeds: dict[str, FeedInfo], source: str) -> Behind:
    """The DualAggregator behind `source` if there is one; else the innermost feed behind its
    wrappers; else the source itself if it answers typeAndVersion(); else nothing."""
    info = feeds.get(source)
    if info is None:
        return Behind(None, False, None)
    address = source
    while info.behind is not None:
        address = info.behind
        info = feeds[address]
    if address == source and info.type_and_version is None:
        return Behind(None, False, None)
    version = info.type_and_version
    is_svr = version is not None and version.startswith("DualAggregator")
    return Behind(address, is_svr, version)
