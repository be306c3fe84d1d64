"""USD prices from AaveOracle at the event's block: one call per block, batched, cached.

Providers bill and rate-limit per call, so all the assets a block needs are priced with one
`getAssetsPrices(address[])`; a block where that reverts (one asset without a source makes
the whole call revert) is priced asset by asset with `getAssetPrice`, so only that asset
comes back as None. AaveOracle V3 answers in USD with 8 decimals. USD values are computed
exactly with Decimal (raw amount x price / 10^(decimals + 8)); nothing passes through a
float. The cache is a small LRU: a backfill never asks for a past block again, the tail
only for the last few.
"""

from __future__ import annotations

import decimal
from collections import OrderedDict
from collections.abc import Iterable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from indexer.abi import BadAnswer, Function
from indexer.rpc.client import Call, RpcClient
from indexer.rpc.errors import EndpointFault, RpcError

GET_ASSET_PRICE = Function("getAssetPrice(address)", returns=("uint256",))
GET_ASSETS_PRICES = Function("getAssetsPrices(address[])", returns=("uint256[]",))
DEFAULT_CACHE_SIZE = 4096
PRICE_DECIMALS = 8
#: 78 + 78 digits: every uint256 x uint256 product, and every USD value, is exact in it.
EXACT = decimal.Context(prec=160)


def usd(amount: int, price: int, decimals: int) -> Decimal:
    """Exact USD value of a raw token amount at an 8-decimal price: the product is exact in
    int, the shift by 10^-(decimals + 8) exact in Decimal."""
    return EXACT.scaleb(Decimal(amount * price), -(decimals + PRICE_DECIMALS))


def check_call_result(call: Any, answer: Any) -> None:
    """eth_call answers hex data in whole bytes ("0x" when the call returns nothing); null
    or anything else is a broken node, and is retried."""
    if not isinstance(answer, str) or not answer.startswith("0x") or len(answer) % 2:
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


@lru_cache(maxsize=4096)
def price_calldata(assets: tuple[str, ...]) -> str:
    """Calldata pricing `assets` (sorted): getAssetPrice for one, getAssetsPrices for more.
    Cached: a backfill asks for the same few asset sets block after block, and eth-abi's
    checked encoding costs tens of microseconds a call."""
    if len(assets) == 1:
        return GET_ASSET_PRICE.encode(assets[0])
    return GET_ASSETS_PRICES.encode(assets)


def decode_prices(answer: str, count: int) -> list[int] | None:
    """The uint256[] of a getAssetsPrices answer; None if it is not an array of `count`."""
    try:
        values = GET_ASSETS_PRICES.decode_value(answer)
    except BadAnswer:
        return None
    return list(values) if len(values) == count else None


class PriceOracle:
    """Prices of (asset, block) from one AaveOracle, with an LRU cache."""

    def forget_above(self, block: int) -> None:
        """A reorg replaced the blocks above `block`: their prices may differ now."""
        for pair in [pair for pair in self.cache if pair[1] > block]:
            del self.cache[pair]

    def __init__(
        self, client: RpcClient, oracle: str, cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        self.client = client
        self.oracle = oracle
        self.cache: OrderedDict[tuple[str, int], int | None] = OrderedDict()
        self.cache_size = cache_size

    async def prices(self, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
        """Price of each (asset, block); None when the oracle reverts for that asset."""
        out: dict[tuple[str, int], int | None] = {}
        by_block: dict[int, list[str]] = {}
        for pair in set(pairs):
            if pair in self.cache:
                out[pair] = self.cache[pair]
                self.cache.move_to_end(pair)
            else:
                by_block.setdefault(pair[1], []).append(pair[0])
        if by_block:
            blocks = sorted(by_block)
            for block in blocks:
                by_block[block].sort()
            answers = await self.client.batch(
                [self._call(by_block[block], block) for block in blocks], check=check_word
            )
            retry: list[tuple[str, int]] = []
            for block, answer in zip(blocks, answers, strict=True):
                assets = by_block[block]
                values = self._values(answer, len(assets))
                if values is None:
                    retry += [(asset, block) for asset in assets]
                    continue
                for asset, price in zip(assets, values, strict=True):
                    out[(asset, block)] = price
            if retry:
                out.update(await self._one_by_one(retry))
            for block in blocks:
                for asset in by_block[block]:
                    self.cache[(asset, block)] = out[(asset, block)]
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return out

    def _call(self, assets: list[str], block: int) -> Call:
        data = price_calldata(tuple(assets))
        return ("eth_call", [{"to": self.oracle, "data": data}, hex(block)])

    @staticmethod
    def _values(answer: Any, count: int) -> list[int | None] | None:
        """Prices from one block's answer; None: price these assets one by one."""
        if count == 1:
            return [PriceOracle._single(answer)]
        if isinstance(answer, RpcError):
            return None
        values = decode_prices(answer, count)
        return None if values is None else list(values)

    async def _one_by_one(self, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
        answers = await self.client.batch(
            [self._call([asset], block) for asset, block in pairs], check=check_word
        )
        return {pair: self._single(answer) for pair, answer in zip(pairs, answers, strict=True)}

    @staticmethod
    def _single(answer: Any) -> int | None:
        """A getAssetPrice answer; None when the oracle reverted. check_word has made sure
        it holds a word, so it decodes."""
        return None if isinstance(answer, RpcError) else GET_ASSET_PRICE.decode_value(answer)
