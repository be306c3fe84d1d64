"""USD prices from AaveOracle.getAssetPrice at the event's block: batched and cached.

AaveOracle V3 answers in USD with 8 decimals. USD values are computed exactly with Decimal
(raw amount x price / 10^(decimals + 8)); nothing passes through a float.
"""

from __future__ import annotations

import decimal
from collections import OrderedDict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from indexer.rpc.client import RpcClient
from indexer.rpc.errors import EndpointFault, RpcError

GET_ASSET_PRICE = "0xb3596f07"
PRICE_DECIMALS = 8
_EXACT = decimal.Context(prec=160)


def usd(amount: int, price: int, decimals: int) -> Decimal:
    """Exact USD value of a raw token amount at an 8-decimal price."""
    return _EXACT.multiply(Decimal(amount), Decimal(price)).scaleb(
        -(decimals + PRICE_DECIMALS), _EXACT
    )


def check_call_result(call: Any, answer: Any) -> None:
    """eth_call answers hex data ("0x" when the call returns nothing); null or anything else
    is a broken node, and is retried."""
    if not isinstance(answer, str) or not answer.startswith("0x"):
        raise EndpointFault(f"eth_call answered {answer!r:.40} instead of hex data")
    try:
        if len(answer) > 2:
            int(answer, 16)
    except ValueError:
        raise EndpointFault(f"eth_call answered {answer!r:.40} instead of hex data") from None


def check_word(call: Any, answer: Any) -> None:
    """A call to one of our contracts (AaveOracle.getAssetPrice, the Pool, an aToken)
    answers at least one 32-byte word or reverts (an RpcError). Nothing at all ("0x") means
    the node has no contract there, i.e. no state for that block (a pruned or broken node):
    retried, never stored as "no price" or "no fee"."""
    check_call_result(call, answer)
    if len(answer) < 66:
        raise EndpointFault(
            f"{call[1][0].get('to')} answered {answer!r:.20} at block {call[1][1]}: "
            "the node has no state there"
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
            answers = await self.client.batch(calls, check=check_word)
            for pair, answer in zip(missing, answers, strict=True):
                price = None if isinstance(answer, RpcError) else int(answer[:66], 16)
                out[pair] = price
                self.cache[pair] = price
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return out
