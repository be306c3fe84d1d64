"""Exact ground truth of a generated history, computed from block plans (no rendering)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .history import ChainHistory


@dataclass
class ChainCounts:
    """What an indexer must find on one chain (up to `through_block`)."""

    chain: str
    chain_id: int
    through_block: int
    liquidations: int = 0
    svr_liquidations: int = 0
    recaptures: int = 0  # Ethereum: refund transfers; Atlas: winning SVR SolverTxResult logs
    recaptured_wei: int = 0  # sum of the recaptured native amounts
    event_blocks: int = 0
    debt_to_cover: dict[str, int] = field(default_factory=dict)  # asset address -> raw sum
    collateral_amount: dict[str, int] = field(default_factory=dict)  # asset -> raw sum
    debt_usd: Decimal = Decimal(0)  # sum of debtToCover * price / 10^decimals / 1e8, exact
    svr_debt_usd: Decimal = Decimal(0)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "chain_id": self.chain_id,
            "through_block": self.through_block,
            "liquidations": self.liquidations,
            "svr_liquidations": self.svr_liquidations,
            "recaptures": self.recaptures,
            "recaptured_wei": str(self.recaptured_wei),
            "event_blocks": self.event_blocks,
            "debt_to_cover": {k: str(v) for k, v in self.debt_to_cover.items()},
            "collateral_amount": {k: str(v) for k, v in self.collateral_amount.items()},
            "debt_usd": str(self.debt_usd),
            "svr_debt_usd": str(self.svr_debt_usd),
        }


def count_chain(ch: ChainHistory, through: int) -> ChainCounts:
    """Walk every event block up to `through` and total its plan."""
    n_assets = len(ch.assets)
    debt_sum = [0] * n_assets
    coll_sum = [0] * n_assets
    debt_value = [0] * n_assets  # sum of debtToCover * price (scaled by 10^(decimals + 8))
    svr_value = [0] * n_assets
    out = ChainCounts(ch.name, ch.chain_id, through)
    hi = min(through, ch.last)
    for n in ch.event_blocks(ch.start, hi):
        plan = ch.plan(n)
        if plan is None:  # pragma: no cover - event_blocks only yields event blocks
            continue
        out.event_blocks += 1
        for liq in plan.liqs:
            out.liquidations += 1
            debt_sum[liq.debt] += liq.debt_amount
            coll_sum[liq.collateral] += liq.collateral_amount
            value = liq.debt_amount * liq.debt_price
            debt_value[liq.debt] += value
            if liq.svr:
                out.svr_liquidations += 1
                svr_value[liq.debt] += value
            if liq.route >= 0:
                out.recaptures += 1
                out.recaptured_wei += liq.bid_wei
    with localcontext() as ctx:
        ctx.prec = 120
        for i, a in enumerate(ch.assets):
            if debt_sum[i]:
                out.debt_to_cover[a.address] = debt_sum[i]
            if coll_sum[i]:
                out.collateral_amount[a.address] = coll_sum[i]
            scale = Decimal(10) ** (a.decimals + 8)
            out.debt_usd += Decimal(debt_value[i]) / scale
            out.svr_debt_usd += Decimal(svr_value[i]) / scale
    return out
