"""One range's decoded events become rows: timestamps, token metadata, USD prices at the
block, SVR attribution and recaptures, all with batched RPC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from indexer.config import ChainConfig
from indexer.decode.events import DecodedLogs
from indexer.enrich.blocks import Header, check_block, fetch_headers
from indexer.enrich.fees import TreasuryFees
from indexer.enrich.prices import PriceOracle, usd
from indexer.enrich.svr import Payment, SvrMatch, SvrRules, share
from indexer.enrich.tokens import TokenRegistry
from indexer.records import Batch, Row
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import EndpointFault, RpcError


class Enricher:
    def __init__(self, chain: ChainConfig, client: RpcClient, tokens: TokenRegistry) -> None:
        self.chain = chain
        self.client = client
        self.tokens = tokens
        self.oracles = {pool.address: PriceOracle(client, pool.oracle) for pool in chain.pools}
        self.default_oracle = self.oracles[chain.pools[0].address]
        self.svr = SvrRules(chain)
        self.fees = TreasuryFees(client, chain.max_block_range)

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
        if not liqs and not updates and not decoded.solver_results:
            return batch

        times = await self._block_times(decoded, headers)
        learned = await self.tokens.ensure(
            {a for liq in liqs for a in (liq.collateral_asset, liq.debt_asset)}
        )
        batch.assets.extend((chain_id, t.address, t.symbol, t.decimals) for t in learned)

        fees = await self.fees.fees(liqs)
        matches = self.svr.attribute(liqs, updates)
        payments = await self._payments(decoded, matches)
        payment_tokens = {p.token for p in payments if p.token is not None}
        learned = await self.tokens.ensure(payment_tokens)
        batch.assets.extend((chain_id, t.address, t.symbol, t.decimals) for t in learned)

        # Prices: per pool oracle for liquidations; the first pool's oracle for recaptures.
        wanted: dict[str, set[tuple[str, int]]] = {}
        for liq in liqs:
            pairs = wanted.setdefault(liq.pos.address, set())
            pairs.add((liq.collateral_asset, liq.pos.block_number))
            pairs.add((liq.debt_asset, liq.pos.block_number))
        native = self.chain.native_price_asset
        recapture_pairs = set()
        for p in payments:
            asset = p.token or native
            if asset:
                recapture_pairs.add((asset, p.block_number))
        prices: dict[str, dict[tuple[str, int], int | None]] = {}
        for pool, pairs in wanted.items():
            prices[pool] = await self.oracles[pool].prices(pairs)
        recapture_prices = await self.default_oracle.prices(recapture_pairs)

        shares: dict[tuple[str, int], tuple[Decimal | None, ...]] = {}
        for payment in payments:
            row = self._recapture_row(payment, times, recapture_prices)
            batch.recaptures.append(row)
            count = len(payment.liquidation_keys)
            for key in payment.liquidation_keys:
                shares[key] = (share(row[9], count), share(row[13], count), share(row[14], count))

        for liq in liqs:
            pos = liq.pos
            pool_prices = prices[pos.address]
            c_price = pool_prices.get((liq.collateral_asset, pos.block_number))
            d_price = pool_prices.get((liq.debt_asset, pos.block_number))
            c_usd = (
                usd(
                    liq.liquidated_collateral_amount,
                    c_price,
                    self.tokens.decimals(liq.collateral_asset),
                )
                if c_price is not None
                else None
            )
            d_usd = (
                usd(liq.debt_to_cover, d_price, self.tokens.decimals(liq.debt_asset))
                if d_price is not None
                else None
            )
            match = matches.get(pos.key)
            recaptured, aave, chainlink = shares.get(pos.key, (None, None, None))
            batch.liquidations.append(
                (
                    chain_id,
                    pos.block_number,
                    pos.block_hash,
                    times[pos.block_number],
                    pos.tx_hash,
                    pos.tx_index,
                    pos.log_index,
                    pos.address,
                    liq.collateral_asset,
                    liq.debt_asset,
                    liq.user,
                    liq.liquidator,
                    liq.debt_to_cover,
                    liq.liquidated_collateral_amount,
                    liq.receive_atoken,
                    c_price,
                    d_price,
                    c_usd,
                    d_usd,
                    fees.get(pos.key),
                    match is not None,
                    match.aggregator if match else None,
                    match.round_id if match else None,
                    match.oracle_tx_hash if match else None,
                    recaptured,
                    aave,
                    chainlink,
                )
            )

        for update in updates:
            pos = update.pos
            batch.oracle_updates.append(
                (
                    chain_id,
                    pos.block_number,
                    pos.block_hash,
                    times[pos.block_number],
                    pos.tx_hash,
                    pos.tx_index,
                    pos.log_index,
                    pos.address,
                    update.kind,
                    update.route,
                    update.round_id,
                    update.answer,
                )
            )
        return batch

    async def _block_times(
        self, decoded: DecodedLogs, headers: dict[int, Header] | None
    ) -> dict[int, datetime]:
        times: dict[int, datetime] = {}
        needed: set[int] = set()
        positions = [liq.pos for liq in decoded.liquidations]
        positions += [u.pos for u in decoded.oracle_updates]
        positions += [r.pos for r in decoded.solver_results]
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
        self, decoded: DecodedLogs, matches: dict[tuple[str, int], SvrMatch]
    ) -> list[Payment]:
        liqs = decoded.liquidations
        payments = self.svr.atlas_payments(
            liqs, matches, decoded.oracle_updates, decoded.solver_results
        )
        numbers = sorted(self.svr.blocks_needing_transactions(liqs, matches))
        if numbers:
            answers = await self.client.batch(
                [("eth_getBlockByNumber", [hex(n), True]) for n in numbers], check=check_block
            )
            blocks = {}
            for number, block in zip(numbers, answers, strict=True):
                if isinstance(block, RpcError):
                    raise block
                if not isinstance(block, dict):
                    raise EndpointFault(f"{self.chain.name}: block {number} is null")
                blocks[number] = block
            payments += self.svr.mev_share_payments(liqs, matches, blocks)
        return payments

    def _recapture_row(
        self,
        p: Payment,
        times: dict[int, datetime],
        prices: dict[tuple[str, int], int | None],
    ) -> Row:
        when = times.get(p.block_number)
        if when is None:
            raise EndpointFault(f"no timestamp for block {p.block_number}")
        asset = p.token or self.chain.native_price_asset
        price = prices.get((asset, p.block_number)) if asset else None
        decimals = self.tokens.decimals(p.token) if p.token else 18
        amount_usd = usd(p.amount, price, decimals) if price is not None else None
        rule = self.chain.svr.split_at(when)
        aave, chainlink = self.svr.split(rule, amount_usd)
        ids = [f"{self.chain.chain_id}:{tx}:{idx}" for tx, idx in p.liquidation_keys]
        return (
            self.chain.chain_id,
            p.block_number,
            p.block_hash,
            when,
            p.tx_hash,
            p.source_index,
            p.recipient,
            p.token,
            p.amount,
            amount_usd,
            p.aggregator,
            ids,
            rule.aave_bps,
            aave,
            chainlink,
            rule.name,
        )
