"""Borrowers: who they are, the leveraged positions they open, and their health factors.

Each position is aimed at a step of the crash: its starting health factor is chosen so that
the price path takes it below 1 around that step (possibly earlier).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode

from .context import ORDINARY, ChainContext, Label
from .deploy import MAX_UINT
from .feeds import PLANS
from .market import BY_SYMBOL, MARKETS, PRICE_UNIT, WHALE
from .oracles import Oracles
from .prices import STEPS
from .session import actor

WAD = 10**18
BLOCK_SIZE = 120  # transactions per block while positions open
#: Share of a chain's borrowers in its second market (ethereum's prime), and what they hold.
SECOND_MARKET_SHARE = 0.3
COLLATERAL = {
    "core": (("WETH", "WBTC", "LINK"), (0.42, 0.38, 0.20)),
    "prime": (("WETH", "WBTC"), (0.55, 0.45)),
}
#: Borrowers of an asset whose source is switched to its SVR feed part-way, aimed before the
#: switch (so that its feed's updates are back-run while Aave still reads the old source),
#: and of each second-market asset that core prices through an SVR feed (prime's WETH,
#: read through core's feed too, and WBTC, read from a mock).
AIMED_BEFORE_SWITCH = 3
AIMED_SECOND_MARKET = 2


def _aims(chain: str) -> list[tuple[str, str, int, int]]:
    """(market, collateral, first step, last step) of the chain's first borrowers."""
    out = [
        (p.market, p.symbol, 3, p.switch_step - 2)
        for p in PLANS.get(chain, ())
        if p.market == "core" and p.switch_step is not None
    ][:1] * AIMED_BEFORE_SWITCH
    # A second market's assets that core prices through an SVR feed (whatever it reads).
    core_svr = {p.symbol for p in PLANS.get(chain, ()) if p.market == "core" and p.feed == "dual"}
    for p in PLANS.get(chain, ()):
        if p.market != "core" and p.symbol in core_svr and p.symbol in COLLATERAL[p.market][0]:
            out += [(p.market, p.symbol, 1, STEPS)] * AIMED_SECOND_MARKET
    return out


@dataclass
class Position:
    user: str
    market: str
    collateral: str  # symbol
    debt: str  # symbol
    collateral_amount: int
    debt_amount: int
    hf: float | None = None  # last health factor read from the chain (None: read again)
    hf_prices: tuple[int, int] = (0, 0)  # (collateral, debt) prices when hf was read
    read_at: int = -1  # the head block when hf was read
    debt_usd: float = 0.0
    debt_units: int = 0
    closed: bool = False
    deferred: bool = False

    @property
    def assets(self) -> tuple[str, str]:
        return (self.collateral, self.debt)


@dataclass
class Target:
    """A liquidation to send: whom, how much debt, and the bonus taken as aTokens or not."""

    position: Position
    debt_to_cover: int
    receive_atoken: bool
    covered_usd: float = 0.0  # estimate, for a searcher's bid
    label: Label = ORDINARY

    def call_args(self, ctx: ChainContext) -> tuple[str, str, str, int, bool]:
        """Pool.liquidationCall's arguments."""
        p = self.position
        return (
            ctx.addr(p.collateral),
            ctx.addr(p.debt),
            p.user,
            self.debt_to_cover,
            self.receive_atoken,
        )

    def searcher_target(self, ctx: ChainContext) -> tuple[str, str, str, str, int, bool]:
        """SvrSearcher's Target: the market's pool, then liquidationCall's arguments."""
        return (ctx.market(self.position.market).pool, *self.call_args(ctx))


def _ratio_path(prices: dict[str, list[int]], collateral: str, debt: str) -> list[float]:
    pc, pd = prices[collateral], prices[debt]
    return [(pc[i] / pc[0]) / (pd[i] / pd[0]) for i in range(len(pc))]


def plan_positions(
    ctx: ChainContext, prices: dict[str, list[int]], scale: float, seed: int, run: int
) -> list[Position]:
    """Borrowers aimed at random steps of the crash, sized around the chain's median."""
    rng = ctx.rng
    profile = ctx.profile
    out = []
    markets = MARKETS[ctx.s.name]
    aims = _aims(ctx.s.name)
    for i in range(max(3, round(profile.borrowers * scale))):
        user = actor(f"{ctx.s.name}/borrower/{seed}/{run}/{i}")
        market = markets[-1] if len(markets) > 1 and rng.random() < SECOND_MARKET_SHARE else "core"
        aim = aims[i] if i < len(aims) else None
        if aim is not None:
            market = aim[0]
        for _attempt in range(30):
            symbols, weights = COLLATERAL[market]
            collateral = rng.choices(symbols, weights)[0]
            debt = "WETH" if collateral == "WBTC" and rng.random() < 0.25 else "USDC"
            k = rng.randrange(1, STEPS + 1)
            if aim is not None:
                collateral, debt = aim[1], "USDC"
                k = rng.randrange(aim[2], aim[3] + 1)
            c = BY_SYMBOL[collateral]
            ratios = _ratio_path(prices, collateral, debt)
            # Health factor at the start; it cannot be below LT/LTV (the borrow limit).
            health = max(
                rng.uniform(0.975, 0.997) / ratios[k], c.liquidation_threshold / c.ltv * 1.004
            )
            if health * min(ratios) < 0.995:
                break
        else:
            continue
        median = profile.median_position_usd
        value_usd = min(median * math.exp(rng.gauss(0.0, 0.9)), median * 25)
        debt_usd = value_usd * c.liquidation_threshold / 10_000 / health
        out.append(
            Position(
                user=user,
                market=market,
                collateral=collateral,
                debt=debt,
                collateral_amount=int(
                    value_usd / (prices[collateral][0] / PRICE_UNIT) * 10**c.decimals
                ),
                debt_amount=int(
                    debt_usd / (prices[debt][0] / PRICE_UNIT) * 10 ** BY_SYMBOL[debt].decimals
                ),
            )
        )
    return out


