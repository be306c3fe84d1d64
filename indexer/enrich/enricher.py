"""One range's decoded events become rows: timestamps, token metadata, USD prices at the
block, SVR attribution and recaptures, all with batched RPC."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from indexer.config import ChainConfig
from indexer.decode.events import DecodedLogs, Deficit, Liquidation, OracleUpdate
from indexer.enrich.closure import DebtClosures
from indexer.enrich.fees import TreasuryFees
from indexer.enrich.position import BLOCK, BLOCK_UNSURE, PositionPrices, marked
from indexer.enrich.prices import EXACT, PriceOracle, usd
from indexer.enrich.reserves import Reserves
from indexer.enrich.sources import SourceBook, rows_for
from indexer.enrich.svr import NO_SHARE, Payment, SvrMatch, SvrRules, SvrShare, liquidation_shares
from indexer.enrich.tokens import Token, TokenRegistry
from indexer.fetch.headers import Header, check_block, fetch_headers
from indexer.records import (
    AssetRow,
    Batch,
    DeficitRow,
    LiquidationRow,
    OracleUpdateRow,
    RecaptureRow,
)
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import EndpointFault, RpcError

# Rows are built this many liquidations at a time, with a turn of the event loop between
# chunks, so that a write in flight gets its answers while a large range is enriched.
ROW_CHUNK = 1000

Prices = dict[tuple[str, int], int | None]
_NO_AUCTION = (None, None)  # svr_bid_count, svr_best_losing_bid_usd
_NOT_SVR = (False, None, None, None, *NO_SHARE, *_NO_AUCTION)  # is_svr .. the auction


def economics(
    collateral_usd: Decimal | None,
    debt_usd: Decimal | None,
    fee_usd: Decimal | None,
    closed_fully: bool | None,
) -> tuple[Decimal | None, Decimal | None, Decimal | None, bool | None]:
    """bonus_usd, protocol_fee_usd, collateral_seized_usd, closed_fully: the liquidator's
    gain (collateral received minus debt repaid) and everything taken from the borrower
    (the liquidator's collateral and the treasury's fee), exact."""
    bonus = (
        None
        if collateral_usd is None or debt_usd is None
        else EXACT.subtract(collateral_usd, debt_usd)
    )
    seized = None if collateral_usd is None else EXACT.add(collateral_usd, fee_usd or 0)
    return bonus, fee_usd, seized, closed_fully


def oracle_markets(chain: ChainConfig) -> dict[str, list[str]]:
    """The markets each AaveOracle of the chain prices (usually one)."""
    markets: dict[str, list[str]] = {}
    for pool in chain.pools:
        markets.setdefault(pool.oracle, []).append(pool.market)
    return markets


class Enricher:
    def __init__(
        self,
        chain: ChainConfig,
        client: RpcClient,
        tokens: TokenRegistry,
        book: SourceBook | None = None,
    ) -> None:
        self.chain = chain
        self.client = client
        self.tokens = tokens
        self.oracles = {pool.address: PriceOracle(client, pool.oracle) for pool in chain.pools}
        self.pool_oracles = {pool.address: pool.oracle for pool in chain.pools}
        self.positions = PositionPrices(client)
        self.default_oracle = self.oracles[chain.pools[0].address]
        self.markets = {pool.address: pool.market for pool in chain.pools}
        self.oracle_markets = oracle_markets(chain)
        #: the asset sources written so far; the pipeline keeps it current
        self.book = book if book is not None else SourceBook(chain.svr.aggregators)
        self.svr = SvrRules(chain)
        self.reserves = Reserves(client)
        self.fees = TreasuryFees(client, chain.max_block_range, self.reserves)
        self.closures = DebtClosures(client, self.reserves)

    def forget_above(self, block: int) -> None:
        """After a rollback to `block`: what was read of the replaced blocks is stale."""
        for oracle in self.oracles.values():
            oracle.forget_above(block)

    async def enrich(
        self,
        decoded: DecodedLogs,
        first_block: int,
        last_block: int,
        headers: dict[int, Header] | None = None,
    ) -> Batch:
        chain_id = self.chain.chain_id
        batch = Batch(chain_id, first_block, last_block)
        liqs, updates = decoded.liquidations, decoded.oracle_updates
        if decoded.source_updates:
            batch.asset_sources = await rows_for(
                self.client,
                self.chain.name,
                chain_id,
                self.oracle_markets,
                decoded.source_updates,
                self.book,
            )
        deficits = decoded.deficits
        if not liqs and not updates and not decoded.solver_results and not deficits:
            return batch
        await asyncio.sleep(0)  # the range was just decoded: let a write in flight move

        times = await self._block_times(decoded, headers)
        learned = await self.tokens.ensure(
            {a for liq in liqs for a in (liq.collateral_asset, liq.debt_asset)}
            | {d.asset for d in deficits}
        )
        batch.assets.extend(self._asset_rows(learned))

        fees = await self.fees.fees(liqs)
        closed = await self.closures.closed(liqs)
        book = self.book.extended(batch.asset_sources)  # this range's own switches count
        matches = self.svr.attribute(liqs, updates, book)
        payments, full_blocks = await self._payments(decoded, matches, book)
        matches = self.svr.won(matches, payments)
        auctions = self.svr.auctions(decoded.solver_results)
        tokens = {p.token for p in payments} | {
            a.best_losing[0] for a in auctions.values() if a.best_losing
        }
        learned = await self.tokens.ensure({t for t in tokens if t is not None})
        batch.assets.extend(self._asset_rows(learned))

        # Prices: per pool oracle for liquidations; the first pool's oracle for recaptures.
        wanted: dict[str, set[tuple[str, int]]] = {}
        for liq in liqs:
            pairs = wanted.setdefault(liq.pos.address, set())
            pairs.add((liq.collateral_asset, liq.pos.block_number))
            pairs.add((liq.debt_asset, liq.pos.block_number))
        for deficit in deficits:
            wanted.setdefault(deficit.pos.address, set()).add(
                (deficit.asset, deficit.pos.block_number)
            )
        native = self.chain.native_price_asset
        recapture_pairs = set()
        for p in payments:
            asset = p.token or native
            if asset:
                recapture_pairs.add((asset, p.block_number))
        for auction in auctions.values():
            bid_asset = auction.best_losing[0] or native if auction.best_losing else None
            if bid_asset:
                recapture_pairs.add((bid_asset, auction.block_number))
        prices: dict[str, Prices] = {}
        for pool, pairs in wanted.items():
            prices[pool] = await self.oracles[pool].prices(pairs)
        recapture_prices = await self.default_oracle.prices(recapture_pairs)
        # The few liquidations whose assets' view changes later in their block: priced as of
        # their position (enrich/position.py); every other one keeps its block's prices.
        marks = marked(liqs, updates, decoded.source_updates, book, self.markets, self.pool_oracles)
        at_position = await self.positions.prices(marks, full_blocks) if marks else {}
        unsure = {m.liq.pos.key for m in marks} - at_position.keys()

        pools = {liq.pos.key: liq.pos.address for liq in liqs}
        valued = [(p, self._recapture_row(p, times, recapture_prices, pools)) for p in payments]
        batch.recaptures = [row for _, row in valued]
        shares = liquidation_shares(valued)
        depth = {
            tx: (
                auction.bids,
                self._bid_usd(auction.best_losing, auction.block_number, recapture_prices),
            )
            for tx, auction in auctions.items()
        }
        batch.liquidations = await self._liquidation_rows(
            liqs, times, prices, fees, closed, matches, shares, depth, at_position, unsure
        )
        batch.deficits = self._deficit_rows(deficits, liqs, times, prices)
        sold = self.svr.sold(updates, matches, payments, book)
        batch.oracle_updates = [
            self._oracle_update_row(u, times, sold.get(u.pos.key)) for u in updates
        ]
        return batch

    def _asset_rows(self, tokens: Sequence[Token]) -> list[AssetRow]:
        return [AssetRow(self.chain.chain_id, t.address, t.symbol, t.decimals) for t in tokens]

    def _oracle_update_row(
        self, update: OracleUpdate, times: dict[int, datetime], sold: bool | None
    ) -> OracleUpdateRow:
        pos = update.pos
        return OracleUpdateRow(
            chain_id=self.chain.chain_id,
            block_number=pos.block_number,
            block_hash=pos.block_hash,
            block_time=times[pos.block_number],
            tx_hash=pos.tx_hash,
            tx_index=pos.tx_index,
            log_index=pos.log_index,
            aggregator=pos.address,
            kind=update.kind,
            route=update.route,
            round_id=update.round_id,
            answer=update.answer,
            transmitter=update.transmitter,
            observations_timestamp=update.observations_timestamp,
            epoch_and_round=update.epoch_and_round,
            config_digest=update.config_digest,
            sold=sold,
        )

    async def _liquidation_rows(
        self,
        liqs: Sequence[Liquidation],
        times: dict[int, datetime],
        prices: dict[str, Prices],
        fees: dict[tuple[str, int], int | None],
        closed: dict[tuple[str, int], bool | None],
        matches: dict[tuple[str, int], SvrMatch],
        shares: dict[tuple[str, int], SvrShare],
        depth: dict[str, tuple[int, Decimal | None]],
        at_position: dict[tuple[str, int], tuple[int | None, int | None, str]],
        unsure: set[tuple[str, int]],
    ) -> list[LiquidationRow]:
        """One row per liquidation. The hot loop of enrich: decimals are looked up once per
        asset, the row is one tuple in LiquidationRow's field order made a LiquidationRow by
        _make (a third of the cost of the positional call, a fifth of the keyword one), and
        the SVR columns of the usual liquidation, not SVR, are one shared constant."""
        chain_id = self.chain.chain_id
        markets = self.markets
        decimals = {
            asset: self.tokens.decimals(asset)
            for liq in liqs
            for asset in (liq.collateral_asset, liq.debt_asset)
        }
        rows: list[LiquidationRow] = []
        make_row = LiquidationRow._make
        for start in range(0, len(liqs), ROW_CHUNK):
            if start:
                await asyncio.sleep(0)
            for liq in liqs[start : start + ROW_CHUNK]:
                pos = liq.pos
                block = pos.block_number
                key = (pos.tx_hash, pos.log_index)
                pool_prices = prices[pos.address]
                collateral, debt = liq.collateral_asset, liq.debt_asset
                basis = BLOCK
                replayed = at_position.get(key) if at_position else None
                if replayed is not None:
                    c_price, d_price, basis = replayed
                else:
                    c_price = pool_prices.get((collateral, block))
                    d_price = pool_prices.get((debt, block))
                    if unsure and key in unsure:
                        basis = BLOCK_UNSURE
                c_usd = (
                    None
                    if c_price is None
                    else usd(liq.liquidated_collateral_amount, c_price, decimals[collateral])
                )
                d_usd = None if d_price is None else usd(liq.debt_to_cover, d_price, decimals[debt])
                fee = fees.get(key)
                fee_usd = (
                    None
                    if fee is None or c_price is None
                    else usd(fee, c_price, decimals[collateral])
                )
                match = matches.get(key)
                rows.append(
                    make_row(
                        (
                            chain_id,
                            block,
                            pos.block_hash,
                            times[block],
                            pos.tx_hash,
                            pos.tx_index,
                            pos.log_index,
                            pos.address,
                            markets[pos.address],
                            collateral,
                            debt,
                            liq.user,
                            liq.liquidator,
                            liq.debt_to_cover,
                            liq.liquidated_collateral_amount,
                            liq.receive_atoken,
                            c_price,
                            d_price,
                            c_usd,
                            d_usd,
                            fee,
                        )
                        + (
                            _NOT_SVR
                            if match is None
                            else (
                                True,
                                match.aggregator,
                                match.round_id,
                                match.oracle_tx_hash,
                                *shares.get(key, NO_SHARE),
                                *depth.get(pos.tx_hash, _NO_AUCTION),
                            )
                        )
                        + economics(c_usd, d_usd, fee_usd, closed.get(key))
                        + (basis,)
                    )
                )
        return rows

    def _deficit_rows(
        self,
        deficits: Sequence[Deficit],
        liqs: Sequence[Liquidation],
        times: dict[int, datetime],
        prices: dict[str, Prices],
    ) -> list[DeficitRow]:
        """One row per deficit event, valued like a liquidation (its pool's oracle at the
        block). A deficit created belongs to the first LiquidationCall of its user and pool
        after it in the transaction: the Pool books bad debt before it logs the liquidation,
        which is always in the same block, so in the same range."""
        by_tx: dict[str, list[Liquidation]] = {}
        for liq in liqs:
            by_tx.setdefault(liq.pos.tx_hash, []).append(liq)
        rows = []
        for d in deficits:
            pos = d.pos
            price = prices.get(pos.address, {}).get((d.asset, pos.block_number))
            link = None
            if d.kind == "created":
                link = next(
                    (
                        liq.pos.log_index
                        for liq in sorted(by_tx.get(pos.tx_hash, ()), key=lambda x: x.pos.log_index)
                        if liq.pos.log_index > pos.log_index
                        and liq.pos.address == pos.address
                        and liq.user == d.user
                    ),
                    None,
                )
            rows.append(
                DeficitRow(
                    chain_id=self.chain.chain_id,
                    block_number=pos.block_number,
                    block_hash=pos.block_hash,
                    block_time=times[pos.block_number],
                    tx_hash=pos.tx_hash,
                    tx_index=pos.tx_index,
                    log_index=pos.log_index,
                    pool=pos.address,
                    market=self.markets[pos.address],
                    kind=d.kind,
                    user_address=d.user,
                    asset=d.asset,
                    amount=d.amount,
                    caller=d.caller,
                    price=price,
                    usd=None
                    if price is None
                    else usd(d.amount, price, self.tokens.decimals(d.asset)),
                    liquidation_log_index=link,
                )
            )
        return rows

    async def _block_times(
        self, decoded: DecodedLogs, headers: dict[int, Header] | None
    ) -> dict[int, datetime]:
        times: dict[int, datetime] = {}
        needed: set[int] = set()
        positions = [liq.pos for liq in decoded.liquidations]
        positions += [u.pos for u in decoded.oracle_updates]
        positions += [r.pos for r in decoded.solver_results]
        positions += [d.pos for d in decoded.deficits]
        for pos in positions:
            if pos.block_number in times:
                continue
            if pos.block_time is not None:
                times[pos.block_number] = datetime.fromtimestamp(pos.block_time, UTC)
            elif headers and pos.block_number in headers:
                header = headers[pos.block_number]
                times[pos.block_number] = datetime.fromtimestamp(header.timestamp, UTC)
            else:
                needed.add(pos.block_number)
        needed -= times.keys()
        if needed:
            fetched = await fetch_headers(self.client, needed)
            for number, header in fetched.items():
                times[number] = datetime.fromtimestamp(header.timestamp, UTC)
        return times

    async def _payments(
        self, decoded: DecodedLogs, matches: dict[tuple[str, int], SvrMatch], book: SourceBook
    ) -> tuple[list[Payment], dict[int, dict[str, Any]]]:
        """The recaptures, and the blocks read with their transactions to find them (the
        position replay reuses them)."""
        liqs = decoded.liquidations
        payments = self.svr.atlas_payments(
            liqs, matches, decoded.oracle_updates, decoded.solver_results, book
        )
        numbers = sorted(self.svr.blocks_needing_transactions(liqs, matches))
        blocks: dict[int, dict[str, Any]] = {}
        if numbers:
            answers = await self.client.batch(
                [("eth_getBlockByNumber", [hex(n), True]) for n in numbers], check=check_block
            )
            for number, block in zip(numbers, answers, strict=True):
                if isinstance(block, RpcError):
                    raise block
                if not isinstance(block, dict):
                    raise EndpointFault(f"{self.chain.name}: block {number} is null")
                blocks[number] = block
            payments += self.svr.mev_share_payments(liqs, matches, blocks)
        return payments, blocks

    def _bid_usd(
        self, bid: tuple[str | None, int] | None, block: int, prices: Prices
    ) -> Decimal | None:
        """A bid's USD value at its block (the native coin through native_price_asset)."""
        if bid is None:
            return None
        token, amount = bid
        asset = token or self.chain.native_price_asset
        price = prices.get((asset, block)) if asset else None
        if price is None:
            return None
        return usd(amount, price, self.tokens.decimals(token) if token else 18)

    def _recapture_row(
        self,
        p: Payment,
        times: dict[int, datetime],
        prices: Prices,
        pools: dict[tuple[str, int], str],
    ) -> RecaptureRow:
        """A recapture's row; its market is that of the first liquidation it belongs to."""
        when = times.get(p.block_number)
        if when is None:
            raise EndpointFault(f"no timestamp for block {p.block_number}")
        asset = p.token or self.chain.native_price_asset
        price = prices.get((asset, p.block_number)) if asset else None
        decimals = self.tokens.decimals(p.token) if p.token else 18
        amount_usd = usd(p.amount, price, decimals) if price is not None else None
        rule = self.chain.svr.split_at(when)
        aave, chainlink = self.svr.split(rule, amount_usd)
        return RecaptureRow(
            chain_id=self.chain.chain_id,
            block_number=p.block_number,
            block_hash=p.block_hash,
            block_time=when,
            tx_hash=p.tx_hash,
            source_index=p.source_index,
            recipient=p.recipient,
            token=p.token,
            amount=p.amount,
            amount_usd=amount_usd,
            aggregator=p.aggregator,
            market=self.markets[pools[p.liquidation_keys[0]]] if p.liquidation_keys else None,
            liquidation_ids=[f"{self.chain.chain_id}:{tx}:{idx}" for tx, idx in p.liquidation_keys],
            aave_bps=rule.aave_bps,
            aave_usd=aave,
            chainlink_usd=chainlink,
            split_rule=rule.name,
        )
