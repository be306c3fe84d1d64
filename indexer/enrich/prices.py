"""USD prices from AaveOracle.getAssetPrice at the event's block: batched and cached.

AaveOracle V3 answers in USD with 8 decimals. USD values are computed exactly with Decimal
(raw amount x price / 10^(decimals + 8)); nothing passes through a float.
"""

from __future__ import annotations

import decimal
from collections import OrderedDict
from collections.abc import Iterable
from decimal import Decimal

from indexer.rpc.client import RpcClient
from indexer.rpc.errors import RpcError

GET_ASSET_PRICE = "0xb3596f07"
PRICE_DECIMALS = 8
_EXACT = decimal.Context(prec=160)


def usd(amount: int, price: int, decimals: int) -> Decimal:
    """Exact USD value of a raw token amount at an 8-decimal price."""
    return _EXACT.multiply(Decimal(amount), Decimal(price)).scaleb(
        -(decimals + PRICE_DECIMALS), _EXACT
    )


class PriceOracle:
    """Prices of (asset, block) from one AaveOracle, with an LRU cache."""

    def __init__(self, client: RpcClient, oracle: str, cache_size: int = 200_000) -> None:
        self.client = client
        self.oracle = oracle
        self.cache: OrderedDict[tuple[str, int], int | None] = OrderedDict()
        self.cache_size = cache_size

    async def prices(self, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
        """Price of each (asset, block); None when the oracle reverts for that asset."""
        wanted = set(pairs)
        out: dict[tuple[str, int], int | None] = {}
        missing = []
        for pair in wanted:
            if pair in self.cache:
                out[pair] = self.cache[pair]
                self.cache.move_to_end(pair)
            else:
                missing.append(pair)
        if missing:
            missing.sort(key=lambda p: (p[1], p[0]))
            calls = [
                (
                    "eth_call",
                    [
                        {"to": self.oracle, "data": GET_ASSET_PRICE + asset[2:].rjust(64, "0")},
                        hex(block),
                    ],
                )
                for asset, block in missing
            ]
            answers = await self.client.batch(calls)
            for pair, answer in zip(missing, answers, strict=True):
                price = (
                    None
                    if isinstance(answer, RpcError) or answer in (None, "0x")
                    else int(answer[:66], 16)
                )
                out[pair] = price
                self.cache[pair] = price
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return out