def open_positions(ctx: ChainContext, positions: list[Position]) -> None:
    """Liquidity from a whale in every market, then the borrowers' deposits (supplied by the
    whale on their behalf) and their loans, in blocks of BLOCK_SIZE."""
    s, c = ctx.s, ctx.c
    s.rpc.batch([("anvil_setBalance", [p.user, hex(10**20)]) for p in positions])
    need = dict.fromkeys(ctx.d.tokens, 0)
    for p in positions:
        need[p.collateral] += p.collateral_amount
    markets = list(ctx.d.markets.values())
    for symbol, token in ctx.d.tokens.items():
        liquidity = 10 ** (BY_SYMBOL[symbol].decimals + 9)
        listed = [m for m in markets if symbol in m.assets]
        s.send(
            WHALE,
            token,
            c.erc20.encode("mint(uint256)", liquidity * len(listed) + need[symbol]),
            gas=200_000,
            label=f"mint {symbol}",
        )
        for m in listed:
            s.send(
                WHALE,
                token,
                c.erc20.encode("approve", m.pool, MAX_UINT),
                gas=100_000,
                label=f"approve {symbol}",
            )
            s.send(
                WHALE,
                m.pool,
                c.pool.encode("supply", token, liquidity, WHALE, 0),
                gas=500_000,
                label=f"liquidity {symbol}",
            )
    s.mine(ctx.next_time())
    for start in range(0, len(positions), BLOCK_SIZE):
        for p in positions[start : start + BLOCK_SIZE]:
            data = c.pool.encode("supply", ctx.addr(p.collateral), p.collateral_amount, p.user, 0)
            s.send(WHALE, ctx.market(p.market).pool, data, gas=500_000, label="supply")
        s.mine(ctx.next_time())
    for start in range(0, len(positions), BLOCK_SIZE):
        for p in positions[start : start + BLOCK_SIZE]:
            data = c.pool.encode("borrow", ctx.addr(p.debt), p.debt_amount, 2, 0, p.user)
            s.send(p.user, ctx.market(p.market).pool, data, gas=800_000, label="borrow")
        s.mine(ctx.next_time())


class HealthBook:
    """Health factors read from the chain, and predicted between reads from price moves
    (one collateral, one debt asset: the factor scales with their price ratio)."""

    def __init__(self, ctx: ChainContext, oracles: Oracles, positions: list[Position]) -> None:
        self.ctx = ctx
        self.now = oracles.now
        self.positions = positions

    def open(self) -> list[Position]:
        return [p for p in self.positions if not p.closed]

    def predicted(self, p: Position, moved: str | None = None, price: int = 0) -> float:
        """Health factor now, or after `moved` changes to `price`; 0 when never read."""
        if p.hf is None:
            return 0.0
        pc, pd = self.now[p.collateral], self.now[p.debt]
        if moved == p.collateral:
            pc = price
        if moved == p.debt:
            pd = price
        return p.hf * (pc / p.hf_prices[0]) / (pd / p.hf_prices[1])

    def refresh(self, positions: list[Position]) -> None:
        """Read health factor and debt of these positions (one batch of eth_calls); those read
        at the current head already are as the chain has them."""
        head = self.ctx.s.head
        todo = [p for p in positions if not p.closed and (p.hf is None or p.read_at != head)]
        if not todo:
            return
        c = self.ctx.c
        calls: list[tuple[str, str]] = []
        for p in todo:
            market = self.ctx.market(p.market)
            calls.append((market.pool, c.pool.encode("getUserAccountData", p.user)))
            vdebt = market.assets[p.debt].variable_debt_token
            calls.append((vdebt, c.variable_debt.encode("balanceOf", p.user)))
        answers = self.ctx.s.eth_calls(calls)
        for i, p in enumerate(todo):
            account: tuple[Any, ...] = abi_decode(
                ["uint256"] * 6, bytes.fromhex(answers[2 * i][2:])
            )
            collateral, debt, hf = account[0], account[1], account[5]
            p.debt_units = int(answers[2 * i + 1], 16)
            p.debt_usd = debt / PRICE_UNIT
            if debt == 0 or collateral == 0:
                p.closed = True  # repaid, or nothing left to seize
                continue
            p.hf = hf / WAD
            p.hf_prices = (self.now[p.collateral], self.now[p.debt])
            p.read_at = head
