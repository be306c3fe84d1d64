"""What makes a liquidation SVR, what was recaptured, and how it is split.

The project's documented rule (docs/SVR.md):
- A LiquidationCall is SVR when, in the same block (MEV-Share, Ethereum) or the same
  transaction (Atlas: Arbitrum, Base), an earlier log is a SecondaryRoundIdUpdated that
  announces a new report (not a catch-up: decode/events.py reads the route) of an
  SVR aggregator that stood, at the liquidation's position, behind the source of its
  collateral or debt asset in its own market (enrich/sources.py dates the sources on-chain;
  configured aggregators count as well). The nearest such update is the one attributed.
- MEV-Share also needs the sale to show: a refund (below) after the liquidation in its
  block; without one the update was not sold, and the liquidation is not SVR.
- Recaptured value, MEV-Share: each native transfer in that block from the block's fee
  recipient (the builder) to a configured recipient, sent after the first SVR liquidation
  (the builder's refund). Atlas: each successful
  SolverTxResult of the configured DAppControl in the transaction (bidAmount in bidToken).
- A recapture belongs to the SVR liquidations of its block (MEV-Share, those before it) or
  transaction (Atlas); its USD value is shared equally among them, and a liquidation's
  share is the sum over the recaptures it belongs to. The split between Aave and
  Chainlink is the configured rule in force at the block's time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from indexer.config import ChainConfig, SplitRule
from indexer.decode.events import Liquidation, OracleUpdate, SolverResult
from indexer.enrich.prices import EXACT
from indexer.enrich.sources import SourceBook
from indexer.records import RecaptureRow

SHARE_PLACES = Decimal("1e-18")


@dataclass(frozen=True, slots=True)
class SvrMatch:
    aggregator: str
    round_id: int | None
    oracle_tx_hash: str


class SvrShare(NamedTuple):
    """One liquidation's part of the recaptures it belongs to (its SVR columns)."""

    recaptured_usd: Decimal | None
    aave_usd: Decimal | None
    chainlink_usd: Decimal | None


NO_SHARE = SvrShare(None, None, None)


@dataclass(frozen=True, slots=True)
class Auction:
    """An Atlas metacall's auction for Aave's DAppControl: how many bids were logged, and the
    best losing one (token, amount; None for the native coin's token) if any."""

    block_number: int
    bids: int
    best_losing: tuple[str | None, int] | None


@dataclass(frozen=True, slots=True)
class Payment:
    """A recaptured payment before valuation."""

    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    source_index: int
    recipient: str
    token: str | None
    amount: int
    aggregator: str | None
    liquidation_keys: tuple[tuple[str, int], ...]


def is_new_svr_report(update: OracleUpdate) -> bool:
    """A SecondaryRoundIdUpdated that announces a new report on the secondary route: what an
    SVR auction sells. A catch-up (the secondary route taking a report the public route
    already stored) sells nothing."""
    return update.kind == "secondary_round_id_updated" and update.route == "secondary"


def _aaves_new_report(update: OracleUpdate, book: SourceBook) -> bool:
    """A new SVR report of a feed that stood behind an Aave source at that position."""
    pos = update.pos
    return is_new_svr_report(update) and book.in_force(pos.address, pos.block_number, pos.log_index)


