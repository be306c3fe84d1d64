"""Runs the API under uvicorn (called by `aave-indexer serve`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import uvicorn

from api.app import create_app


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def run(host: str, port: int, dsn: str, cors_origins: Sequence[str]) -> None:
    """Serve the GraphQL API on host:port until interrupted.

    Optional tuning from the environment: AAVE_API_STATEMENT_TIMEOUT_MS (5000),
    AAVE_API_POOL_MIN (1), AAVE_API_POOL_MAX (10), AAVE_API_CURSOR_SECRET (share it between
    processes behind one load balancer so that their cursors are interchangeable).
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    app = create_app(
        dsn,
        cors_origins=tuple(cors_origins),
        statement_timeout_ms=_int_env("AAVE_API_STATEMENT_TIMEOUT_MS", 5000),
        pool_min=_int_env("AAVE_API_POOL_MIN", 1),
        pool_max=_int_env("AAVE_API_POOL_MAX", 10),
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        proxy_headers=True,
        server_header=False,
        limit_concurrency=512,
        timeout_keep_alive=5,
        log_config=None,
    )
    uvicorn.Server(config).run()
