"""What the parts of one chain's scenario share: the node, the market, the dice, the record."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from . import artifacts as art
from . import manifest as mf
from .artifacts import Artifact
from .chains import PROFILES, ChainProfile
from .deploy import Deployment
from .session import Block, ChainSession, Sent


@dataclass
class Journal:
    """Manifest entries recorded from receipts as blocks are mined."""

    liquidations: list[dict[str, Any]] = field(default_factory=list)
    oracle_updates: list[dict[str, Any]] = field(default_factory=list)
    recaptures: list[dict[str, Any]] = field(default_factory=list)


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
        self.journal = Journal()
        self.aggregators = {a.source for a in deployment.assets.values() if a.svr}

    def addr(self, symbol: str) -> str:
        return self.d.assets[symbol].address

    def next_time(self) -> int:
        return self.s.head_time + self.profile.block_time

    def record_oracle(self, block: Block, sent: Sent) -> None:
        self.journal.oracle_updates += mf.oracle_entries(block, sent, self.aggregators)

    def record_liquidations(
        self, block: Block, sent: Sent, svr: dict[str, Any] | None
    ) -> list[str]:
        """Adds the transaction's liquidations; returns their ids."""
        entries = mf.liquidation_entries(self.d, block, sent, svr)
        self.journal.liquidations += entries
        return [e["id"] for e in entries]
