"""Rows on their way from enrich/ to store/: named tuples whose fields are the columns of
schema.sql in order, so the writer can COPY them as they are (a named tuple is a tuple)
while every reader names the field it reads. The column lists are the fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple


class LiquidationRow(NamedTuple):
    chain_id: int
    block_number: int
    block_hash: str
    block_time: datetime
    tx_hash: str
    tx_index: int
    log_index: int
    pool: str
    market: str
    collateral_asset: str
    debt_asset: str
    user_address: str
    liquidator: str
    debt_to_cover: int
    liquidated_collateral_amount: int
    receive_atoken: bool
    collateral_price: int | None
    debt_price: int | None
    collateral_usd: Decimal | None
    debt_usd: Decimal | None
    protocol_fee_amount: int | None
    is_svr: bool
    svr_aggregator: str | None
    svr_round_id: int | None
    svr_oracle_tx_hash: str | None
    svr_recaptured_usd: Decimal | None
    svr_aave_usd: Decimal | None
    svr_chainlink_usd: Decimal | None
    svr_bid_count: int | None
    svr_best_losing_bid_usd: Decimal | None
    bonus_usd: Decimal | None
    protocol_fee_usd: Decimal | None
    collateral_seized_usd: Decimal | None
    closed_fully: bool | None
    #: what the prices are as of: "block", "position" or "block_unsure" (enrich/position.py)
    price_basis: str | None = None


class OracleUpdateRow(NamedTuple):
    chain_id: int
    block_number: int
    block_hash: str
    block_time: datetime
    tx_hash: str
    tx_index: int
    log_index: int
    aggregator: str
    kind: str
    route: str | None
    round_id: int | None
    answer: int | None
    transmitter: str | None
    observations_timestamp: int | None
    epoch_and_round: int | None
    config_digest: str | None
    sold: bool | None


class RecaptureRow(NamedTuple):
    chain_id: int
    block_number: int
    block_hash: str
    block_time: datetime
    tx_hash: str
    source_index: int
    recipient: str
    token: str | None
    amount: int
    amount_usd: Decimal | None
    aggregator: str | None
    market: str | None
    liquidation_ids: list[str]
    aave_bps: int
    aave_usd: Decimal | None
    chainlink_usd: Decimal | None
    split_rule: str


class AssetSourceRow(NamedTuple):
    """An AssetSourceUpdated of a market's oracle and what was found behind the source."""

    chain_id: int
    market: str
    oracle: str
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    asset: str
    source: str
    aggregator: str | None
    is_svr: bool
    type_and_version: str | None


class DeficitRow(NamedTuple):
    """A DeficitCreated / DeficitCovered of a V3.3+ pool, valued at its block."""

    chain_id: int
    block_number: int
    block_hash: str
    block_time: datetime
    tx_hash: str
    tx_index: int
    log_index: int
    pool: str
    market: str
    kind: str
    user_address: str | None
    asset: str
    amount: int
    caller: str | None
    price: int | None
    usd: Decimal | None
    liquidation_log_index: int | None


class AssetRow(NamedTuple):
    chain_id: int
    address: str
    symbol: str
    decimals: int


class BlockRow(NamedTuple):
    chain_id: int
    block_number: int
    block_hash: str
    parent_hash: str
    block_time: datetime


LIQUIDATION_COLUMNS = LiquidationRow._fields
ORACLE_UPDATE_COLUMNS = OracleUpdateRow._fields
RECAPTURE_COLUMNS = RecaptureRow._fields
ASSET_SOURCE_COLUMNS = AssetSourceRow._fields
ASSET_COLUMNS = AssetRow._fields
BLOCK_COLUMNS = BlockRow._fields
DEFICIT_COLUMNS = DeficitRow._fields


@dataclass(slots=True)
class Batch:
    """Everything one transaction writes for blocks (first_block..last_block] of a chain."""

    chain_id: int
    first_block: int
    last_block: int
    last_block_hash: str | None = None
    liquidations: list[LiquidationRow] = field(default_factory=list)
    oracle_updates: list[OracleUpdateRow] = field(default_factory=list)
    recaptures: list[RecaptureRow] = field(default_factory=list)
    assets: list[AssetRow] = field(default_factory=list)
    blocks: list[BlockRow] = field(default_factory=list)
    asset_sources: list[AssetSourceRow] = field(default_factory=list)
    deficits: list[DeficitRow] = field(default_factory=list)

    @property
    def events(self) -> int:
        return (
            len(self.liquidations)
            + len(self.oracle_updates)
            + len(self.recaptures)
            + len(self.deficits)
        )

    def event_blocks(self) -> list[tuple[int, str]]:
        """(block number, block hash) of every event row, to check them against headers."""
        rows: list[LiquidationRow | OracleUpdateRow | RecaptureRow | AssetSourceRow | DeficitRow]
        rows = [
            *self.liquidations,
            *self.oracle_updates,
            *self.recaptures,
            *self.asset_sources,
            *self.deficits,
        ]
        return [(row.block_number, row.block_hash) for row in rows]

    def extend(self, other: Batch) -> None:
        """Append a following batch (merging small ranges into one transaction)."""
        self.last_block = other.last_block
        self.last_block_hash = other.last_block_hash
        self.liquidations.extend(other.liquidations)
        self.oracle_updates.extend(other.oracle_updates)
        self.recaptures.extend(other.recaptures)
        self.assets.extend(other.assets)
        self.blocks.extend(other.blocks)
        self.asset_sources.extend(other.asset_sources)
        self.deficits.extend(other.deficits)
