"""SVR liquidations: a secondary-route price update and the liquidation that back-runs it.

Ethereum (MEV-Share): one block holds the update, the searcher's back-run (liquidation plus a
bid paid to block.coinbase) and the builder's refund of part of the bid to the SVR recipient.
Arbitrum and Base (Atlas): one metacall transaction holds the update and the solvers'
attempts; the winner's bid goes to the SVR recipient and SolverTxResult records it.
"""

from __future__ import annotations

from .context import ChainContext
from .deploy import MAX_UINT, ZERO
from .manifest import secondary_round, solver_results
from .market import (
    BUILDER_REFUND_BPS,
    BUILDERS,
    BUNDLER,
    BY_SYMBOL,
    LIQUIDATION_PROTOCOL_FEE_BPS,
    PRICE_UNIT,
    SEARCHERS,
    SOLVERS,
)
from .oracles import Oracles
from .positions import HealthBook, Target

LIQ_GAS = 1_500_000


def targets_for(ctx: ChainContext, book: HealthBook, symbol: str, price: int) -> list[Target]:
    """Positions this update makes liquidatable, most valuable first, as many as the
    searcher takes."""
    limit = ctx.rng.choice((1, 2, 3, 4, 6, 8))
    touched = [p for p in book.open() if symbol in (p.collateral, p.debt)]
    book.refresh([p for p in touched if p.hf is None or book.predicted(p, symbol, price) < 1.05])
    ready = []
    for p in touched:
        if p.closed or p.hf is None or p.hf < 1.0:
            continue  # already liquidatable: not this update's doing
        after = book.predicted(p, symbol, price)
        if after < 0.9993:
            ready.append((p.debt_usd, after, p))
    ready.sort(key=lambda item: -item[0])
    targets = []
    for debt_usd, after, p in ready[:limit]:
        close = 0.5 if after > 0.95 else 1.0  # Aave's close factor
        targets.append(Target(p, MAX_UINT, ctx.rng.random() < 0.1, debt_usd * close))
    return targets


def bid_wei(ctx: ChainContext, oracles: Oracles, targets: list[Target]) -> int:
    """A share of the bonus the searcher expects, in wei of the native coin (gwei-rounded)."""
    profit = 0.0
    for t in targets:
        bonus = BY_SYMBOL[t.position.collateral].liquidation_bonus / 10_000 - 1
        profit += t.covered_usd * bonus * (1 - LIQUIDATION_PROTOCOL_FEE_BPS / 10_000)
    share = ctx.rng.uniform(0.35, 0.85)
    eth_usd = oracles.now["WETH"] / PRICE_UNIT
    return max(1, int(profit * share / eth_usd * 1e9)) * 10**9


def _recapture(
    block_number: int,
    block_time: int,
    tx_hash: str,
    source_index: int,
    recipient: str,
    token: str | None,
    amount: int,
    aggregator: str,
    ids: list[str],
    bid: int,
    builder: str | None,
) -> dict[str, object]:
    return {
        "block_number": block_number,
        "block_time": block_time,
        "tx_hash": tx_hash,
        "source_index": source_index,
        "recipient": recipient,
        "token": token,
        "amount": str(amount),
        "aggregator": aggregator,
        "liquidation_ids": ids,
        "bid_amount": str(bid),
        "builder": builder,
    }


def mev_share_bundle(
    ctx: ChainContext, oracles: Oracles, symbol: str, targets: list[Target], when: int
) -> None:
    """[secondary update, searcher back-run paying coinbase, builder refund] in one block."""
    s, d = ctx.s, ctx.d
    builder = ctx.rng.choice(BUILDERS)
    s.rpc.call("anvil_setCoinbase", builder)
    update = oracles.send_secondary_by_nodes(symbol)
    backrun = refund = None
    bid = refund_amount = 0
    if targets:
        bid = bid_wei(ctx, oracles, targets)
        refund_amount = bid * BUILDER_REFUND_BPS // 10_000
        i = ctx.rng.randrange(len(SEARCHERS))
        args = [t.call_args(ctx) for t in targets]
        data = ctx.c.searcher.encode("liquidate", d.pool, args, ZERO, bid, ZERO)
        backrun = s.send(
            SEARCHERS[i],
            d.searchers[i],
            data,
            value=bid,
            gas=LIQ_GAS * len(targets) + 200_000,
            label="back-run",
        )
        refund = s.send(
            builder, d.svr_recipient, value=refund_amount, gas=21_000, label="builder refund"
        )
    block = s.mine(when)
    ctx.record_oracle(block, update)
    if backrun is None or refund is None:
        return
    agg = oracles.feeds[symbol].address
    svr = {
        "aggregator": agg,
        "round_id": secondary_round(update, agg),
        "oracle_tx_hash": update.tx_hash,
    }
    ids = ctx.record_liquidations(block, backrun, svr)
    ctx.journal.recaptures.append(
        _recapture(
            block.number,
            block.timestamp,
            refund.tx_hash,
            -1,
            d.svr_recipient,
            None,
            refund_amount,
            agg,
            ids,
            bid,
            builder,
        )
    )


def atlas_metacall(
    ctx: ChainContext, oracles: Oracles, symbol: str, targets: list[Target], when: int
) -> None:
    """One metacall: secondary update, then solver attempts in bid order (some lose)."""
    s, d, rng = ctx.s, ctx.d, ctx.rng
    agg = oracles.feeds[symbol].address
    ops: list[tuple[str, str, str, int, bytes]] = []
    bid_token = ZERO
    bid = 0
    if targets:
        bid = bid_wei(ctx, oracles, targets)
        if rng.random() < 0.3:
            bid_token = ctx.addr("WETH")
        args = [t.call_args(ctx) for t in targets]
        if rng.random() < 0.4:
            # A higher native bid from a solver whose contract cannot pay it: it fails.
            lose = ctx.c.searcher.encode("liquidate", d.pool, args, ZERO, 2 * bid, d.settlement)
            ops.append((SOLVERS[1], d.searchers[1], ZERO, 2 * bid, bytes.fromhex(lose[2:])))
        win = ctx.c.searcher.encode("liquidate", d.pool, args, bid_token, bid, d.settlement)
        ops.append((SOLVERS[0], d.searchers[0], bid_token, bid, bytes.fromhex(win[2:])))
    update = bytes.fromhex(oracles.transmit_data(symbol, True)[2:])
    call = ctx.c.settlement.encode("metacall", agg, update, ops)
    sent = s.send(
        BUNDLER,
        d.settlement,
        call,
        gas=LIQ_GAS * (1 + 2 * len(targets)) + 500_000,
        label="metacall",
    )
    block = s.mine(when)
    ctx.record_oracle(block, sent)
    if not targets:
        return
    svr = {
        "aggregator": agg,
        "round_id": secondary_round(sent, agg),
        "oracle_tx_hash": sent.tx_hash,
    }
    ids = ctx.record_liquidations(block, sent, svr)
    winner = next(r for r in solver_results(sent, d.settlement) if r["success"])
    ctx.journal.recaptures.append(
        _recapture(
            block.number,
            block.timestamp,
            sent.tx_hash,
            winner["log_index"],
            d.svr_recipient,
            None if bid_token == ZERO else bid_token,
            bid,
            agg,
            ids,
            bid,
            None,
        )
    )
