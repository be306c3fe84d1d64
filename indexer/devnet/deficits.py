"""Bad debt in the V3.6 market: borrowers left to fall until a liquidation seizes all their
collateral (the Pool books the debt left as a deficit: DeficitCreated, before the
LiquidationCall in the same transaction), and the Umbrella covering it (DeficitCovered).

Its borrowers are its own, planned with a generator of their own, so the other markets'
positions and choices are as they were without it. Each step, in the first block of the
ordinary liquidations (or one of its own when there are none), liquidator EOAs liquidate
(for as much as the close factor allows) the positions due: the "timely" half as soon as
their health factor is below 1, the "late" half only once the collateral no longer covers
the debt plus the bonus (all of it is seized: a deficit). The Umbrella, which supplied USDC
when the positions opened and never borrows, covers a third of the reserve's deficit once
one shows (in a later block), and the rest at the last step (asking for more than is left:
the Pool covers what is left).
"""

from __future__ import annotations

import math
import random

from eth_abi import decode as abi_decode

from .context import ChainContext, Label
from .deploy import MAX_UINT
from .market import BY_SYMBOL, LIQUIDATORS, PRICE_UNIT, UMBRELLA, WHALE
from .oracles import Oracles
from .origin import origin
from .positions import HealthBook, Position, _ratio_path
from .prices import STEPS
from .session import Block, Sent, actor
from .svr import LIQ_GAS
from .v36 import NAME, has_market

#: Borrowers at scale 1 (at least four at any scale, two of them late).
BORROWERS = 16
COLLATERAL = (("WETH", "WBTC"), (0.6, 0.4))
DEBT = "USDC"
#: A late position is liquidated once its health factor is below this share of
#: LT x bonus (the level below which a liquidation seizes all the collateral).
BAD_DEBT_MARGIN = 0.97
PARTIAL_COVER = 3  # the first cover takes 1/3 of the deficit
COVER_GAS = 600_000
LIQUIDATION = "v36 liquidation"
COVER = "v36 cover"


