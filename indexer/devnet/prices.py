"""The crash's price path: BTC down about a third, ETH and LINK following, in steps.

One path per seed, shared by all chains (arbitrage keeps prices close across chains).
Prices are integers in AaveOracle units (USD, 8 decimals).
"""

from __future__ import annotations

import math
import random

from .market import RESERVES, price_units

STEPS = 54
STEP_SECONDS = 2 * 3600
#: Total log-return over the crash per asset, and its beta to the market factor.
_TARGETS = {
    "WBTC": (math.log(0.665), 1.0),
    "WETH": (math.log(0.74), 0.9),
    "LINK": (math.log(0.65), 1.3),
}


def price_path(seed: int, steps: int = STEPS) -> dict[str, list[int]]:
    """symbol -> prices after step 0 (the start), 1, ..., steps."""
    rng = random.Random(f"aave-svr-devnet/prices/{seed}")
    # A market factor with uneven step sizes: mostly steady falls, a few sharp legs down and
    # some small rebounds.
    market = []
    for _ in range(steps):
        r = rng.random()
        if r < 0.1:
            market.append(-rng.uniform(2.5, 4.0))
        elif r < 0.22:
            market.append(rng.uniform(0.2, 0.8))
        else:
            market.append(-rng.uniform(0.3, 1.6))
    scale = -sum(market)
    out: dict[str, list[int]] = {}
    for reserve in RESERVES:
        start = reserve.price_usd
        if reserve.symbol not in _TARGETS:
            out[reserve.symbol] = [price_units(start)] * (steps + 1)
            continue
        total, beta = _TARGETS[reserve.symbol]
        moves = [beta * m / scale + rng.gauss(0.0, 0.004) for m in market]
        correction = (total - sum(moves)) / steps
        log_price = math.log(start)
        path = [price_units(start)]
        for move in moves:
            log_price += move + correction
            path.append(price_units(math.exp(log_price)))
        out[reserve.symbol] = path
    return out
