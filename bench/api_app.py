"""The API as uvicorn's --factory target for the benchmark (several worker processes):
`uvicorn bench.api_app:app --factory --workers N`, database from DATABASE_URL.
BENCH_API_ANSWER_CACHE=0 turns the in-process answer cache off, so every request runs its
query (the "cold" figures)."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from api.app import create_app
from api.http_cache import CacheSettings


def app() -> Starlette:
    cache = CacheSettings()
    if os.environ.get("BENCH_API_ANSWER_CACHE", "1") == "0":
        cache = CacheSettings(max_entries=0)
    return create_app(
        os.environ["DATABASE_URL"],
        pool_min=int(os.environ.get("AAVE_API_POOL_MIN", "1")),
        pool_max=int(os.environ.get("AAVE_API_POOL_MAX", "10")),
        cache=cache,
    )
