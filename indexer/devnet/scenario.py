"""Play the crash on one chain: open leveraged positions, move prices in steps, liquidate.

Every choice comes from a random generator seeded by (seed, chain, run), and every block is
mined on demand with a computed timestamp, so the same seed on a fresh devnet gives the same
chain. Per price step (2 hours apart; step s starts at the same block number on every chain):
  (a) public block: MockFeed prices move, the primary route transmits to the
      DualAggregators whose update goes public this step (no SVR auction sold it), and a
      planned source switch (setAssetSources) lands after them; Aave does not see these
      reports yet (the DualAggregator's cutoff);
  (b) one block per SVR (secondary-route) update, see svr.py; sometimes a catch-up of one
      public report, which Aave sees from then on, with liquidations right after it;
  (r) the release: the first block after the cutoff, where Aave sees the public reports;
  (c) ordinary liquidations by liquidator EOAs (some deferred to the next step, at a lower
      health factor; those the release made possible are "after_cutoff_public"), with the
      primary route re-landing the secondary reports (PrimaryFeedUnlocked), sometimes after
      another protocol's secondary update;
  (d) sometimes the secondary route catches up on a public report, this step's or an older
      one (SecondaryRoundIdUpdated only, of an older round), in a block without
      liquidations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import manifest as mf
from .context import AFTER_CUTOFF_PUBLIC, ORDINARY, ChainContext, Contracts, Journal, Label
from .deficits import Deficits
from .deploy import MAX_UINT, Deployment, switch_source, switched
from .market import CUTOFF_BLOCKS, LIQUIDATORS
from .oracles import FOREIGN, Oracles
from .positions import HealthBook, Target, open_positions, plan_positions
from .prices import STEP_SECONDS, STEPS
from .session import ChainSession, Sent
from .svr import (
    LIQ_GAS,
    QueuedMetacall,
    atlas_catch_up,
    atlas_metacall,
    extras_for,
    foreign_metacall,
    may_sweep,
    mev_share_bundle,
    mev_share_catch_up,
    targets_for,
)

DAY = 86400
#: Blocks reserved per price step; step s starts at block crash_block + s * STEP_BLOCKS.
STEP_BLOCKS = 12
FINALITY_BLOCKS = 12  # more than the devnet config's finality_depth (8)
SVR_SHARE = 0.6  # chance that an SVR asset's update goes by the secondary route
#: The same before the asset's source is switched to its SVR feed: its feed's updates are
#: back-run then too (not SVR), as often as possible.
PRE_SWITCH_SHARE = 0.85
DEFER = 0.2  # chance that a liquidatable position waits one step
MAX_BLOCKS_PER_STEP = 4  # for ordinary liquidations
#: Where the other protocol's ETH / USD feed reports a step: with this chance "with" Aave's
#: WETH update when that goes by the secondary route (same block / metacall, after it); else
#: in block (c), with this chance by the secondary route before its liquidations, else by the
#: primary route.
FOREIGN_WITH, FOREIGN_ORDINARY = 0.45, 0.5
FOREIGN_TARGETS = 2  # ordinary liquidations an Atlas solver takes in the other's metacall
#: That a public report is caught up on by the secondary route before the cutoff (block
#: (b)), and after it (block (d)); a late catch-up takes an older report with OLDER_CATCH_UP.
EARLY_CATCH_UP, LATE_CATCH_UP, OLDER_CATCH_UP = 0.35, 0.3, 0.4


class ChainScenario:
    def __init__(
        self,
        session: ChainSession,
        deployment: Deployment,
        compiled: dict[str, dict[str, Any]],
        prices: dict[str, list[int]],
        seed: int,
        scale: float,
        run: int,
        log: Callable[[str], None],
    ) -> None:
        key = f"aave-svr-devnet/{seed}/{session.name}/{run}"
        self.ctx = ctx = ChainContext(session, deployment, Contracts.load(compiled), key)
        self.prices = prices
        self.log = log
        self.oracles = Oracles(ctx)
        self.positions = plan_positions(ctx, prices, scale, seed, run)
        self.book = HealthBook(ctx, self.oracles, self.positions)
        self.deficits = Deficits(ctx, self.oracles, prices, scale, seed, run)
        self.step = 0

    def _mine_oracles(self, when: int) -> None:
        ctx = self.ctx
        block = ctx.s.mine(when)
        for sent in block.txs:
            ctx.record_oracle(block, sent)
        ctx.journal.sources += switched(ctx.d, block)

    def reset_prices(self, when: int) -> None:
        """Prices back to the start of the path (on a fresh chain: the feeds' first rounds)."""
        ctx, oracles = self.ctx, self.oracles
        for symbol in ctx.d.tokens:
            price = self.prices[symbol][0]
            oracles.set_mocks(symbol, price)
            if symbol in oracles.feeds:
                # Public, and caught up on at once: Aave sees it without waiting the cutoff.
                oracles.new_report(symbol, price, when - 5)
                oracles.send_primary(symbol)
                oracles.send_secondary_by_nodes(symbol, oracles.catch_up_report(symbol, False))
                oracles.now[symbol] = price
        if FOREIGN in oracles.feeds:
            oracles.new_report(FOREIGN, self.prices["WETH"][0], when - 5)
            oracles.send_primary(FOREIGN)
        self._mine_oracles(max(when, ctx.next_time()))

    def pending_switches(self, step: int) -> list[tuple[str, str]]:
        """(market, symbol) whose planned source takes over at this step."""
        return [
            (name, symbol)
            for name, market in self.ctx.d.markets.items()
            for symbol, asset in market.assets.items()
            if asset.planned_source
            and asset.source != asset.planned_source
            and step >= asset.switch_step
        ]

    def _before_switch(self, symbol: str) -> bool:
        return any(
            a.planned_source and a.source != a.planned_source
            for m in self.ctx.d.markets.values()
            for s, a in m.assets.items()
            if s == symbol
        )

    def play_step(self, step: int, start_time: int, start_block: int) -> None:
        ctx, oracles, rng = self.ctx, self.oracles, self.ctx.rng
        self.step = step
        ctx.s.mine_empty(start_block - 1 - ctx.s.head)
        switches = self.pending_switches(step)
        public: list[str] = []
        private: list[str] = []
        for symbol in ctx.d.tokens:
            price = self.prices[symbol][step]
            if symbol not in oracles.feeds:
                if price != oracles.now[symbol]:
                    oracles.set_mocks(symbol, price)
                continue
            share = PRE_SWITCH_SHARE if self._before_switch(symbol) else SVR_SHARE
            if any(s == symbol for _, s in switches):
                share = 0.0  # the switch lands after a public report of the same price
            (private if rng.random() < share else public).append(symbol)
        has_foreign = FOREIGN in oracles.feeds
        # (a)
        for symbol in public:
            oracles.new_report(symbol, self.prices[symbol][step], start_time - 3)
            oracles.send_primary(symbol)
            oracles.unreleased[symbol] = self.prices[symbol][step]
        for market, symbol in switches:
            switch_source(ctx.s, ctx.d, market, symbol)
        self._mine_oracles(max(start_time, ctx.next_time()))
        public_at = ctx.s.head_time
        # (b)
        rng.shuffle(private)
        with_weth = False
        for symbol in private:
            with_weth |= self.svr_block(symbol, self.prices[symbol][step])
        if oracles.unreleased:
            self.catch_up_block(sorted(oracles.unreleased))
        # (r)
        released = self.release(public_at) if oracles.unreleased else set()
        # (c)
        foreign = has_foreign and not with_weth
        self.ordinary_blocks(self.prices["WETH"][step] if foreign else 0, released)
        # (d)
        repeats = [s for s in public if rng.random() < LATE_CATCH_UP]
        if repeats:
            for symbol in repeats:
                older = oracles.catch_up_report(symbol, ctx.chance("older", OLDER_CATCH_UP))
                report = older or oracles.catch_up_report(symbol, False)
                oracles.send_secondary_by_nodes(symbol, report)
            self._mine_oracles(ctx.next_time())
        if ctx.s.head > start_block + STEP_BLOCKS - 1:
            raise RuntimeError(f"{ctx.s.name}: step {step} used more than {STEP_BLOCKS} blocks")

    def catch_up_block(self, candidates: list[str]) -> None:
        """Sometimes the secondary route catches up on this step's public report of one of
        the candidates (the first whose report makes positions liquidatable) before the
        cutoff: Aave sees it at once, and the positions it makes liquidatable are
        liquidated right after it (by EOAs on ethereum, by a solver in the catch-up's
        metacall on atlas chains), none of them SVR."""
        ctx, oracles = self.ctx, self.oracles
        if ctx.rng.random() >= EARLY_CATCH_UP and ctx.occurred("early catch-up"):
            return  # not this step (until the first, every step with public reports tries)
        targets: list[Target] = []
        for symbol in candidates:
            targets = targets_for(ctx, self.book, symbol, oracles.unreleased[symbol], [])
            if targets:
                break
        if not targets and not ctx.occurred("early catch-up"):
            return  # wait for one with liquidations after it
        if not targets:
            symbol = candidates[0]
        ctx.occurred("early catch-up", now=bool(targets))
        price = oracles.unreleased[symbol]
        report = oracles.catch_up_report(symbol, False)
        assert report is not None and report.price == price
        oracles.seen(symbol, price, follow=False)  # the block's set feeds follow (svr.py)
        if ctx.profile.svr_model == "atlas":
            atlas_catch_up(ctx, oracles, symbol, report, targets)
        else:
            mev_share_catch_up(ctx, oracles, symbol, report, targets)
        for t in targets:
            t.position.hf = None

    def release(self, public_at: int) -> set[int]:
        """The first block after the cutoff of this step's public reports: Aave sees them
        from it on. Returns the positions (by id) that were not liquidatable before it and
        whose price moves only through an SVR feed in force, so that a liquidation of them
        in this step's ordinary blocks is one the public reports made possible."""
        ctx, oracles, book = self.ctx, self.oracles, self.book
        moved = dict(oracles.unreleased)
        touched = [p for p in book.open() if set(p.assets) & set(moved)]
        book.refresh(
            [
                p
                for p in touched
                if p.hf is None
                or any(book.predicted(p, s, moved[s]) < 1.05 for s in p.assets if s in moved)
            ]
        )
        before = {
            id(p)
            for p in touched
            if not p.closed
            and p.hf is not None
            and p.hf >= 1.0
            and any(s in moved and ctx.svr_behind(p.market, s) for s in p.assets)
            and all(s not in moved or ctx.svr_behind(p.market, s) for s in p.assets)
        }
        for symbol, price in moved.items():
            oracles.seen(symbol, price)
        cutoff = CUTOFF_BLOCKS * ctx.profile.block_time
        ctx.s.mine(max(ctx.next_time(), public_at + cutoff + ctx.profile.block_time))
        return before

    def svr_block(self, symbol: str, price: int) -> bool:
        """The SVR update of `symbol` and its back-run; returns whether the other
        protocol's feed updated right after it (WETH only), before the back-run (which
        changes no label: an Aave feed's reason always comes first)."""
        ctx, oracles = self.ctx, self.oracles
        aggregator = oracles.feeds[symbol].address
        scope = [aggregator]
        targets = targets_for(ctx, self.book, symbol, price, scope)
        atlas = ctx.profile.svr_model == "atlas"
        if atlas and ctx.in_force(aggregator) and not any(t.label.reason == "svr" for t in targets):
            targets = []  # no solver bids on Aave's auction for nothing SVR
        if may_sweep(ctx, targets, aggregator):
            taken = {id(t.position) for t in targets}
            extras = extras_for(ctx, self.book, symbol, scope)
            targets += [t for t in extras if id(t.position) not in taken]
        foreign = False
        if symbol == "WETH" and FOREIGN in oracles.feeds:
            if any(t.label.reason == "svr" for t in targets):
                foreign = ctx.chance("foreign with weth", FOREIGN_WITH)
            else:
                foreign = ctx.rng.random() < FOREIGN_WITH
        when = ctx.next_time()
        oracles.new_report(symbol, price, when - 2)
        if foreign:
            oracles.new_report(FOREIGN, price, when - 2)
        late = None
        if atlas:
            atlas_metacall(ctx, oracles, symbol, targets, when, foreign)
        else:
            late = mev_share_bundle(ctx, oracles, symbol, targets, when, foreign)
        oracles.seen(symbol, late or price, follow=False)
        oracles.feeds[symbol].primary_pending = True
        if foreign:
            oracles.feeds[FOREIGN].primary_pending = True
        for t in targets:
            t.position.hf = None
        return foreign

    def ordinary_blocks(self, foreign_price: int, released: set[int]) -> None:
        """Ordinary liquidations; with `foreign_price`, the other protocol's feed reports it
        in the first block: by the primary route, or by the secondary route before the
        liquidations (ethereum: same block; atlas: its own metacall, in which a solver takes
        some of them). Positions in `released` are labelled after_cutoff_public."""
        ctx, book, rng, oracles = self.ctx, self.book, self.ctx.rng, self.oracles
        candidates = [p for p in book.open() if p.hf is None or book.predicted(p) < 1.03]
        book.refresh(candidates)
        due: list[Target] = []
        for p in candidates:
            if p.closed or p.hf is None or p.hf >= 1.0:
                continue
            if not p.deferred and rng.random() < DEFER:
                p.deferred = True
                continue
            p.deferred = False
            r = rng.random()
            if r < 0.55:
                amount = MAX_UINT  # as much as the close factor allows
            elif r < 0.85:
                amount = max(1, int(p.debt_units * rng.uniform(0.15, 0.45)))
            else:
                amount = p.debt_units // 2
            label = Label(AFTER_CUTOFF_PUBLIC) if id(p) in released else ORDINARY
            due.append(Target(p, amount, rng.random() < 0.2, p.debt_usd * 0.5, label))
        feeds = oracles.feeds
        unlocks = [s for s, f in feeds.items() if f.primary_pending and rng.random() < 0.85]
        unlocks = [s for s in unlocks if not feeds[s].public_latest]
        for feed in feeds.values():
            feed.primary_pending = False
        if not due and not unlocks:
            self.deficits.mine_alone(self.step)
            return
        foreign_sent: Sent | QueuedMetacall | None = None
        foreign_targets: list[Target] = []
        if foreign_price:
            oracles.new_report(FOREIGN, foreign_price, ctx.next_time() - 2)
            unlocks = [u for u in unlocks if u != FOREIGN]  # superseded by the new report
        if foreign_price and due and rng.random() < FOREIGN_ORDINARY:
            feeds[FOREIGN].primary_pending = True
            scope = [feeds[FOREIGN].address]
            if ctx.profile.svr_model == "atlas":
                foreign_targets = [
                    Target(
                        t.position,
                        MAX_UINT,
                        t.receive_atoken,
                        t.covered_usd,
                        Label(ctx.reason(t.position.market, t.position.assets, scope)),
                    )
                    for t in due[:FOREIGN_TARGETS]
                ]
                due = due[FOREIGN_TARGETS:]
        per_block = max(30, -(-len(due) // MAX_BLOCKS_PER_STEP))
        for start in range(0, max(1, len(due)), per_block):
            foreign_label: Label | None = None
            if start == 0:
                if foreign_price and not feeds[FOREIGN].primary_pending:
                    oracles.send_primary(FOREIGN)
                elif foreign_price:
                    if ctx.profile.svr_model == "atlas":
                        foreign_sent = foreign_metacall(ctx, oracles, foreign_targets)
                    else:
                        foreign_sent = oracles.send_secondary_by_nodes(FOREIGN)
                        reason = ctx.reason("core", (), [feeds[FOREIGN].address])
                        foreign_label = Label(reason)
                for symbol in unlocks:
                    oracles.send_primary(symbol, label="primary again")
            for t in due[start : start + per_block]:
                data = ctx.c.pool.encode("liquidationCall", *t.call_args(ctx))
                ctx.s.send(
                    rng.choice(LIQUIDATORS),
                    ctx.market(t.position.market).pool,
                    data,
                    gas=LIQ_GAS,
                    label="liquidation",
                )
                t.position.hf = None
            if start == 0:
                self.deficits.queue(self.step)
            labels = [foreign_label or t.label for t in due[start : start + per_block]]
            block = ctx.s.mine(ctx.next_time())
            liquidations = iter(labels)
            for sent in block.txs:
                if sent.label == "liquidation":
                    ctx.record_liquidations(block, sent, next(liquidations))
                elif self.deficits.record(block, sent, foreign_label or ORDINARY):
                    pass
                else:
                    ctx.record_oracle(block, sent)
                if isinstance(foreign_sent, QueuedMetacall) and sent is foreign_sent.sent:
                    foreign_sent.record(ctx, block)
        for t in foreign_targets:
            t.position.hf = None

    def play(self, day0: int, crash_block: int) -> Journal:
        """Positions open on day0 (UTC midnight); the crash starts a day later at 01:00."""
        ctx = self.ctx
        self.reset_prices(day0 + 3600)
        open_positions(ctx, self.positions)
        self.deficits.open()
        self.log(f"{ctx.s.name}: {len(self.positions)} borrowers opened positions")
        crash_start = day0 + DAY + 3600
        for step in range(1, STEPS + 1):
            self.play_step(
                step,
                crash_start + (step - 1) * STEP_SECONDS,
                crash_block + (step - 1) * STEP_BLOCKS,
            )
            if step % 18 == 0:
                done = len(ctx.journal.liquidations)
                self.log(f"{ctx.s.name}: step {step}/{STEPS}, {done} liquidations")
        ctx.s.mine_empty(FINALITY_BLOCKS)
        oracles = {name: m.oracle for name, m in ctx.d.markets.items()}
        mf.fill_prices(ctx.s, oracles, ctx.journal.liquidations)
        mf.fill_closures(ctx.s, ctx.d, ctx.journal.liquidations)
        mf.fill_deficit_prices(ctx.s, oracles, ctx.journal.deficits)
        return ctx.journal
