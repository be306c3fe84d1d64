"""The tokens of each reserve of each pool, read once with Pool.getReserveData: the aToken
(for the treasury's fee) and the debt tokens (for the debt left after a liquidation). One
call per (pool, asset) serves both, for the life of the process."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from indexer.abi import BadAnswer, Function
from indexer.enrich.prices import check_word
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import RpcError

#: Pool.getReserveData up to variableDebtTokenAddress: the same layout from V3.0 to V3.6
#: (the fields after it are not read). A reserve that never had a stable debt token has
#: the zero address there.
GET_RESERVE_DATA = Function(
    "getReserveData(address)",
    returns=(
        "uint256",  # configuration
        "uint128",  # liquidityIndex
        "uint128",  # currentLiquidityRate
        "uint128",  # variableBorrowIndex
        "uint128",  # currentVariableBorrowRate
        "uint128",  # currentStableBorrowRate
        "uint40",  # lastUpdateTimestamp
        "uint16",  # id
        "address",  # aTokenAddress
        "address",  # stableDebtTokenAddress
        "address",  # variableDebtTokenAddress
    ),
)
ZERO_ADDRESS = "0x" + "0" * 40


class ReserveTokens(NamedTuple):
    atoken: str
    debt_tokens: tuple[str, ...]  # the variable debt token, then the stable one if any


def reserve_tokens(answer: str | RpcError) -> ReserveTokens | None:
    """None when the pool did not say (a revert, another layout) or the asset is not listed
    (all zeros): its fee and closure are then unknown."""
    if isinstance(answer, RpcError):
        return None
    try:
        fields = GET_RESERVE_DATA.decode(answer)
    except BadAnswer:
        return None
    atoken, stable, variable = (str(fields[i]).lower() for i in (8, 9, 10))
    if atoken == ZERO_ADDRESS or variable == ZERO_ADDRESS:
        return None
    debt = (variable,) if stable == ZERO_ADDRESS else (variable, stable)
    return ReserveTokens(atoken, debt)


class Reserves:
    def __init__(self, client: RpcClient) -> None:
        self.client = client
        self.tokens: dict[tuple[str, str], ReserveTokens | None] = {}  # (pool, asset)
        # Ranges are enriched concurrently: one learns at a time, so a reserve is read once.
        self._learning = asyncio.Lock()

    async def learn(self, pairs: set[tuple[str, str]]) -> None:
        async with self._learning:
            missing = sorted(p for p in pairs if p not in self.tokens)
            if not missing:
                return
            answers = await self.client.batch(
                [
                    ("eth_call", [{"to": pool, "data": GET_RESERVE_DATA.encode(asset)}, "latest"])
                    for pool, asset in missing
                ],
                check=check_word,
            )
            for pair, answer in zip(missing, answers, strict=True):
                self.tokens[pair] = reserve_tokens(answer)
