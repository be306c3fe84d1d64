"""What every resolver is handed: the database and the cursor key of this app."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.dataloader import DataLoader

from api import queries
from api.db import Database
from api.queries import PriceAgeKey

if TYPE_CHECKING:
    from api.live import LiveFeed

#: (chain id, aggregator, round id) -> (block number, block time) of its public twin
TwinKey = tuple[int, str, int]
Twin = tuple[int, datetime] | None


@dataclass
class ApiContext:
    db: Database
    cursor_key: bytes
    request: Any = None
    response: Any = None
    live: LiveFeed | None = None
    _twins: DataLoader[TwinKey, Twin] | None = field(default=None, repr=False)
    _price_ages: DataLoader[PriceAgeKey, int | None] | None = field(default=None, repr=False)

    def twins(self) -> DataLoader[TwinKey, Twin]:
        """Per request: the public twins of the SVR rounds its liquidations followed, loaded
        in one query for all the rows that ask."""
        if self._twins is None:

            async def load(keys: list[TwinKey]) -> list[Twin]:
                rows = await self.db.fetch(queries.public_twins(keys))
                found = {
                    (r["chain_id"], r["aggregator"], r["round_id"]): (
                        int(r["block_number"]),
                        r["block_time"],
                    )
                    for r in rows
                }
                return [found.get(key) for key in keys]

            self._twins = DataLoader(load_fn=load)
        return self._twins

    def price_ages(self) -> DataLoader[PriceAgeKey, int | None]:
        """Per request: how many blocks before each asking liquidation its assets' indexed
        feeds last updated, in one query for all the rows that ask."""
        if self._price_ages is None:

            async def load(keys: list[PriceAgeKey]) -> list[int | None]:
                rows = await self.db.fetch(queries.blocks_since_price_update(keys))
                found = {int(r["ord"]): r["blocks"] for r in rows}
                return [found.get(i + 1) for i in range(len(keys))]

            self._price_ages = DataLoader(load_fn=load)
        return self._price_ages

    def forget(self) -> None:
        """Drop what was loaded: a WebSocket's context lives as long as the connection, and
        a twin unknown a minute ago may be known now."""
        self._twins = None
        self._price_ages = None


Info = strawberry.Info[ApiContext, None]
