"""What every resolver is handed: the database and the cursor key of this app."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.dataloader import DataLoader

from api import queries
from api.db import Database

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

    def forget(self) -> None:
        """Drop what was loaded: a WebSocket's context lives as long as the connection, and
        a twin unknown a minute ago may be known now."""
        self._twins = None


Info = strawberry.Info[ApiContext, None]