class SvrRules:
    def __init__(self, chain: ChainConfig) -> None:
        self.chain = chain
        self.model = chain.svr.model
        self.markets = {pool.address: pool.market for pool in chain.pools}
        self.recipients = frozenset(chain.svr.recipients)

    def _scope(self, tx_hash: str, block_number: int) -> object:
        return tx_hash if self.model == "atlas" else block_number

    def attribute(
        self,
        liquidations: Sequence[Liquidation],
        updates: Sequence[OracleUpdate],
        book: SourceBook,
    ) -> dict[tuple[str, int], SvrMatch]:
        """SVR liquidations by (tx_hash, log_index)."""
        svr = book.aggregators()
        if self.model == "none" or not svr:
            return {}
        secondary: dict[object, list[OracleUpdate]] = defaultdict(list)
        for update in updates:
            if is_new_svr_report(update) and update.pos.address in svr:
                secondary[self._scope(update.pos.tx_hash, update.pos.block_number)].append(update)
        matches: dict[tuple[str, int], SvrMatch] = {}
        for liq in liquidations:
            candidates = secondary.get(self._scope(liq.pos.tx_hash, liq.pos.block_number))
            if not candidates:
                continue
            best: OracleUpdate | None = None
            market = self.markets[liq.pos.address]
            block, index = liq.pos.block_number, liq.pos.log_index
            behind = book.svr_aggregators(market, liq.collateral_asset, block, index)
            behind += book.svr_aggregators(market, liq.debt_asset, block, index)
            for update in candidates:
                if update.pos.log_index >= index or update.pos.address not in behind:
                    continue
                if best is None or update.pos.log_index > best.pos.log_index:
                    best = update
            if best is not None:
                matches[liq.pos.key] = SvrMatch(best.pos.address, best.round_id, best.pos.tx_hash)
        return matches

    def won(
        self, matches: dict[tuple[str, int], SvrMatch], payments: Sequence[Payment]
    ) -> dict[tuple[str, int], SvrMatch]:
        """MEV-Share: only a back-run that a builder's refund follows was sold; an update
        nobody bid on lands as well (later caught up), and a liquidation after it is an
        ordinary one. Without configured recipients no refund can be seen, and the update
        alone decides (as for Atlas, whose metacall is the sale)."""
        if self.model != "mev-share" or not self.recipients:
            return matches
        sold = {key for payment in payments for key in payment.liquidation_keys}
        return {key: match for key, match in matches.items() if key in sold}

    def sold(
        self,
        updates: Sequence[OracleUpdate],
        matches: dict[tuple[str, int], SvrMatch],
        payments: Sequence[Payment],
        book: SourceBook,
    ) -> dict[tuple[str, int], bool]:
        """For each new SVR report of an aggregator behind an Aave source, whether it was
        sold: a liquidation attributed to it (MEV-Share, after `won`), a winning bid in
        its transaction (Atlas). The others (catch-ups, other events, feeds not Aave's at
        the time) are not in the answer."""
        if self.model == "none":
            return {}
        if self.model == "atlas":
            paid = {p.tx_hash for p in payments}
            return {u.pos.key: u.pos.tx_hash in paid for u in updates if _aaves_new_report(u, book)}
        used = {(m.oracle_tx_hash, m.aggregator) for m in matches.values()}
        return {
            u.pos.key: (u.pos.tx_hash, u.pos.address) in used
            for u in updates
            if _aaves_new_report(u, book)
        }

    def blocks_needing_transactions(
        self, liquidations: Iterable[Liquidation], matches: dict[tuple[str, int], SvrMatch]
    ) -> set[int]:
        """MEV-Share refunds are plain transfers, visible only in the block's transactions."""
        if self.model != "mev-share" or not self.recipients:
            return set()
        return {liq.pos.block_number for liq in liquidations if liq.pos.key in matches}

    def mev_share_payments(
        self,
        liquidations: Sequence[Liquidation],
        matches: dict[tuple[str, int], SvrMatch],
        blocks: dict[int, dict[str, Any]],
    ) -> list[Payment]:
        by_block: dict[int, list[Liquidation]] = defaultdict(list)
        for liq in liquidations:
            if liq.pos.key in matches:
                by_block[liq.pos.block_number].append(liq)
        payments = []
        for number, svr_liqs in sorted(by_block.items()):
            block = blocks.get(number)
            if not block:
                continue
            first_tx = min(liq.pos.tx_index for liq in svr_liqs)
            builder = str(block.get("miner") or "").lower()
            for tx in block.get("transactions", []):
                to = (tx.get("to") or "").lower()
                value = int(tx.get("value", "0x0"), 16)
                index = int(tx["transactionIndex"], 16)
                if to not in self.recipients or value == 0 or index <= first_tx:
                    continue
                if str(tx.get("from") or "").lower() != builder:
                    continue  # a refund is paid by the block's builder, its fee recipient
                covered = tuple(sorted(liq.pos.key for liq in svr_liqs if liq.pos.tx_index < index))
                payments.append(
                    Payment(
                        block_number=number,
                        block_hash=block["hash"].lower(),
                        tx_hash=tx["hash"].lower(),
                        tx_index=index,
                        source_index=-1,
                        recipient=to,
                        token=None,
                        amount=value,
                        aggregator=matches[covered[0]].aggregator if covered else None,
                        liquidation_keys=covered,
                    )
                )
        return payments

    def atlas_payments(
        self,
        liquidations: Sequence[Liquidation],
        matches: dict[tuple[str, int], SvrMatch],
        updates: Sequence[OracleUpdate],
        results: Sequence[SolverResult],
        book: SourceBook,
    ) -> list[Payment]:
        if self.model != "atlas":
            return []
        control = self.chain.svr.dapp_control
        recipient = self.chain.svr.recipients[0] if self.chain.svr.recipients else control or ""
        by_tx: dict[str, list[Liquidation]] = defaultdict(list)
        for liq in liquidations:
            if liq.pos.key in matches:
                by_tx[liq.pos.tx_hash].append(liq)
        tx_aggregator = {
            u.pos.tx_hash: u.pos.address for u in updates if _aaves_new_report(u, book)
        }
        payments = []
        for result in results:
            if not result.success or result.dapp_control != control:
                continue
            tx = result.pos.tx_hash
            if tx not in tx_aggregator and tx not in by_tx:
                continue
            covered = tuple(sorted(liq.pos.key for liq in by_tx.get(tx, [])))
            aggregator = matches[covered[0]].aggregator if covered else tx_aggregator.get(tx)
            payments.append(
                Payment(
                    block_number=result.pos.block_number,
                    block_hash=result.pos.block_hash,
                    tx_hash=tx,
                    tx_index=result.pos.tx_index,
                    source_index=result.pos.log_index,
                    recipient=recipient,
                    token=result.bid_token,
                    amount=result.bid_amount,
                    aggregator=aggregator,
                    liquidation_keys=covered,
                )
            )
        return payments

    def auctions(self, results: Sequence[SolverResult]) -> dict[str, Auction]:
        """Per metacall transaction, its auction's depth: every SolverTxResult of Aave's
        DAppControl is a bid (rejected before execution or not), the unsuccessful ones lose."""
        if self.model != "atlas":
            return {}
        control = self.chain.svr.dapp_control
        grouped: dict[str, list[SolverResult]] = defaultdict(list)
        for result in results:
            if result.dapp_control == control:
                grouped[result.pos.tx_hash].append(result)
        out = {}
        for tx, bids in grouped.items():
            losing = [b for b in bids if not b.success]
            best = max(losing, key=lambda b: b.bid_amount, default=None)
            out[tx] = Auction(
                bids[0].pos.block_number,
                len(bids),
                None if best is None else (best.bid_token, best.bid_amount),
            )
        return out

    @staticmethod
    def split(rule: SplitRule, amount_usd: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
        """(Aave's part, Chainlink's part) of a recapture under `rule`; they add up to it."""
        if amount_usd is None:
            return (None, None)
        aave = EXACT.divide(EXACT.multiply(amount_usd, Decimal(rule.aave_bps)), Decimal(10000))
        return (aave, EXACT.subtract(amount_usd, aave))


def liquidation_shares(
    recaptures: Iterable[tuple[Payment, RecaptureRow]],
) -> dict[tuple[str, int], SvrShare]:
    """Each SVR liquidation's equal share of every recapture it belongs to, summed over
    them (a liquidation after two refunds of its block gets a share of both)."""
    shares: dict[tuple[str, int], SvrShare] = {}
    for payment, row in recaptures:
        count = len(payment.liquidation_keys)
        part = SvrShare(
            share(row.amount_usd, count),
            share(row.aave_usd, count),
            share(row.chainlink_usd, count),
        )
        for key in payment.liquidation_keys:
            before = shares.get(key)
            shares[key] = part if before is None else SvrShare(*map(_add, before, part))
    return shares


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    """A sum where an unknown (unpriced) part makes the whole unknown."""
    return None if a is None or b is None else EXACT.add(a, b)


def share(value: Decimal | None, count: int) -> Decimal | None:
    """One liquidation's equal share of a recapture (exact when count is 1)."""
    if value is None or count <= 0:
        return None
    if count == 1:
        return value
    return EXACT.divide(value, Decimal(count)).quantize(SHARE_PLACES, context=EXACT)
