"""The protocol's cut of a liquidation: the collateral aToken sent to the treasury.

LiquidationCall's liquidatedCollateralAmount leaves the protocol fee out. Aave moves the fee
with the collateral aToken's transferOnLiquidation(user -> treasury) just before emitting
LiquidationCall, which shows as an ERC-20 Transfer from the aToken. Those transfers are
fetched only for ranges that hold liquidations, with a filter on the treasury, so the cost
follows the number of liquidations, not the number of aToken transfers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NamedTuple

from indexer.abi import BadAnswer, Function
from indexer.decode.events import DecodeError, Liquidation, Log
from indexer.decode.topics import TRANSFER
from indexer.enrich.prices import check_word
from indexer.enrich.reserves import Reserves
from indexer.fetch.ranges import LogFilter, RangeSizer, fetch_range
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import RpcError

RESERVE_TREASURY_ADDRESS = Function("RESERVE_TREASURY_ADDRESS()", returns=("address",))


ZERO_ADDRESS = "0x" + "0" * 40


def _pad(address: str) -> str:
    """An address as a log topic (a filter on an indexed address)."""
    return "0x" + address[2:].rjust(64, "0")


def _address(function: Function, answer: str | RpcError, field: int) -> str | None:
    """One address field of an answer, lowercased; None (unknown, so no fee is claimed)
    when the call reverted or the answer is not the declared shape."""
    if isinstance(answer, RpcError):
        return None
    try:
        return str(function.decode(answer)[field]).lower()
    except BadAnswer:
        return None


class TreasuryFees:
    def __init__(self, client: RpcClient, max_block_range: int, reserves: Reserves) -> None:
        self.client = client
        self.reserves = reserves
        self.treasury: dict[str, str | None] = {}  # aToken -> treasury
        self.sizer = RangeSizer(max_block_range)
        # Ranges are enriched concurrently: one learns at a time, so that no range reads an
        # aToken whose treasury another range is still fetching (and takes it as unknown).
        self._learning = asyncio.Lock()

    @property
    def atokens(self) -> dict[tuple[str, str], str | None]:
        """(pool, asset) -> aToken, for the reserves read so far."""
        return {pair: t.atoken if t else None for pair, t in self.reserves.tokens.items()}

    async def _learn(self, pairs: set[tuple[str, str]]) -> None:
        async with self._learning:
            await self.reserves.learn(pairs)
            known = {t.atoken for t in self.reserves.tokens.values() if t}
            new = sorted(a for a in known if a not in self.treasury)
            if new:
                data = RESERVE_TREASURY_ADDRESS.encode()
                answers = await self.client.batch(
                    [("eth_call", [{"to": atoken, "data": data}, "latest"]) for atoken in new],
                    check=check_word,
                )
                for atoken, answer in zip(new, answers, strict=True):
                    self.treasury[atoken] = _address(RESERVE_TREASURY_ADDRESS, answer, 0)

    async def fees(self, liquidations: Sequence[Liquidation]) -> dict[tuple[str, int], int | None]:
        """Fee per liquidation key: the amount, 0 when none was paid, None when unknown."""
        if not liquidations:
            return {}
        await self._learn({(liq.pos.address, liq.collateral_asset) for liq in liquidations})
        by_pair = self.atokens
        atokens: set[str] = set()
        for pair in {(liq.pos.address, liq.collateral_asset) for liq in liquidations}:
            atoken = by_pair.get(pair)
            if atoken is not None:
                atokens.add(atoken)
        treasuries = sorted({t for a in atokens if (t := self.treasury.get(a))})
        if not atokens or not treasuries:
            return {liq.pos.key: None for liq in liquidations}
        blocks = [liq.pos.block_number for liq in liquidations]
        log_filter = LogFilter(
            addresses=sorted(atokens),
            topics=[TRANSFER, None, [_pad(t) for t in treasuries]],
        )
        logs = await fetch_range(self.client, log_filter, min(blocks), max(blocks), self.sizer)
        await asyncio.sleep(0)  # let a write in flight move before the matching
        return match_fees(liquidations, logs, by_pair, self.treasury)


class _Transfer(NamedTuple):
    log_index: int
    token: str
    sender: str  # the 20-byte tail of topics[1], lowercased, without 0x
    recipient: str  # the same for topics[2]
    amount: int


def _transfer(log: Log) -> _Transfer | None:
    """The fields match_fees compares, parsed once per log; None for a log that cannot be a
    fee (not three topics). Malformed numbers from the node are an error, not a zero fee."""
    topics = log["topics"]
    if len(topics) != 3:
        return None
    try:
        return _Transfer(
            int(log["logIndex"], 16),
            log["address"].lower(),
            topics[1][-40:].lower(),
            topics[2][-40:].lower(),
            int(log["data"], 16),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"malformed Transfer log from the node: {exc}") from None


def match_fees(
    liquidations: Sequence[Liquidation],
    transfers: Sequence[Log],
    atokens: dict[tuple[str, str], str | None],
    treasury: dict[str, str | None],
) -> dict[tuple[str, int], int | None]:
    """Each liquidation's fee is the Transfer user -> treasury of its collateral aToken in
    the same transaction, after the previous LiquidationCall of that transaction.
    Transfers are grouped by transaction and parsed once; a transaction usually holds one
    liquidation, which then needs no sorting."""
    by_tx: dict[str, list[_Transfer]] = {}
    for log in transfers:
        parsed = _transfer(log)
        if parsed is None:
            continue
        tx = log["transactionHash"].lower()
        group = by_tx.get(tx)
        if group is None:
            by_tx[tx] = [parsed]
        else:
            group.append(parsed)
    liqs_by_tx: dict[str, list[Liquidation]] = {}
    for liq in liquidations:
        same_tx = liqs_by_tx.get(liq.pos.tx_hash)
        if same_tx is None:
            liqs_by_tx[liq.pos.tx_hash] = [liq]
        else:
            same_tx.append(liq)
    out: dict[tuple[str, int], int | None] = {}
    for tx, liqs in liqs_by_tx.items():
        if len(liqs) > 1:
            liqs.sort(key=lambda item: item.pos.log_index)
        candidates = by_tx.get(tx, ())
        previous = -1
        for liq in liqs:
            index = liq.pos.log_index
            atoken = atokens.get((liq.pos.address, liq.collateral_asset))
            to = treasury.get(atoken) if atoken else None
            if atoken is None or to is None:
                out[(liq.pos.tx_hash, index)] = None
                previous = index
                continue
            user, to_tail = liq.user[2:], to[2:]
            fee = 0
            for t in candidates:
                if (
                    previous < t.log_index < index
                    and t.token == atoken
                    and t.sender == user
                    and t.recipient == to_tail
                ):
                    fee += t.amount
            out[(liq.pos.tx_hash, index)] = fee
            previous = index
    return out
