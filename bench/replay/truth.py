"""Ground truth row by row: every generated liquidation with the identifiers an indexer stores
(tx hash, log index), for checks finer than `History.expected_counts()`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from .blocks import render_block
from .history import ChainHistory


class LiquidationTruth(NamedTuple):
    chain_id: int
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    collateral_asset: str
    debt_asset: str
    user: str
    liquidator: str
    debt_to_cover: int
    liquidated_collateral_amount: int
    receive_a_token: bool
    debt_price: int  # AaveOracle price at the block, 8 decimals
    collateral_price: int
    svr: bool  # SVR liquidation by the project's attribution rule
    recaptured_wei: int  # the bid recaptured with it (0 unless it went through SVR)


def liquidations(
    ch: ChainHistory, lo: int | None = None, hi: int | None = None
) -> Iterator[LiquidationTruth]:
    """Every liquidation of blocks [lo, hi] (default: the whole window), in chain order."""
    lo = ch.start if lo is None else lo
    hi = ch.last if hi is None else hi
    for n in ch.event_blocks(lo, hi):
        plan = ch.plan(n)
        if plan is None:  # pragma: no cover - event_blocks only yields event blocks
            continue
        rb = render_block(ch, plan)
        for liq, li in zip(plan.liqs, rb.liq_logs, strict=True):
            entry = rb.logs[li]
            yield LiquidationTruth(
                chain_id=ch.chain_id,
                block_number=n,
                block_hash=rb.hash,
                tx_hash=rb.txs[entry.tx].hash,
                log_index=li,
                collateral_asset=ch.assets[liq.collateral].address,
                debt_asset=ch.assets[liq.debt].address,
                user=ch.user_address(liq.user),
                liquidator="0x" + entry.data[2 + 64 * 2 + 24 : 2 + 64 * 3],
                debt_to_cover=liq.debt_amount,
                liquidated_collateral_amount=liq.collateral_amount,
                receive_a_token=liq.receive_atoken,
                debt_price=liq.debt_price,
                collateral_price=liq.collateral_price,
                svr=liq.svr,
                recaptured_wei=liq.bid_wei,
            )
