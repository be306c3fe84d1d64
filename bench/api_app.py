"""The API as uvicorn's --factory target for the benchmark (several worker processes):
`uvicorn bench.api_app:app --factory --workers N`, database from DATABASE_URL."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from api.app import create_app


def app() -> Starlette:
    return create_app(
        os.environ["DATABASE_URL"],
        pool_min=int(os.environ.get("AAVE_API_POOL_MIN", "1")),
        pool_max=int(os.environ.get("AAVE_API_POOL_MAX", "10")),
    )
