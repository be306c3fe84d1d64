"""Prices as of a liquidation's position, for the few liquidations whose block changes an
indexed feed of their assets after them.

The Pool priced a liquidation with what the AaveOracle answered at that point of the block;
an `eth_call` at the block answers what holds at its end. The two differ only when the
oracle's view of one of the liquidation's assets changes later in the block. Of the feeds
behind Aave's sources, only the indexed ones (the SVR DualAggregators the SourceBook puts
behind the asset's source in that market, whose events are read anyway) are known to
change within a block: a later AnswerUpdated or SecondaryRoundIdUpdated of such a feed, or
a later AssetSourceUpdated of the asset in the market's oracle, marks the liquidation. Any
other liquidation keeps the end-of-block price and costs nothing more.

A marked liquidation is priced by replaying its block up to it: one `eth_simulateV1` per
block on the parent's state, with the block's own number, time, fee recipient, base fee
and randomness, carrying the block's transactions in order and, at each marked
liquidation's position, the AaveOracle's getAssetPrice of its two assets. The liquidation's
own transaction is replayed too unless a marking event lies in it after the liquidation
(its state at the end of that transaction is then not the liquidation's); when the replay
includes it, it must log the same LiquidationCall (amounts depend on both prices), which
proves the replay. Not exact (and kept at the end-of-block price, basis `block_unsure`): a
marking event and an update of the same feeds before the liquidation both inside its
transaction, a replay that does not log the same LiquidationCall, a node without
eth_simulateV1.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from indexer.decode.events import Liquidation, OracleUpdate, SourceUpdate
from indexer.decode.topics import LIQUIDATION_CALL
from indexer.enrich.prices import GET_ASSET_PRICE
from indexer.enrich.sources import SourceBook
from indexer.fetch.headers import check_block
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import RpcError

log = logging.getLogger("aave_indexer.position")

#: The AaveOracle's view of an asset as of the end of the block.
BLOCK = "block"
#: As of the liquidation's position (the block replayed up to it).
POSITION = "position"
#: Marked, but the replay was not possible or not exact: the end-of-block price.
BLOCK_UNSURE = "block_unsure"
#: The DualAggregator events that can change what a reader of it answers.
CHANGES_VIEW = frozenset({"answer_updated", "secondary_round_id_updated"})


@dataclass(frozen=True, slots=True)
class Marked:
    """A liquidation whose block changes its assets' view after it, and where to read."""

    liq: Liquidation
    oracle: str
    #: replay the liquidation's own transaction before reading (no marking event after
    #: the liquidation inside it)
    through_own_tx: bool
    #: an update of its feeds (or a source switch) precedes it inside its transaction too
    updated_before_in_tx: bool


def _feeds(book: SourceBook, market: str, liq: Liquidation) -> tuple[str, ...]:
    pos = liq.pos
    return book.svr_aggregators(
        market, liq.collateral_asset, pos.block_number, pos.log_index
    ) + book.svr_aggregators(market, liq.debt_asset, pos.block_number, pos.log_index)


def marked(
    liqs: Sequence[Liquidation],
    updates: Sequence[OracleUpdate],
    sources: Sequence[SourceUpdate],
    book: SourceBook,
    markets: dict[str, str],
    oracles: dict[str, str],
) -> list[Marked]:
    """The liquidations followed in their block by an event that changes what their market's
    oracle answers for one of their assets: an update of a feed in force behind the asset's
    source, or a new source of the asset. Pure: the usual range, where no feed updates after
    a liquidation in its block, costs one dict lookup per liquidation."""
    events: dict[int, list[tuple[int, int, str, str]]] = {}
    for u in updates:
        if u.kind in CHANGES_VIEW:
            events.setdefault(u.pos.block_number, []).append(
                (u.pos.log_index, u.pos.tx_index, "feed", u.pos.address)
            )
    for s in sources:
        events.setdefault(s.pos.block_number, []).append(
            (s.pos.log_index, s.pos.tx_index, s.pos.address, s.asset)
        )
    out: list[Marked] = []
    for liq in liqs:
        block_events = events.get(liq.pos.block_number)
        if not block_events:
            continue
        pos = liq.pos
        oracle = oracles[pos.address]
        feeds = _feeds(book, markets[pos.address], liq)
        assets = (liq.collateral_asset, liq.debt_asset)

        mine = [
            e
            for e in block_events
            if (e[3] in feeds if e[2] == "feed" else e[2] == oracle and e[3] in assets)
        ]
        later = [e for e in mine if e[0] > pos.log_index]
        if not later:
            continue
        in_tx_after = any(e[1] == pos.tx_index for e in later)
        in_tx_before = any(e[1] == pos.tx_index and e[0] < pos.log_index for e in mine)
        out.append(Marked(liq, oracle, not in_tx_after, in_tx_before))
    return out


