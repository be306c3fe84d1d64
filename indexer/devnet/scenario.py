"""Play the crash on one chain: open leveraged positions, move prices in steps, liquidate.

Every choice comes from a random generator seeded by (seed, chain, run), and every block is
mined on demand with a computed timestamp, so the same seed on a fresh devnet gives the same
chain. Per price step (2 hours apart; step s starts at the same block number on every chain):
  (a) public block: MockAggregator prices move and the primary route transmits to the SVR
      aggregators whose update goes public this step;
  (b) one block per SVR (secondary-route) update, see svr.py;
  (c) ordinary liquidations by liquidator EOAs (some deferred to the next step, at a lower
      health factor), with the primary route re-landing the secondary reports
      (PrimaryFeedUnlocked);
  (d) sometimes the secondary route repeats a public report (SecondaryRoundIdUpdated only),
      in a block without liquidations, so no liquidation is wrongly SVR by attribution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import manifest as mf
from .context import ChainContext, Contracts, Journal
from .deploy import MAX_UINT, Deployment
from .market import LIQUIDATORS
from .oracles import Oracles
from .positions import HealthBook, Target, open_positions, plan_positions
from .prices import STEP_SECONDS, STEPS
from .session import ChainSession
from .svr import LIQ_GAS, atlas_metacall, mev_share_bundle, targets_for

DAY = 86400
#: Blocks reserved per price step; step s starts at block crash_block + s * STEP_BLOCKS.
STEP_BLOCKS = 12
FINALITY_BLOCKS = 12  # more than the devnet config's finality_depth (8)
SVR_SHARE = 0.6  # chance that an SVR asset's update goes by the secondary route
DEFER = 0.2  # chance that a liquidatable position waits one step
MAX_BLOCKS_PER_STEP = 4  # for ordinary liquidations


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

    def reset_prices(self, when: int) -> None:
        """Prices back to the start of the path (on a fresh chain: the feeds' first rounds)."""
        ctx, oracles = self.ctx, self.oracles
        for symbol in ctx.d.assets:
            price = self.prices[symbol][0]
            if symbol in oracles.feeds:
                oracles.new_report(symbol, price, when - 5)
                oracles.send_primary(symbol)
                oracles.now[symbol] = price
            else:
                oracles.set_mock(symbol, price)
        block = ctx.s.mine(max(when, ctx.next_time()))
        for sent in block.txs:
            ctx.record_oracle(block, sent)

    def play_step(self, step: int, start_time: int, start_block: int) -> None:
        ctx, oracles, rng = self.ctx, self.oracles, self.ctx.rng
        ctx.s.mine_empty(start_block - 1 - ctx.s.head)
        public: list[str] = []
        private: list[str] = []
        for symbol in ctx.d.assets:
            price = self.prices[symbol][step]
            if symbol not in oracles.feeds:
                if price != oracles.now[symbol]:
                    oracles.set_mock(symbol, price)
                continue
            (private if rng.random() < SVR_SHARE else public).append(symbol)
        # (a)
        for symbol in public:
            oracles.new_report(symbol, self.prices[symbol][step], start_time - 3)
            oracles.send_primary(symbol)
            oracles.now[symbol] = self.prices[symbol][step]
        block = ctx.s.mine(max(start_time, ctx.next_time()))
        for sent in block.txs:
            ctx.record_oracle(block, sent)
        # (b)
        rng.shuffle(private)
        for symbol in private:
            self.svr_block(symbol, self.prices[symbol][step])
        # (c)
        self.ordinary_blocks()
        # (d)
        repeats = [s for s in public if rng.random() < 0.3]
        if repeats:
            for symbol in repeats:
                oracles.send_secondary_by_nodes(symbol)
            block = ctx.s.mine(ctx.next_time())
            for sent in block.txs:
                ctx.record_oracle(block, sent)
        if ctx.s.head > start_block + STEP_BLOCKS - 1:
            raise RuntimeError(f"{ctx.s.name}: step {step} used more than {STEP_BLOCKS} blocks")

    def svr_block(self, symbol: str, price: int) -> None:
        ctx, oracles = self.ctx, self.oracles
        targets = targets_for(ctx, self.book, symbol, price)
        when = ctx.next_time()
        oracles.new_report(symbol, price, when - 2)
        if ctx.profile.svr_model == "mev-share":
            mev_share_bundle(ctx, oracles, symbol, targets, when)
        else:
            atlas_metacall(ctx, oracles, symbol, targets, when)
        oracles.now[symbol] = price
        oracles.feeds[symbol].primary_pending = True
        for t in targets:
            t.position.hf = None

    def ordinary_blocks(self) -> None:
        ctx, book, rng = self.ctx, self.book, self.ctx.rng
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
            due.append(Target(p, amount, rng.random() < 0.2))
        feeds = self.oracles.feeds
        unlocks = [s for s, f in feeds.items() if f.primary_pending and rng.random() < 0.85]
        for feed in feeds.values():
            feed.primary_pending = False
        if not due and not unlocks:
            return
        per_block = max(30, -(-len(due) // MAX_BLOCKS_PER_STEP))
        for start in range(0, max(1, len(due)), per_block):
            if start == 0:
                for symbol in unlocks:
                    self.oracles.send_primary(symbol, label="primary again")
            for t in due[start : start + per_block]:
                data = ctx.c.pool.encode("liquidationCall", *t.call_args(ctx))
                ctx.s.send(
                    rng.choice(LIQUIDATORS), ctx.d.pool, data, gas=LIQ_GAS, label="liquidation"
                )
                t.position.hf = None
            block = ctx.s.mine(ctx.next_time())
            for sent in block.txs:
                if sent.label == "liquidation":
                    ctx.record_liquidations(block, sent, None)
                else:
                    ctx.record_oracle(block, sent)

    def play(self, day0: int, crash_block: int) -> Journal:
        """Positions open on day0 (UTC midnight); the crash starts a day later at 01:00."""
        ctx = self.ctx
        self.reset_prices(day0 + 3600)
        open_positions(ctx, self.positions)
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
        mf.fill_prices(ctx.s, ctx.d.oracle, ctx.journal.liquidations)
        return ctx.journal
