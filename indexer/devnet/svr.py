"""SVR liquidations: a secondary-route price update and the liquidation that back-runs it.

Ethereum (MEV-Share): one block holds the update, the searcher's back-run (liquidations plus a
bid paid to block.coinbase) and the builder's refund of part of the bid to the SVR recipient.
Arbitrum and Base (Atlas): one metacall transaction holds the update and the solvers'
attempts; the winner's bid goes to the SVR recipient and SolverTxResult records it.

Not every liquidation after a secondary update is SVR, and the scenario makes each kind of
near miss happen (context.REASONS): a back-run also sweeps up positions already liquidatable
that the update does not price ("other_asset") and, on ethereum, prime positions of an asset
whose SVR feed only core reads ("other_market_source"); before an asset's source is switched
to its SVR feed, that feed's updates are back-run all the same ("before_switch"); and another
protocol's SVR feed lands updates next to liquidations ("foreign_aggregator"); and on
ethereum some updates are not sold, liquidations following them with no refund ("unsold").
"""

from __future__ import annotations

from typing import Any

from .context import ChainContext, Label
from .deploy import MAX_UINT, ZERO
from .manifest import secondary_round, solver_results
from .market import (
    BUILDER_REFUND_BPS,
    BUILDERS,
    BUNDLER,
    BY_SYMBOL,
    LIQUIDATION_PROTOCOL_FEE_BPS,
    LIQUIDATORS,
    PRICE_UNIT,
    SEARCHERS,
    SOLVERS,
)
from .oracles import FOREIGN, Oracles
from .positions import HealthBook, Position, Target
from .session import Block, Sent

LIQ_GAS = 1_500_000
EXTRA_CHANCE = 0.5  # that a back-run also takes positions the update does not price
#: That an Ethereum SVR update is not sold: liquidator EOAs liquidate after it in its block,
#: with no bid and no builder refund (an unsold update is no won auction: not SVR).
UNSOLD_CHANCE = 0.15


def _target(ctx: ChainContext, p: Position, aggregators: list[str], close: float) -> Target:
    reason = ctx.reason(p.market, (p.collateral, p.debt), aggregators)
    covered = p.debt_usd * close
    return Target(p, MAX_UINT, ctx.rng.random() < 0.1, covered, Label(reason))


def targets_for(
    ctx: ChainContext, book: HealthBook, symbol: str, price: int, aggregators: list[str]
) -> list[Target]:
    """Positions (of any market) this update makes liquidatable, most valuable first, as
    many as the searcher takes, each labelled with why it is SVR or not. Positions whose
    source is not this feed are taken when already liquidatable too (near misses)."""
    limit = ctx.rng.choice((1, 2, 3, 4, 6, 8))
    touched = [p for p in book.open() if symbol in (p.collateral, p.debt)]
    book.refresh([p for p in touched if p.hf is None or book.predicted(p, symbol, price) < 1.05])
    ready = []
    for p in touched:
        if p.closed or p.hf is None:
            continue
        after = book.predicted(p, symbol, price)
        target = _target(ctx, p, aggregators, 0.5 if after > 0.95 else 1.0)  # close factor
        if p.hf < 1.0 and target.label.reason == "svr":
            continue  # already liquidatable: not this update's doing
        if after < 0.9993:
            ready.append((p.debt_usd, target))
    ready.sort(key=lambda item: -item[0])
    return [target for _, target in ready[:limit]]


def extras_for(
    ctx: ChainContext, book: HealthBook, symbol: str, aggregators: list[str]
) -> list[Target]:
    """Sometimes, positions already liquidatable that do not touch `symbol`: the searcher
    takes them in the same back-run, and they are not SVR."""
    if ctx.rng.random() >= EXTRA_CHANCE:
        return []
    candidates = [
        p
        for p in book.open()
        if symbol not in (p.collateral, p.debt) and p.hf is not None and book.predicted(p) < 1.0
    ]
    book.refresh(candidates)
    ready = [p for p in candidates if not p.closed and p.hf is not None and p.hf < 1.0]
    ready.sort(key=lambda p: -p.debt_usd)
    return [_target(ctx, p, aggregators, 0.5) for p in ready[: ctx.rng.choice((1, 2))]]


def may_sweep(ctx: ChainContext, targets: list[Target], aggregator: str) -> bool:
    """Whether non-SVR liquidations may join this back-run. On Atlas chains only when some
    are SVR, or when the update's aggregator is behind no source yet: a winning bid in a
    metacall of an aggregator in force is a recapture, and none is made of non-SVR
    liquidations alone. On Ethereum always (a refund is a recapture only of SVR ones)."""
    if ctx.profile.svr_model != "atlas":
        return True
    return any(t.label.reason == "svr" for t in targets) or not ctx.in_force(aggregator)


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
    block: Block,
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
        "block_number": block.number,
        "block_time": block.timestamp,
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


def _labels(targets: list[Target], update: Sent, aggregator: str) -> list[Label]:
    """The targets' labels, SVR ones attributed to `update` (the nearest that matches: a
    foreign update after it never does)."""
    svr = {
        "aggregator": aggregator,
        "round_id": secondary_round(update, aggregator),
        "oracle_tx_hash": update.tx_hash,
    }
    return [Label(t.label.reason, svr if t.label.reason == "svr" else None) for t in targets]


def _svr_ids(entries: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in entries if e["svr"]]


