"""What every resolver is handed: the database and the cursor key of this app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import strawberry

from api.db import Database


@dataclass
class ApiContext:
    db: Database
    cursor_key: bytes
    request: Any = None
    response: Any = None


Info = strawberry.Info[ApiContext, None]
