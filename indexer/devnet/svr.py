"""SVR liquidations: a secondary-route price update and the liquidation that back-runs it.

Ethereum (MEV-Share): one block holds the update, the searcher's back-run (liquidations plus a
bid paid to block.coinbase) and the builder's refund of part of the bid to the SVR recipient.
Arbitrum and Base (Atlas): one metacall transaction holds the update and the solvers'
attempts; each winner's bid goes to the SVR recipient and SolverTxResult records every bid.

Not every liquidation after a secondary update is SVR, and the scenario makes each kind of
near miss happen (context.REASONS): a back-run also sweeps up positions already liquidatable
that the update does not price ("other_asset") and, on ethereum, prime positions of an asset
whose SVR feed only core reads ("other_market_source"); before an asset's source is switched
to its SVR feed, that feed's updates are back-run all the same ("before_switch"); another
protocol's SVR feed lands updates next to liquidations ("foreign_aggregator"); some updates
are not sold ("unsold": on ethereum liquidations follow them with no refund, or the Safe is
paid by someone who is not the block's builder; on atlas chains every bid fails); and a
catch-up of a public report (SecondaryRoundIdUpdated alone) lets Aave see that report before
the cutoff, and the liquidations right after it are ordinary ("catch_up").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from . import manifest as mf
from .context import CATCH_UP, ChainContext, Label
from .deploy import MAX_UINT, ZERO
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
from .oracles import FOREIGN, Oracles, Report
from .positions import HealthBook, Position, Target
from .session import GAS_PRICE, Block, Sent

LIQ_GAS = 1_500_000
#: Blocks where Aave's view of a feed changes after its back-run: at most this many a chain,
#: each moving the price up by 1 / LATE_MOVE.
LATE_CHANGES, LATE_MOVE = 4, 1000
EXTRA_CHANCE = 0.5  # that a back-run also takes positions the update does not price
#: That an SVR update is not sold: on Ethereum liquidator EOAs liquidate after it in its
#: block, with no bid and no builder refund; on Atlas chains every bid in its metacall fails.
UNSOLD_CHANCE = 0.1
#: That after an Ethereum back-run the Safe is paid by the searcher itself instead of being
#: refunded by the block's builder: no refund, so nothing was sold.
PAID_BY_OTHER_CHANCE = 0.05
#: Atlas auctions: a losing bid before the winner, a bid rejected before execution, a
#: second winner (with part of the targets), a winner paying more than it declared.
LOSER_CHANCE, REJECTED_CHANCE, SECOND_WINNER_CHANCE, OVERPAY_CHANCE = 0.4, 0.3, 0.3, 0.25


def _target(
    ctx: ChainContext, p: Position, aggregators: list[str], close: float, reason: str | None
) -> Target:
    reason = reason or ctx.reason(p.market, (p.collateral, p.debt), aggregators)
    covered = p.debt_usd * close
    return Target(p, MAX_UINT, ctx.rng.random() < 0.1, covered, Label(reason))


def targets_for(
    ctx: ChainContext, book: HealthBook, symbol: str, price: int, aggregators: list[str]
) -> list[Target]:
    """Positions (of any market) this update makes liquidatable, most valuable first, as
    many as the searcher takes, each labelled with why it is SVR or not (no aggregators: a
    catch-up). Positions whose source is not this feed are taken when already liquidatable
    too (near misses)."""
    limit = ctx.rng.choice((1, 2, 3, 4, 6, 8))
    touched = [p for p in book.open() if symbol in (p.collateral, p.debt)]
    book.refresh([p for p in touched if p.hf is None or book.predicted(p, symbol, price) < 1.05])
    ready = []
    for p in touched:
        if p.closed or p.hf is None:
            continue
        after = book.predicted(p, symbol, price)
        close = 0.5 if after > 0.95 else 1.0  # the close factor
        target = _target(ctx, p, aggregators, close, None if aggregators else CATCH_UP)
        if p.hf < 1.0 and target.label.reason in ("svr", CATCH_UP):
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
    candidates = [
        p
        for p in book.open()
        if symbol not in (p.collateral, p.debt) and p.hf is not None and book.predicted(p) < 1.0
    ]
    if not candidates or not ctx.chance("sweep", EXTRA_CHANCE):
        return []
    book.refresh(candidates)
    ready = [p for p in candidates if not p.closed and p.hf is not None and p.hf < 1.0]
    ready.sort(key=lambda p: -p.debt_usd)
    return [_target(ctx, p, aggregators, 0.5, None) for p in ready[: ctx.rng.choice((1, 2))]]


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
        "round_id": mf.secondary_round(update, aggregator),
        "oracle_tx_hash": update.tx_hash,
    }
    return [Label(t.label.reason, svr if t.label.reason == "svr" else None) for t in targets]


def _svr_ids(entries: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in entries if e["svr"]]


def _follow(oracles: Oracles, symbol: str) -> None:
    """The set feeds of `symbol` to its new report's price, in this block: after the update
    (a MEV-Share bundle starts with it), before the liquidations that need them."""
    report = oracles.feeds[symbol].report
    assert report is not None
    oracles.set_mocks(symbol, report.price)


def _unsold_label(t: Target) -> Label:
    return Label("unsold" if t.label.reason == "svr" else t.label.reason)


# --- Ethereum: MEV-Share bundles ----------------------------------------------------------


def late_change_due(ctx: ChainContext, block: int) -> bool:
    """Whether this sold back-run's block also changes Aave's view of its feed after the
    back-run (`late_view_change`): the first such block of the chain, then about one in
    four (a hash of the block, not the scenario's stream), at most LATE_CHANGES."""
    done = ctx._cases.setdefault("late view change", [0, 0])[1]
    if done >= LATE_CHANGES:
        return False
    digest = hashlib.sha256(f"{ctx.s.name}/{block}".encode()).digest()
    return done == 0 or digest[0] % 4 == 0


def late_view_change(ctx: ChainContext, oracles: Oracles, symbol: str, when: int) -> int:
    """Queued after a back-run, in its block: a public report of the feed at another price
    (through the SVR view Aave keeps the secondary report until the cutoff, so it changes
    nothing yet), then the secondary route catching up on it (Aave sees it at once).
    Returns the new price. Draws from the side stream."""
    report = oracles.feeds[symbol].report
    assert report is not None
    price = report.price + report.price // LATE_MOVE
    oracles.new_report(symbol, price, when - 1, rng=ctx.side_rng)
    oracles.send_primary(symbol, label="late public")
    caught = oracles.catch_up_report(symbol, False)
    assert caught is not None and caught.price == price
    oracles.send_secondary_by_nodes(symbol, caught)
    # The asset's set (mock) feeds follow in a block of their own (mev_share_bundle), not in
    # this one: no indexer can see a feed it does not read change after a liquidation.
    oracles.feeds[symbol].public_latest = True
    ctx.occurred("late view change", now=True)
    return price


def mev_share_bundle(
    ctx: ChainContext,
    oracles: Oracles,
    symbol: str,
    targets: list[Target],
    when: int,
    foreign: bool,
) -> int | None:
    """[secondary update, (the other protocol's update), searcher back-run paying coinbase,
    builder refund] in one block. A refund is a recapture only of SVR liquidations. Some
    updates are not sold: liquidator EOAs take the targets after it, and nothing is
    refunded; or the searcher pays the Safe itself, which is no refund. Sometimes the
    feed's view changes again after the refund (`late_view_change`): returns the price
    Aave sees at the end of the block then, else None."""
    s, d, rng = ctx.s, ctx.d, ctx.rng
    builder = rng.choice(BUILDERS)
    s.rpc.call("anvil_setCoinbase", builder)
    update = oracles.send_secondary_by_nodes(symbol)
    other = oracles.send_secondary_by_nodes(FOREIGN) if foreign else None
    _follow(oracles, symbol)
    agg = oracles.feeds[symbol].address
    # Only an update that would make SVR liquidations has a sale to miss.
    sellable = any(t.label.reason == "svr" for t in targets)
    if sellable and ctx.chance("unsold", UNSOLD_CHANCE):
        _unsold(ctx, targets, update, other, when)
        return None
    backrun = refund = None
    bid = refund_amount = 0
    paid_by_other = False
    if targets:
        bid = bid_wei(ctx, oracles, targets)
        refund_amount = bid * BUILDER_REFUND_BPS // 10_000
        i = rng.randrange(len(SEARCHERS))
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
        paid_by_other = sellable and ctx.chance("paid by another", PAID_BY_OTHER_CHANCE, by=3)
        payer = SEARCHERS[i] if paid_by_other else builder
        label = "paid by another" if paid_by_other else "builder refund"
        refund = s.send(payer, d.svr_recipient, value=refund_amount, gas=21_000, label=label)
    late: int | None = None
    report = oracles.feeds[symbol].report
    assert report is not None
    seen = {**oracles.now, symbol: report.price}  # what the back-run's liquidations see
    if sellable and backrun is not None and not paid_by_other and late_change_due(ctx, s.head + 1):
        late = late_view_change(ctx, oracles, symbol, when)
    block = s.mine(when)
    if late is not None:  # the set feeds follow in a block of their own, right after
        oracles.set_mocks(symbol, late)
        s.mine(ctx.next_time())
    for sent in block.txs:
        if sent is update or sent is other or sent.label.startswith(("late public", "catch-up")):
            ctx.record_oracle(block, sent)
    if backrun is None or refund is None:
        return late
    if paid_by_other:
        ctx.record_liquidations(block, backrun, [_unsold_label(t) for t in targets])
        return late
    entries = ctx.record_liquidations(block, backrun, _labels(targets, update, agg))
    if late is not None:
        by_address = {ctx.addr(sym): price for sym, price in seen.items() if sym in ctx.d.tokens}
        for e in entries:
            # What Aave answered at the back-run, as the scenario set it: the manifest's
            # position prices (fill_prices), where the end of the block answers otherwise.
            e["seen_prices"] = {a: by_address[a] for a in (e["collateral_asset"], e["debt_asset"])}
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
    return late


def _liquidate_by_eoas(ctx: ChainContext, targets: list[Target]) -> list[Sent]:
    sent = []
    for t in targets:
        data = ctx.c.pool.encode("liquidationCall", *t.call_args(ctx))
        pool = ctx.market(t.position.market).pool
        sent.append(
            ctx.s.send(ctx.rng.choice(LIQUIDATORS), pool, data, gas=LIQ_GAS, label="liquidation")
        )
    return sent


def _unsold(
    ctx: ChainContext, targets: list[Target], update: Sent, other: Sent | None, when: int
) -> None:
    """The update's block with ordinary liquidations after it, one per target."""
    sent = _liquidate_by_eoas(ctx, targets)
    block = ctx.s.mine(when)
    ctx.record_oracle(block, update)
    if other is not None:
        ctx.record_oracle(block, other)
    for t, tx in zip(targets, sent, strict=True):
        ctx.record_liquidations(block, tx, _unsold_label(t))


def mev_share_catch_up(
    ctx: ChainContext, oracles: Oracles, symbol: str, report: Report, targets: list[Target]
) -> None:
    """A block with the secondary route's catch-up on a public report (Aave sees it from
    then on) and liquidator EOAs liquidating after it: not SVR, only a catch-up preceded."""
    update = oracles.send_secondary_by_nodes(symbol, report)
    oracles.set_mocks(symbol, report.price)
    sent = _liquidate_by_eoas(ctx, targets)
    block = ctx.s.mine(ctx.next_time())
    ctx.record_oracle(block, update)
    for t, tx in zip(targets, sent, strict=True):
        ctx.record_liquidations(block, tx, t.label)


# --- Atlas: metacalls ---------------------------------------------------------------------


@dataclass
class Bid:
    """One solver operation of a metacall, and what the scenario expects of it."""

    solver_from: str
    solver: str
    token: str
    declared: int
    paid: int
    targets: list[Target] = field(default_factory=list)
    max_fee: int = GAS_PRICE
    wins: bool = False

    def op(self, ctx: ChainContext) -> tuple[str, str, str, int, int, bytes]:
        args = [t.searcher_target(ctx) for t in self.targets]
        data = ctx.c.searcher.encode("liquidate", args, self.token, self.paid, ctx.d.settlement)
        return (
            self.solver_from,
            self.solver,
            self.token,
            self.declared,
            self.max_fee,
            bytes.fromhex(data[2:]),
        )


def _bids(
    ctx: ChainContext, oracles: Oracles, targets: list[Target], auction: bool, win: bool
) -> list[Bid]:
    """Solver operations for the targets, highest declared bid first. Solver 1's contract
    holds native coin and wins; with `auction` (Aave's DAppControl, which lets several
    solvers win) solver 2 sometimes wins part of the targets too (both in WETH), else
    sometimes loses before it (a native bid its contract cannot pay: SolverOpReverted; a
    WETH bid it pays only half of: BidNotPaid), and a bid may be rejected before execution
    (solver 3 below the transaction's gas price, solver 4 without escrow). Without `win`
    only the failing ones are made (an unsold update)."""
    d, rng = ctx.d, ctx.rng
    if not targets:
        return []
    weth = ctx.addr("WETH")
    token = weth if rng.random() < 0.3 else ZERO
    second = (
        auction and win and len(targets) >= 2 and ctx.chance("second winner", SECOND_WINNER_CHANCE)
    )
    mine_targets, theirs = targets, []
    if second:
        token = weth
        cut = len(targets) // 2
        mine_targets, theirs = targets[:cut], targets[cut:]
    bid = bid_wei(ctx, oracles, mine_targets)
    bids = []
    if win:
        paid = bid + bid // 10 if ctx.chance("overpay", OVERPAY_CHANCE) else bid
        bids.append(Bid(SOLVERS[0], d.searchers[0], token, bid, paid, mine_targets, wins=True))
    if second:
        other = bid_wei(ctx, oracles, theirs)
        bids.append(Bid(SOLVERS[1], d.searchers[1], weth, other, other, theirs, wins=True))
    elif auction and (not win or ctx.chance("loser", LOSER_CHANCE)):
        if ctx.chance("bid not paid", 0.5):
            bids.append(Bid(SOLVERS[1], d.searchers[1], ZERO, 2 * bid, 2 * bid, targets))
        else:
            bids.append(Bid(SOLVERS[1], d.searchers[1], weth, 2 * bid, bid, targets))
    if auction and ctx.chance("rejected", REJECTED_CHANCE):
        if ctx.chance("gas price below", 0.5):
            low = Bid(SOLVERS[2], d.searchers[0], token, 3 * bid // 2, 3 * bid // 2, targets)
            low.max_fee = GAS_PRICE // 2
            bids.append(low)
        else:
            bids.append(Bid(SOLVERS[3], d.searchers[0], token, 3 * bid // 2, 3 * bid // 2, targets))
    bids.sort(key=lambda b: -b.declared)
    return bids


def _send_metacall(
    ctx: ChainContext, control: str, updates: list[tuple[str, bytes]], bids: list[Bid], label: str
) -> Sent:
    call = ctx.c.settlement.encode("metacall", control, updates, [b.op(ctx) for b in bids])
    targets = sum(len(b.targets) for b in bids)
    return ctx.s.send(
        BUNDLER,
        ctx.d.settlement,
        call,
        gas=LIQ_GAS * (1 + 2 * targets) + 500_000 * len(updates),
        label=label,
    )


def _record_metacall(
    ctx: ChainContext, block: Block, sent: Sent, control: str, bids: list[Bid]
) -> dict[str, Any]:
    entry = mf.metacall_entry(block, sent, ctx.d.settlement, control, [b.declared for b in bids])
    got = [b["success"] for b in entry["bids"]]
    want = [b.wins for b in bids]
    if got != want:
        raise RuntimeError(f"{ctx.s.name}: metacall {sent.tx_hash} winners {got}, meant {want}")
    ctx.journal.metacalls.append(entry)
    return entry


def _winners_labels(bids: list[Bid], labels: dict[int, Label]) -> list[Label]:
    """The labels of the winners' liquidations in log order (winners in bid order)."""
    return [labels[id(t)] for b in bids if b.wins for t in b.targets]


def atlas_metacall(
    ctx: ChainContext,
    oracles: Oracles,
    symbol: str,
    targets: list[Target],
    when: int,
    foreign: bool,
) -> bool:
    """One metacall for Aave's DAppControl: the secondary update (and the other protocol's
    after it), then the solvers' bids in order. Some updates are not sold: every bid fails
    (the targets stay open). Returns whether the targets were liquidated."""
    s, d = ctx.s, ctx.d
    agg = oracles.feeds[symbol].address
    updates = [(agg, bytes.fromhex(oracles.transmit_data(symbol, True)[2:]))]
    oracles.stored(symbol, False)
    if foreign:
        foreign_update = bytes.fromhex(oracles.transmit_data(FOREIGN, True)[2:])
        updates.append((oracles.feeds[FOREIGN].address, foreign_update))
        oracles.stored(FOREIGN, False)
    sold = not targets or not ctx.in_force(agg) or not ctx.chance("unsold", UNSOLD_CHANCE)
    bids = _bids(ctx, oracles, targets, auction=True, win=sold)
    _follow(oracles, symbol)
    sent = _send_metacall(ctx, d.dapp_control, updates, bids, "metacall")
    block = s.mine(when)
    ctx.record_oracle(block, sent)
    entry = _record_metacall(ctx, block, sent, d.dapp_control, bids)
    if not targets or not sold:
        return False
    by_target = dict(zip((id(t) for t in targets), _labels(targets, sent, agg), strict=True))
    entries = ctx.record_liquidations(block, sent, _winners_labels(bids, by_target))
    ids = _svr_ids(entries)
    if not ids:
        return True  # the update's aggregator is behind no Aave source yet: nothing recaptured
    for bid, logged in zip(bids, entry["bids"], strict=True):
        if not logged["success"]:
            continue
        ctx.journal.recaptures.append(
            _recapture(
                block,
                sent.tx_hash,
                logged["log_index"],
                d.svr_recipient,
                logged["bid_token"],
                int(logged["bid_amount"]),
                agg,
                ids,
                bid.declared,
                None,
            )
        )
    return True


def atlas_catch_up(
    ctx: ChainContext, oracles: Oracles, symbol: str, report: Report, targets: list[Target]
) -> None:
    """A metacall for Aave's DAppControl whose only update is a catch-up on a public report:
    its winner's liquidations are not SVR and its bid is no recapture."""
    agg = oracles.feeds[symbol].address
    updates = [(agg, bytes.fromhex(oracles.transmit_data(symbol, True, report)[2:]))]
    bids = _bids(ctx, oracles, targets, auction=True, win=True)
    oracles.set_mocks(symbol, report.price)
    sent = _send_metacall(ctx, ctx.d.dapp_control, updates, bids, "catch-up metacall")
    block = ctx.s.mine(ctx.next_time())
    ctx.record_oracle(block, sent)
    _record_metacall(ctx, block, sent, ctx.d.dapp_control, bids)
    if targets:
        labels = {id(t): t.label for t in targets}
        ctx.record_liquidations(block, sent, _winners_labels(bids, labels))


@dataclass
class QueuedMetacall:
    """A metacall sent with other transactions; recorded once its block is mined."""

    sent: Sent
    control: str
    bids: list[Bid]
    targets: list[Target]

    def record(self, ctx: ChainContext, block: Block) -> None:
        _record_metacall(ctx, block, self.sent, self.control, self.bids)
        if self.targets:
            labels = {id(t): t.label for t in self.targets}
            ctx.record_liquidations(block, self.sent, _winners_labels(self.bids, labels))


def foreign_metacall(ctx: ChainContext, oracles: Oracles, targets: list[Target]) -> QueuedMetacall:
    """Queue the other protocol's metacall: its feed's secondary update, then a solver that
    liquidates Aave positions already liquidatable (none of them SVR). Its DAppControl lets
    one solver win."""
    d = ctx.d
    updates = [
        (oracles.feeds[FOREIGN].address, bytes.fromhex(oracles.transmit_data(FOREIGN, True)[2:]))
    ]
    oracles.stored(FOREIGN, False)
    bids = _bids(ctx, oracles, targets, auction=False, win=True)
    sent = _send_metacall(ctx, d.other_dapp_control, updates, bids, "foreign metacall")
    return QueuedMetacall(sent, d.other_dapp_control, bids, targets)