def _tx_call(tx: dict[str, Any]) -> dict[str, Any]:
    """A mined transaction as a simulated call: sender, target, value, input, gas limit and
    the fee fields it was sent with (a contract may read tx.gasprice)."""
    call: dict[str, Any] = {"from": tx["from"], "input": tx.get("input", "0x")}
    for field in ("to", "value", "gas", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"):
        if tx.get(field) is not None:
            call[field] = tx[field]
    if "maxFeePerGas" in call:
        call.pop("gasPrice", None)
    return call


def _price_call(oracle: str, asset: str) -> dict[str, Any]:
    return {"to": oracle, "input": GET_ASSET_PRICE.encode(asset)}


def _logged(result: Any, liq: Liquidation) -> bool:
    """Whether a replayed transaction logged this LiquidationCall, amounts and all."""
    for entry in result.get("logs") or ():
        topics = entry.get("topics") or ()
        if (
            str(entry.get("address", "")).lower() == liq.pos.address
            and topics
            and topics[0] == LIQUIDATION_CALL
            and "0x" + topics[3][-40:].lower() == liq.user
            and int(entry.get("data", "0x")[2:66] or "0", 16) == liq.debt_to_cover
            and int(entry.get("data", "0x")[66:130] or "0", 16) == liq.liquidated_collateral_amount
        ):
            return True
    return False


class PositionPrices:
    """Prices of marked liquidations as of their position, one replay per block."""

    def __init__(self, client: RpcClient) -> None:
        self.client = client
        self.unsupported = False  # the node refused eth_simulateV1: do not ask again

    async def prices(
        self, wanted: Iterable[Marked], known: dict[int, dict[str, Any]] | None = None
    ) -> dict[tuple[str, int], tuple[int | None, int | None, str]]:
        """(tx_hash, log_index) -> (collateral price, debt price, basis); a liquidation
        left out keeps its end-of-block price (basis block_unsure). `known`: blocks already
        read with their transactions (not asked again)."""
        by_block: dict[int, list[Marked]] = {}
        for m in wanted:
            if m.through_own_tx or not m.updated_before_in_tx:
                by_block.setdefault(m.liq.pos.block_number, []).append(m)
        if not by_block or self.unsupported:
            return {}
        numbers = sorted(by_block)
        known = known or {}
        missing = [n for n in numbers if n not in known]
        read = await self.client.batch(
            [("eth_getBlockByNumber", [hex(n), True]) for n in missing], check=check_block
        )
        found: dict[int, Any] = {**known, **dict(zip(missing, read, strict=True))}
        blocks = [found[n] for n in numbers]
        calls = []
        for number, block in zip(numbers, blocks, strict=True):
            if isinstance(block, RpcError):
                raise block
            calls.append(("eth_simulateV1", self._simulation(block, by_block[number])))
        answers = await self.client.batch(calls)
        out: dict[tuple[str, int], tuple[int | None, int | None, str]] = {}
        for number, answer in zip(numbers, answers, strict=True):
            if isinstance(answer, RpcError):
                log.warning(
                    "block %d: eth_simulateV1 refused (%s): end-of-block prices", number, answer
                )
                if answer.code == -32601:
                    self.unsupported = True
                continue
            out.update(self._read(answer, by_block[number], number))
        return out

    @staticmethod
    def _layout(marks: list[Marked]) -> list[tuple[Marked, int]]:
        """Each marked liquidation with the number of the block's transactions replayed
        before its price reads, in replay order."""
        steps = [(m, m.liq.pos.tx_index + (1 if m.through_own_tx else 0)) for m in marks]
        steps.sort(key=lambda s: (s[1], s[0].liq.pos.log_index))
        return steps

    def _simulation(self, block: dict[str, Any], marks: list[Marked]) -> list[Any]:
        """The eth_simulateV1 parameters: the block's transactions up to the last marked
        liquidation, each one's two price reads at its place, on the parent's state with
        the block's own environment (the SVR view depends on the block's time)."""
        txs = block.get("transactions") or []
        calls: list[dict[str, Any]] = []
        done = 0
        for m, upto in self._layout(marks):
            calls += [_tx_call(tx) for tx in txs[done:upto]]
            done = max(done, upto)
            calls += [
                _price_call(m.oracle, m.liq.collateral_asset),
                _price_call(m.oracle, m.liq.debt_asset),
            ]
        overrides = {
            "number": block["number"],
            "time": block["timestamp"],
            "feeRecipient": block.get("miner"),
            "gasLimit": block.get("gasLimit"),
            "baseFeePerGas": block.get("baseFeePerGas"),
            "prevRandao": block.get("mixHash"),
        }
        overrides = {k: v for k, v in overrides.items() if v is not None}
        parent = hex(int(block["number"], 16) - 1)
        spec = {"blockStateCalls": [{"blockOverrides": overrides, "calls": calls}]}
        return [{**spec, "validation": False}, parent]

    def _read(
        self, answer: Any, marks: list[Marked], number: int
    ) -> dict[tuple[str, int], tuple[int | None, int | None, str]]:
        """Each liquidation's two reads, if the replay reproduced its LiquidationCall
        (when its own transaction was replayed)."""
        try:
            results = list(answer[0]["calls"])
        except (KeyError, IndexError, TypeError):
            log.warning("block %d: eth_simulateV1 answered no calls: end-of-block prices", number)
            return {}
        out: dict[tuple[str, int], tuple[int | None, int | None, str]] = {}
        at = done = 0
        own_at: dict[int, int] = {}  # transaction index -> its result's index
        for m, upto in self._layout(marks):
            for index in range(done, upto):
                own_at[index] = at
                at += 1
            done = max(done, upto)
            if at + 2 > len(results):
                break
            collateral, debt = results[at], results[at + 1]
            at += 2
            if m.through_own_tx:
                own = results[own_at[m.liq.pos.tx_index]]
                if not isinstance(own, dict) or not _logged(own, m.liq):
                    log.warning(
                        "block %d: the replay does not log liquidation %s:%d as mined: "
                        "end-of-block prices",
                        number,
                        *m.liq.pos.key,
                    )
                    continue
            out[m.liq.pos.key] = (_word(collateral), _word(debt), POSITION)
        return out


def _word(result: Any) -> int | None:
    """getAssetPrice's answer in a simulated call; None when it reverted."""
    if not isinstance(result, dict) or result.get("status") != "0x1":
        return None
    data = result.get("returnData") or "0x"
    if len(data) < 66:
        return None
    return int(data[2:66], 16)
