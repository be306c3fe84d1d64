"""Runs the API under uvicorn (called by `aave-indexer serve`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import uvicorn

from api.app import create_app
from api.limits import MAX_BODY_BYTES
from api.live import LiveOptions


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def run(host: str, port: int, dsn: str, cors_origins: Sequence[str]) -> None:
    """Serve the GraphQL API on host:port until interrupted.

    Optional tuning from the environment: AAVE_API_STATEMENT_TIMEOUT_MS (5000),
    AAVE_API_POOL_MIN (1), AAVE_API_POOL_MAX (10), AAVE_API_CURSOR_SECRET (share it between
    processes behind one load balancer so that their cursors are interchangeable), and the
    limits of subscriptions (api.live.LiveOptions.from_env).

    uvicorn counts every open connection, WebSockets included, against limit_concurrency
    before it answers 503: the WebSockets get their own share on top of the 512 for HTTP.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    live = LiveOptions.from_env()
    app = create_app(
        dsn,
        cors_origins=tuple(cors_origins),
        statement_timeout_ms=_int_env("AAVE_API_STATEMENT_TIMEOUT_MS", 5000),
        pool_min=_int_env("AAVE_API_POOL_MIN", 1),
        pool_max=_int_env("AAVE_API_POOL_MAX", 10),
        live=live,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        proxy_headers=True,
        server_header=False,
        limit_concurrency=512 + live.max_websockets,
        ws_max_size=MAX_BODY_BYTES,
        timeout_keep_alive=5,
        log_config=None,
    )
    uvicorn.Server(config).run()
