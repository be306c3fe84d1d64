"""Whether a liquidation closed the borrower's debt in full: the debt left after it.

No log of a LiquidationCall says what the borrower still owes (the debt token's Burn and
Transfer carry the amount burnt, not the balance left), so this takes a call:
`balanceOf(user)` of the reserve's variable debt token, and of its stable debt token where
the reserve has one, at the liquidation's block, all of a range's in one batch. The balance
at the end of a block is the balance after that block's last liquidation of the (pool,
borrower, debt asset); an earlier one of the same block left debt for the later one to
repay, so it did not close the position. A borrow or repay by the same borrower later in
the same block is not seen (rare; docs/API.md says so). The debt tokens of each reserve come
from `Reserves` (read once); a pool that does not answer leaves the field unknown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from indexer.abi import BadAnswer, Function
from indexer.decode.events import Liquidation
from indexer.enrich.prices import check_word
from indexer.enrich.reserves import Reserves
from indexer.rpc.client import Call, RpcClient
from indexer.rpc.errors import RpcError

BALANCE_OF = Function("balanceOf(address)", returns=("uint256",))

#: (pool, user, debt asset, block): the position a balance is read for
Position = tuple[str, str, str, int]

_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_PAD = "0" * 24


def balance_calldata(user: str) -> str:
    """balanceOf(user) calldata. A decoded address (lowercase 0x-hex) is written directly,
    byte-identical to eth-abi's encoding at a tenth of its cost (one call per liquidation);
    anything else goes through eth-abi and its checks."""
    if _ADDRESS.fullmatch(user):
        return BALANCE_OF.selector + _PAD + user[2:]
    return BALANCE_OF.encode(user)


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
    def __init__(self, client: RpcClient, reserves: Reserves) -> None:
        self.client = client
        self.reserves = reserves

    async def closed(
        self, liquidations: Sequence[Liquidation]
    ) -> dict[tuple[str, int], bool | None]:
        """Per liquidation key: True when no debt of its asset was left after it, False when
        some was, None when unknown (the pool's debt tokens or a balance could not be read)."""
        if not liquidations:
            return {}
        await self.reserves.learn({(liq.pos.address, liq.debt_asset) for liq in liquidations})
        last = last_per_position(liquidations)
        asked: list[Position] = []
        calls: list[Call] = []
        for position in last:
            pool, user, asset, block = position
            reserve = self.reserves.tokens.get((pool, asset))
            for token in reserve.debt_tokens if reserve else ():
                asked.append(position)
                calls.append(
                    ("eth_call", [{"to": token, "data": balance_calldata(user)}, hex(block)])
                )
        owed: dict[Position, int | None] = {}
        if calls:
            answers = await self.client.batch(calls, check=check_word)
            failed = [i for i, answer in enumerate(answers) if isinstance(answer, RpcError)]
            if failed:  # once more, alone: a node's passing error is not an unknown for good
                again = await self.client.batch([calls[i] for i in failed], check=check_word)
                for i, answer in zip(failed, again, strict=True):
                    answers[i] = answer
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
    """The uint256 answered, None for an error or an answer that is not one. One 32-byte
    word (the usual answer) is read directly; anything else is left to eth-abi."""
    if isinstance(answer, RpcError):
        return None
    if len(answer) == 66 and answer.startswith("0x"):
        try:
            word = bytes.fromhex(answer[2:])
        except ValueError:
            return None
        if len(word) == 32:
            return int.from_bytes(word, "big")
    try:
        return int(BALANCE_OF.decode(answer)[0])
    except BadAnswer:
        return None
