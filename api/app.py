"""The ASGI application: / (the dashboard), /graphql (GraphiQL in a browser), /healthz,
/readyz, /metrics."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import strawberry
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from api import queries
from api.context import ApiContext
from api.dashboard import dashboard_routes
from api.db import Database
from api.errors import ApiError
from api.export import export_routes
from api.http_cache import CacheSettings, http_graphql
from api.limits import MAX_BODY_BYTES, MAX_QUERY_STRING_BYTES
from api.live import LiveFeed, LiveOptions
from api.metrics import ApiMetrics, MetricsMiddleware
from api.pagination import cursor_key
from api.schema import build_schema
from api.subscriptions import TransportHandler, serve_websocket, websocket_options

log = logging.getLogger("api")

READY_TIMEOUT_S = 3.0


class BodyTooLarge(Exception):
    """Raised from receive() when a request body passes the limit."""


def _json_error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message}]}, status_code=status)


class GraphQLView(GraphQL[ApiContext, None]):
    """Strawberry's ASGI view with our context, JSON error bodies and no stack traces;
    subscriptions over WebSocket when given the live feed (api.subscriptions)."""

    graphql_transport_ws_handler_class = TransportHandler

    def __init__(
        self,
        schema: strawberry.Schema,
        db: Database,
        key: bytes,
        live: LiveFeed | None = None,
        origins: Sequence[str] = (),
    ) -> None:
        ws = websocket_options(live.options, origins) if live is not None else {}
        super().__init__(schema, graphql_ide="graphiql", allow_queries_via_get=True, **ws)
        self.db = db
        self.key = key
        self.live = live

    async def get_context(self, request: Request | WebSocket, response: Any) -> ApiContext:
        live = self.live if isinstance(request, WebSocket) else None
        return ApiContext(
            db=self.db, cursor_key=self.key, request=request, response=response, live=live
        )

    def encode_json(self, data: object) -> bytes:
        """orjson: several times faster than the standard library on a page of results."""
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        try:
            value = json.loads(data)
        except RecursionError:
            raise HTTPException(400, "request JSON is nested too deeply") from None
        except ValueError:
            raise HTTPException(400, "unable to parse the request body as JSON") from None
        if not isinstance(value, dict):
            raise HTTPException(
                400, 'expected a JSON object such as {"query": "...", "variables": {...}}'
            )
        return value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and self.live is not None:
                await serve_websocket(self, self.live, scope, receive, send)
            elif scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        request = Request(scope, receive=receive)
        try:
            response = await self.run(request)
        except HTTPException as exc:
            response = _json_error(exc.reason, exc.status_code)
        except BodyTooLarge:
            raise
        except Exception:
            log.exception("unhandled error in the GraphQL view")
            response = _json_error("internal error", 500)
        await response(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses request bodies above `limit` bytes (413) and query strings above
    `query_limit` bytes (414)."""

    def __init__(
        self, app: ASGIApp, limit: int = MAX_BODY_BYTES, query_limit: int = MAX_QUERY_STRING_BYTES
    ) -> None:
        self.app = app
        self.limit = limit
        self.query_limit = query_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("query_string", b"")) > self.query_limit:
            response = _json_error(
                f"query string above {self.query_limit} bytes: send the query with POST", 414
            )
            await response(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await self._refuse(scope, receive, send)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _json_error(f"request body above {self.limit} bytes", 413)
        await response(scope, receive, send)


def create_app(
    dsn: str,
    *,
    cors_origins: Sequence[str] = (),
    statement_timeout_ms: int = 5000,
    pool_min: int = 1,
    pool_max: int = 10,
    cursor_secret: str | None = None,
    cache: CacheSettings | None = None,
    live: LiveOptions | None = None,
) -> Starlette:
    """Build the API. One asyncpg pool per process, opened on startup (lifespan).

    cursor_secret: HMAC key material for pagination cursors; defaults to the
    AAVE_API_CURSOR_SECRET environment variable (see api.pagination).
    cache: HTTP caching of /graphql (api.http_cache); the defaults when None. live: the
    limits of subscriptions (api.live.LiveOptions).
    """
    db = Database(
        dsn, statement_timeout_ms=statement_timeout_ms, pool_min=pool_min, pool_max=pool_max
    )
    metrics = ApiMetrics()
    feed = LiveFeed(db, live, metrics.registry)
    view = GraphQLView(build_schema(metrics), db, cursor_key(cursor_secret), feed, cors_origins)
    graphql = http_graphql(view, db, cache)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        return await readiness(db)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.start()
        try:
            yield
        finally:
            await feed.close()
            await db.close()

    middleware = [Middleware(MetricsMiddleware, metrics=metrics)]
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["content-type", "accept", "authorization"],
                max_age=600,
            )
        )
    middleware.append(Middleware(BodyLimitMiddleware, limit=MAX_BODY_BYTES))

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            *export_routes(db),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *dashboard_routes(),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.metrics = metrics
    app.state.graphql = graphql
    app.state.live = feed
    return app


async def readiness(db: Database) -> Response:
    """200 when the database answers and every chain's lag is known, else 503 + reason."""
    try:
        rows = await asyncio.wait_for(db.fetch(queries.chain_status()), timeout=READY_TIMEOUT_S)
    except ApiError as exc:
        return JSONResponse({"status": "unavailable", "reason": exc.message}, status_code=503)
    except TimeoutError:
        reason = f"the database did not answer within {READY_TIMEOUT_S:g} s"
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    if not rows:
        return JSONResponse(
            {"status": "unavailable", "reason": "chain_status is empty: no chain indexed yet"},
            status_code=503,
        )
    chains = []
    unknown = []
    for r in rows:
        lag = None
        if r["head_block"] is not None and r["indexed_block"] is not None:
            lag = max(r["head_block"] - r["indexed_block"], 0)
        else:
            unknown.append(r["name"])
        chains.append({"chainId": r["chain_id"], "name": r["name"], "lagBlocks": lag})
    if unknown:
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": "lag unknown (no head or indexed block yet) for: " + ", ".join(unknown),
                "chains": chains,
            },
            status_code=503,
        )
    return JSONResponse({"status": "ready", "chains": chains})
