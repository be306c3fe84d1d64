"""What the parts of one chain's scenario share: the node, the markets, the dice, the record."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import artifacts as art
from . import manifest as mf
from .artifacts import Artifact
from .chains import PROFILES, ChainProfile
from .deploy import Deployment, Market
from .feeds import resolve
from .session import Block, ChainSession, Sent

#: Why a liquidation with a new secondary-route report earlier in its block (MEV-Share) or
#: transaction (Atlas) is, or is not, SVR; when several precede it, the first of these that
#: applies to one of them. Catch-ups (a SecondaryRoundIdUpdated without a report) never
#: count: preceded by catch-ups only, a liquidation is CATCH_UP.
REASONS = (
    "svr",  # the update's aggregator is behind the source in force for one of its assets
    "unsold",  # ... but (MEV-Share) no builder's refund follows in the block: not sold
    "before_switch",  # ... will be, in the same market, once the source is switched
    "other_market_source",  # ... is, but in another market
    "other_asset",  # an Aave SVR aggregator, but of other assets
    "foreign_aggregator",  # an aggregator behind no Aave source
)
CATCH_UP = "catch_up"
#: An ordinary liquidation (no SecondaryRoundIdUpdated before it) that a public report made
#: possible once it reached Aave, after the DualAggregator's cutoff time.
AFTER_CUTOFF_PUBLIC = "after_cutoff_public"


@dataclass(frozen=True)
class Label:
    """What the scenario means one liquidation to be (svr: the attributed update)."""

    reason: str | None = None
    svr: dict[str, Any] | None = None


ORDINARY = Label()


@dataclass
class Journal:
    """Manifest entries recorded from receipts as blocks are mined."""

    liquidations: list[dict[str, Any]] = field(default_factory=list)
    oracle_updates: list[dict[str, Any]] = field(default_factory=list)
    recaptures: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    metacalls: list[dict[str, Any]] = field(default_factory=list)
    deficits: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Contracts:
    """ABIs the scenario encodes calls with."""

    pool: Artifact
    erc20: Artifact
    variable_debt: Artifact
    aggregator: Artifact
    searcher: Artifact
    settlement: Artifact
    forwarder: Artifact
    mock: Artifact

    @classmethod
    def load(cls, compiled: dict[str, dict[str, Any]]) -> Contracts:
        return cls(
            pool=art.aave("Pool"),
            erc20=art.aave("MintableERC20"),
            variable_debt=art.aave("VariableDebtToken"),
            aggregator=art.from_solc("DualAggregator", compiled),
            searcher=art.from_solc("SvrSearcher", compiled),
            settlement=art.from_solc("AtlasSettlement", compiled),
            forwarder=art.from_solc("Forwarder", compiled),
            mock=art.from_solc("MockFeed", compiled),
        )


class ChainContext:
    def __init__(
        self, session: ChainSession, deployment: Deployment, contracts: Contracts, rng_key: str
    ) -> None:
        self.s = session
        self.d = deployment
        self.c = contracts
        self.profile: ChainProfile = PROFILES[session.name]
        self.rng = random.Random(rng_key)
        #: For choices that must leave the scenario's stream (`rng`) as it is.
        self.side_rng = random.Random(rng_key + "/side")
        self.journal = Journal()
        self._cases: dict[str, list[int]] = {}  # case -> [opportunities, occurrences]
        # Every DualAggregator's events are recorded; the manifest keeps those of Aave's.
        self.aggregators = {a for a, f in deployment.feeds.items() if f.kind == "dual"}
        if deployment.foreign_aggregator:
            self.aggregators.add(deployment.foreign_aggregator)

    def chance(self, case: str, p: float, by: int = 2) -> bool:
        """True with probability `p`, and at the latest at the case's `by`-th opportunity if
        it has not happened yet: each case the tests look for occurs at any scale."""
        seen = self._cases.setdefault(case, [0, 0])
        seen[0] += 1
        hit = self.rng.random() < p or (seen[1] == 0 and seen[0] >= by)
        seen[1] += hit
        return hit

    def occurred(self, case: str, now: bool = False) -> bool:
        """Whether the case has happened (with `now`: it happens now, so yes)."""
        seen = self._cases.setdefault(case, [0, 0])
        seen[1] += now
        return seen[1] > 0

    def addr(self, symbol: str) -> str:
        return self.d.tokens[symbol]

    def market(self, name: str) -> Market:
        return self.d.markets[name]

    def next_time(self) -> int:
        return self.s.head_time + self.profile.block_time

    # --- which aggregator stands behind which source --------------------------------------

    def svr_behind(self, market: str, symbol: str, planned: bool = False) -> str | None:
        """The SVR aggregator behind the market's source of `symbol` now (or, with
        `planned`, behind the source it is to be switched to)."""
        asset = self.d.markets[market].assets.get(symbol)
        if asset is None:
            return None
        source = asset.planned_source if planned else asset.source
        if not source:
            return None
        behind = resolve(self.d.feeds, source)
        return behind.aggregator if behind.is_svr else None

    def in_force(self, aggregator: str) -> bool:
        """Whether the aggregator is behind a source of some market now."""
        return any(
            self.svr_behind(m, s) == aggregator
            for m, market in self.d.markets.items()
            for s in market.assets
        )

    def reason(self, market: str, assets: Iterable[str], aggregators: Sequence[str]) -> str:
        """Why a liquidation of `assets` in `market` after new secondary reports of
        `aggregators` is SVR or not (see REASONS); after none, only catch-ups preceded it."""
        if not aggregators:
            return CATCH_UP
        symbols = set(assets)
        found = set()
        aave = {a for a, f in self.d.feeds.items() if f.kind == "dual"}
        for agg in aggregators:
            if any(self.svr_behind(market, s) == agg for s in symbols):
                found.add("svr")
            elif any(self.svr_behind(market, s, planned=True) == agg for s in symbols):
                found.add("before_switch")
            elif any(
                self.svr_behind(m, s) == agg for m in self.d.markets if m != market for s in symbols
            ):
                found.add("other_market_source")
            elif agg in aave:
                found.add("other_asset")
            else:
                found.add("foreign_aggregator")
        return next(r for r in REASONS if r in found)

    # --- the record -----------------------------------------------------------------------

    def record_oracle(self, block: Block, sent: Sent) -> None:
        self.journal.oracle_updates += mf.oracle_entries(block, sent, self.aggregators)

    def record_liquidations(
        self, block: Block, sent: Sent, labels: Sequence[Label] | Label
    ) -> list[dict[str, Any]]:
        """Adds the transaction's liquidations, labelled in log order; returns them."""
        entries = mf.liquidation_entries(self.d, block, sent, labels)
        self.journal.liquidations += entries
        self.record_deficits(block, sent)
        return entries

    def record_deficits(self, block: Block, sent: Sent) -> None:
        """The transaction's DeficitCreated / DeficitCovered logs (V3.6 pools only emit them)."""
        self.journal.deficits += mf.deficit_entries(self.d, block, sent)