def mev_share_bundle(
    ctx: ChainContext,
    oracles: Oracles,
    symbol: str,
    targets: list[Target],
    when: int,
    foreign: bool,
) -> None:
    """[secondary update, (the other protocol's update), searcher back-run paying coinbase,
    builder refund] in one block. A refund is a recapture only of SVR liquidations. Some
    updates are not sold: liquidator EOAs take the targets after it, and nothing is
    refunded."""
    s, d = ctx.s, ctx.d
    builder = ctx.rng.choice(BUILDERS)
    s.rpc.call("anvil_setCoinbase", builder)
    update = oracles.send_secondary_by_nodes(symbol)
    other = oracles.send_secondary_by_nodes(FOREIGN) if foreign else None
    backrun = refund = None
    bid = refund_amount = 0
    if targets and ctx.rng.random() < UNSOLD_CHANCE:
        _unsold(ctx, targets, update, other, when)
        return
    if targets:
        bid = bid_wei(ctx, oracles, targets)
        refund_amount = bid * BUILDER_REFUND_BPS // 10_000
        i = ctx.rng.randrange(len(SEARCHERS))
        args = [t.searcher_target(ctx) for t in targets]
        data = ctx.c.searcher.encode("liquidate", args, ZERO, bid, ZERO)
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
    if other is not None:
        ctx.record_oracle(block, other)
    if backrun is None or refund is None:
        return
    agg = oracles.feeds[symbol].address
    entries = ctx.record_liquidations(block, backrun, _labels(targets, update, agg))
    ids = _svr_ids(entries)
    if ids:
        ctx.journal.recaptures.append(
            _recapture(
                block,
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


def _unsold(
    ctx: ChainContext, targets: list[Target], update: Sent, other: Sent | None, when: int
) -> None:
    """The update's block with ordinary liquidations after it, one per target."""
    sent = []
    for t in targets:
        data = ctx.c.pool.encode("liquidationCall", *t.call_args(ctx))
        pool = ctx.market(t.position.market).pool
        sent.append(
            ctx.s.send(ctx.rng.choice(LIQUIDATORS), pool, data, gas=LIQ_GAS, label="liquidation")
        )
    block = ctx.s.mine(when)
    ctx.record_oracle(block, update)
    if other is not None:
        ctx.record_oracle(block, other)
    for t, tx in zip(targets, sent, strict=True):
        reason = "unsold" if t.label.reason == "svr" else t.label.reason
        ctx.record_liquidations(block, tx, Label(reason))


def _solver_ops(
    ctx: ChainContext, oracles: Oracles, targets: list[Target], allow_loser: bool
) -> tuple[list[tuple[str, str, str, int, bytes]], str, int]:
    """Solver operations for the targets, highest bid first: (ops, bid token, winning bid)."""
    d, rng = ctx.d, ctx.rng
    bid = bid_wei(ctx, oracles, targets)
    bid_token = ctx.addr("WETH") if rng.random() < 0.3 else ZERO
    args = [t.searcher_target(ctx) for t in targets]
    ops: list[tuple[str, str, str, int, bytes]] = []
    if allow_loser and rng.random() < 0.4:
        # A higher native bid from a solver whose contract cannot pay it: it fails.
        lose = ctx.c.searcher.encode("liquidate", args, ZERO, 2 * bid, d.settlement)
        ops.append((SOLVERS[1], d.searchers[1], ZERO, 2 * bid, bytes.fromhex(lose[2:])))
    win = ctx.c.searcher.encode("liquidate", args, bid_token, bid, d.settlement)
    ops.append((SOLVERS[0], d.searchers[0], bid_token, bid, bytes.fromhex(win[2:])))
    return ops, bid_token, bid


def atlas_metacall(
    ctx: ChainContext,
    oracles: Oracles,
    symbol: str,
    targets: list[Target],
    when: int,
    foreign: bool,
) -> None:
    """One metacall for Aave's DAppControl: the secondary update (and the other protocol's
    after it), then solver attempts in bid order (some lose)."""
    s, d = ctx.s, ctx.d
    agg = oracles.feeds[symbol].address
    updates = [(agg, bytes.fromhex(oracles.transmit_data(symbol, True)[2:]))]
    if foreign:
        foreign_update = bytes.fromhex(oracles.transmit_data(FOREIGN, True)[2:])
        updates.append((oracles.feeds[FOREIGN].address, foreign_update))
    ops: list[tuple[str, str, str, int, bytes]] = []
    bid_token, bid = ZERO, 0
    if targets:
        ops, bid_token, bid = _solver_ops(ctx, oracles, targets, allow_loser=True)
    call = ctx.c.settlement.encode("metacall", d.dapp_control, updates, ops)
    sent = s.send(
        BUNDLER,
        d.settlement,
        call,
        gas=LIQ_GAS * (1 + 2 * len(targets)) + 500_000 * len(updates),
        label="metacall",
    )
    block = s.mine(when)
    ctx.record_oracle(block, sent)
    if not targets:
        return
    entries = ctx.record_liquidations(block, sent, _labels(targets, sent, agg))
    ids = _svr_ids(entries)
    if not ids:
        return  # the update's aggregator is behind no Aave source yet: nothing recaptured
    winner = next(r for r in solver_results(sent, d.settlement) if r["success"])
    ctx.journal.recaptures.append(
        _recapture(
            block,
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


def foreign_metacall(ctx: ChainContext, oracles: Oracles, targets: list[Target]) -> Sent:
    """Queue the other protocol's metacall: its feed's secondary update, then a solver that
    liquidates Aave positions already liquidatable (none of them SVR)."""
    d = ctx.d
    updates = [
        (oracles.feeds[FOREIGN].address, bytes.fromhex(oracles.transmit_data(FOREIGN, True)[2:]))
    ]
    ops = _solver_ops(ctx, oracles, targets, allow_loser=False)[0] if targets else []
    call = ctx.c.settlement.encode("metacall", d.other_dapp_control, updates, ops)
    return ctx.s.send(
        BUNDLER,
        d.settlement,
        call,
        gas=LIQ_GAS * (1 + len(targets)) + 500_000,
        label="foreign metacall",
    )
