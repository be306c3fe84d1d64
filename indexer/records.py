"""Rows on their way from enrich/ to store/: tuples in the column order of schema.sql,
so the writer can COPY them without another pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LIQUIDATION_COLUMNS = (
    "chain_id",
    "block_number",
    "block_hash",
    "block_time",
    "tx_hash",
    "tx_index",
    "log_index",
    "pool",
    "collateral_asset",
    "debt_asset",
    "user_address",
    "liquidator",
    "debt_to_cover",
    "liquidated_collateral_amount",
    "receive_atoken",
    "collateral_price",
    "debt_price",
    "collateral_usd",
    "debt_usd",
    "protocol_fee_amount",
    "is_svr",
    "svr_aggregator",
    "svr_round_id",
    "svr_oracle_tx_hash",
    "svr_recaptured_usd",
    "svr_aave_usd",
    "svr_chainlink_usd",
)
ORACLE_UPDATE_COLUMNS = (
    "chain_id",
    "block_number",
    "block_hash",
    "block_time",
    "tx_hash",
    "tx_index",
    "log_index",
    "aggregator",
    "kind",
    "route",
    "round_id",
    "answer",
)
RECAPTURE_COLUMNS = (
    "chain_id",
    "block_number",
    "block_hash",
    "block_time",
    "tx_hash",
    "source_index",
    "recipient",
    "token",
    "amount",
    "amount_usd",
    "aggregator",
    "liquidation_ids",
    "aave_bps",
    "aave_usd",
    "chainlink_usd",
    "split_rule",
)
ASSET_COLUMNS = ("chain_id", "address", "symbol", "decimals")
BLOCK_COLUMNS = ("chain_id", "block_number", "block_hash", "parent_hash", "block_time")

Row = tuple[Any, ...]


@dataclass(slots=True)
class Batch:
    """Everything one transaction writes for blocks (first_block..last_block] of a chain."""

    chain_id: int
    first_block: int
    last_block: int
    last_block_hash: str | None = None
    liquidations: list[Row] = field(default_factory=list)
    oracle_updates: list[Row] = field(default_factory=list)
    recaptures: list[Row] = field(default_factory=list)
    assets: list[Row] = field(default_factory=list)
    blocks: list[Row] = field(default_factory=list)

    @property
    def events(self) -> int:
        return len(self.liquidations) + len(self.oracle_updates) + len(self.recaptures)

    def extend(self, other: Batch) -> None:
        """Append a following batch (merging small ranges into one transaction)."""
        self.last_block = other.last_block
        self.last_block_hash = other.last_block_hash
        self.liquidations.extend(other.liquidations)
        self.oracle_updates.extend(other.oracle_updates)
        self.recaptures.extend(other.recaptures)
        self.assets.extend(other.assets)
        self.blocks.extend(other.blocks)
