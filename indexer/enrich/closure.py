"""Whether a liquidation closed the borrower's debt in full: the debt left after it.

No log of a LiquidationCall says what the borrower still owes (the debt token's Burn and
Transfer carry the amount burnt, not the balance left), so this takes a call:
`balanceOf(user)` of the reserve's variable debt token, and of its stable debt token where
the reserve has one, at the liquidation's block, all of a range's in one batch. The balance
at the end of a block is the balance after that block's last liquidation of the (pool,
borrower, debt asset); an earlier one of the same block left debt for the later one to
repay, so it did not close the position. A borrow or repay by the same borrower later in
the same block is not seen (rare; docs/API.md says so). The debt tokens of each reserve are
read once, with `getReserveData`; a pool that does not answer it leaves the field unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from indexer.abi import BadAnswer, Function
from indexer.decode.events import Liquidation
from indexer.enrich.prices import check_word
from indexer.rpc.client import Call, RpcClient
from indexer.rpc.errors import RpcError

#: Pool.getReserveData up to variableDebtTokenAddress (the same layout from V3.0 to V3.6,
#: where the stable debt token of a reserve that never had one is the zero address).
GET_RESERVE_DEBT_TOKENS = Function(
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
BALANCE_OF = Function("balanceOf(address)", returns=("uint256",))
ZERO_ADDRESS = "0x" + "0" * 40

#: (pool, user, debt asset, block): the position a balance is read for
Position = tuple[str, str, str, int]


def _debt_tokens(answer: str | RpcError) -> tuple[str, ...] | None:
    """The reserve's debt tokens (variable first), or None when the pool did not say."""
    if isinstance(answer, RpcError):
        return None
    try:
        fields = GET_RESERVE_DEBT_TOKENS.decode(answer)
    except BadAnswer:
        return None
    stable, variable = str(fields[9]).lower(), str(fields[10]).lower()
    if variable == ZERO_ADDRESS:
        return None  # not a listed reserve
    return (variable,) if stable == ZERO_ADDRESS else (variable, stable)


def last_per_position(liquidations: Sequence[Liquidation]) -> dict[Position, tuple[str, int]]:
    """The key of the last liquidation of each (pool, borrower, debt asset, block)."""
    last: dict[Position, tuple[str, int, int]] = {}
    for liq in liquidations:
        pos = liq.pos
        position = (pos.address, liq.user, liq.debt_asset, pos.block_number)
        order = (pos.tx_index, pos.log_index)
        seen = last.get(position)
        if seen is None or order > (seen[2], seen[1]):
            last[position] = (pos.tx_hash, pos.log_index, pos.tx_index)
    return {position: (tx, index) for position, (tx, index, _) in last.items()}


class DebtClosures:
    def __init__(self, client: RpcClient) -> None:
        self.client = client
        self.debt_tokens: dict[tuple[str, str], tuple[str, ...] | None] = {}  # (pool, asset)
        # Ranges are enriched concurrently: one learns at a time, so a reserve is read once.
        self._learning = asyncio.Lock()

    async def _learn(self, pairs: set[tuple[str, str]]) -> None:
        async with self._learning:
            missing = sorted(p for p in pairs if p not in self.debt_tokens)
            if not missing:
                return
            answers = await self.client.batch(
                [
                    (
                        "eth_call",
                        [{"to": pool, "data": GET_RESERVE_DEBT_TOKENS.encode(asset)}, "latest"],
                    )
                    for pool, asset in missing
                ],
                check=check_word,
            )
            for pair, answer in zip(missing, answers, strict=True):
                self.debt_tokens[pair] = _debt_tokens(answer)

    async def closed(
        self, liquidations: Sequence[Liquidation]
    ) -> dict[tuple[str, int], bool | None]:
        """Per liquidation key: True when no debt of its asset was left after it, False when
        some was, None when unknown (the pool's debt tokens or a balance could not be read)."""
        if not liquidations:
            return {}
        await self._learn({(liq.pos.address, liq.debt_asset) for liq in liquidations})
        last = last_per_position(liquidations)
        asked: list[Position] = []
        calls: list[Call] = []
        for position in last:
            pool, user, asset, block = position
            for token in self.debt_tokens.get((pool, asset)) or ():
                asked.append(position)
                calls.append(
                    ("eth_call", [{"to": token, "data": BALANCE_OF.encode(user)}, hex(block)])
                )
        owed: dict[Position, int | None] = {}
        if calls:
            answers = await self.client.batch(calls, check=check_word)
            for position, answer in zip(asked, answers, strict=True):
                balance = _balance(answer)
                before = owed.get(position, 0)
                owed[position] = None if balance is None or before is None else before + balance
        out: dict[tuple[str, int], bool | None] = {}
        finals = {key: position for position, key in last.items()}
        for liq in liquidations:
            key = liq.pos.key
            final = finals.get(key)
            if final is None:
                out[key] = False  # a later liquidation of the same block repaid more of it
                continue
            left = owed.get(final)
            out[key] = None if left is None else left == 0
        return out


def _balance(answer: str | RpcError) -> int | None:
    if isinstance(answer, RpcError):
        return None
    try:
        return int(BALANCE_OF.decode(answer)[0])
    except BadAnswer:
        return None