class Deficits:
    """The V3.6 market's borrowers and the Umbrella, on a chain that has the market."""

    def __init__(
        self,
        ctx: ChainContext,
        oracles: Oracles,
        prices: dict[str, list[int]],
        scale: float,
        seed: int,
        run: int,
    ) -> None:
        self.ctx = ctx
        self.active = has_market(ctx.s.name) and NAME in ctx.d.markets
        self.rng = random.Random(f"aave-svr-devnet/{seed}/{ctx.s.name}/{run}/deficits")
        self.positions: list[Position] = []
        self.late: set[int] = set()
        self.covered_once = False
        if self.active:
            self._plan(prices, scale, seed, run)
        self.book = HealthBook(ctx, oracles, self.positions)

    def _plan(self, prices: dict[str, list[int]], scale: float, seed: int, run: int) -> None:
        rng, chain = self.rng, self.ctx.s.name
        median = self.ctx.profile.median_position_usd
        for i in range(max(4, round(BORROWERS * scale))):
            collateral = rng.choices(*COLLATERAL)[0]
            c = BY_SYMBOL[collateral]
            ratios = _ratio_path(prices, collateral, DEBT)
            floor = c.liquidation_threshold / c.ltv * 1.004  # at the borrow limit
            if i % 2 == 0:
                health = floor  # late: falls furthest
                self.late.add(i)
            else:
                k = rng.randrange(1, STEPS + 1)
                health = max(rng.uniform(0.975, 0.997) / ratios[k], floor)
            value_usd = min(max(median * math.exp(rng.gauss(0.0, 0.5)), 50_000.0), 2e6)
            debt_usd = value_usd * c.liquidation_threshold / 10_000 / health
            self.positions.append(
                Position(
                    user=actor(f"{chain}/{NAME}-borrower/{seed}/{run}/{i}"),
                    market=NAME,
                    collateral=collateral,
                    debt=DEBT,
                    collateral_amount=int(
                        value_usd / (prices[collateral][0] / PRICE_UNIT) * 10**c.decimals
                    ),
                    debt_amount=int(
                        debt_usd / (prices[DEBT][0] / PRICE_UNIT) * 10 ** BY_SYMBOL[DEBT].decimals
                    ),
                )
            )

    def open(self) -> None:
        """The Umbrella's USDC deposit and the borrowers' collateral (supplied for them by the
        whale, as for the other markets) in one block, their loans in the next."""
        if not self.active:
            return
        ctx = self.ctx
        s, c, pool = ctx.s, ctx.c, ctx.market(NAME).pool
        s.rpc.batch([("anvil_setBalance", [a, hex(10**20)]) for a in self._accounts()])
        usdc = ctx.addr(DEBT)
        deposit = 10 ** (BY_SYMBOL[DEBT].decimals + 9)
        s.send(UMBRELLA, usdc, c.erc20.encode("mint(uint256)", deposit), gas=200_000, label="mint")
        s.send(
            UMBRELLA, usdc, c.erc20.encode("approve", pool, MAX_UINT), gas=100_000, label="approve"
        )
        s.send(
            UMBRELLA,
            pool,
            c.pool.encode("supply", usdc, deposit, UMBRELLA, 0),
            gas=500_000,
            label="umbrella supply",
        )
        need: dict[str, int] = {}
        for p in self.positions:
            need[p.collateral] = need.get(p.collateral, 0) + p.collateral_amount
        for symbol, amount in sorted(need.items()):
            data = c.erc20.encode("mint(uint256)", amount)
            s.send(WHALE, ctx.addr(symbol), data, gas=200_000, label="mint")
        for p in self.positions:
            data = c.pool.encode("supply", ctx.addr(p.collateral), p.collateral_amount, p.user, 0)
            s.send(WHALE, pool, data, gas=500_000, label="supply")
        s.mine(ctx.next_time())
        for p in self.positions:
            data = c.pool.encode("borrow", ctx.addr(p.debt), p.debt_amount, 2, 0, p.user)
            s.send(p.user, pool, data, gas=800_000, label="borrow")
        s.mine(ctx.next_time())

    def _accounts(self) -> list[str]:
        return [UMBRELLA, *(p.user for p in self.positions)]

    def queue(self, step: int) -> int:
        """Queue this step's liquidations and cover (read at the head); returns how many."""
        if not self.active:
            return 0
        ctx, rng = self.ctx, self.rng
        self.book.refresh(self.book.open())
        queued = 0
        for i, p in enumerate(self.positions):
            if p.closed or p.hf is None or p.hf >= 1.0:
                continue
            c = BY_SYMBOL[p.collateral]
            bad = c.liquidation_threshold * c.liquidation_bonus / 1e8 * BAD_DEBT_MARGIN
            if i in self.late and p.hf >= bad and step < STEPS:
                continue
            args = (ctx.addr(p.collateral), ctx.addr(p.debt), p.user, MAX_UINT, rng.random() < 0.2)
            ctx.s.send(
                rng.choice(LIQUIDATORS),
                ctx.market(NAME).pool,
                ctx.c.pool.encode("liquidationCall", *args),
                gas=LIQ_GAS,
                label=LIQUIDATION,
            )
            p.hf = None
            queued += 1
        deficit = self._deficit()
        if deficit and (not self.covered_once or step == STEPS):
            amount = deficit // PARTIAL_COVER if not self.covered_once else deficit * 2
            self.covered_once = True
            data = origin("PoolInstance").encode(
                "eliminateReserveDeficit", ctx.addr(DEBT), max(1, amount)
            )
            ctx.s.send(UMBRELLA, ctx.market(NAME).pool, data, gas=COVER_GAS, label=COVER)
            queued += 1
        return queued

    def _deficit(self) -> int:
        """The debt reserve's deficit at the head (Pool.getReserveDeficit)."""
        data = origin("PoolInstance").encode("getReserveDeficit", self.ctx.addr(DEBT))
        (answer,) = self.ctx.s.eth_calls([(self.ctx.market(NAME).pool, data)])
        (value,) = abi_decode(["uint256"], bytes.fromhex(answer[2:]))
        return int(value)

    def mine_alone(self, step: int) -> None:
        """A block of this step's own when the ordinary liquidations have none."""
        if self.queue(step):
            block = self.ctx.s.mine(self.ctx.next_time())
            for sent in block.txs:
                self.record(block, sent, Label())

    def record(self, block: Block, sent: Sent, label: Label) -> bool:
        """Record one of this module's transactions (False: not one of them)."""
        if sent.label == LIQUIDATION:
            self.ctx.record_liquidations(block, sent, label)
        elif sent.label == COVER:
            self.ctx.record_deficits(block, sent)
        else:
            return False
        return True
