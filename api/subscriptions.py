"""The root Subscription and the WebSocket it is served over (graphql-transport-ws only).

Each field is a subscriber of the process's one live feed (api.live): it validates its
filter as the queries do, then yields the feed's shared objects that pass it. The
WebSocket side adds what the feed cannot see: a cap on WebSockets per process (past it a
new one is closed with 1013), a cap on subscriptions per WebSocket (an `error` message
naming it), malformed protocol messages refused with 4400 instead of failing the task, and
the close (4429) of a WebSocket whose subscriber the feed dropped as too slow.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache, partial
from typing import Any

import strawberry
from cross_web import HTTPException
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import SchemaExtension
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message,
    SubscribeMessage,
)

from api.context import ApiContext, Info
from api.enums import Chain
from api.errors import LIMIT_EXCEEDED, ApiError
from api.inputs import LiquidationFilter, liquidation_where, selected_chain_ids, selected_markets
from api.limits import MAX_TOKENS
from api.live import Connection, Kind, LiveFeed, LiveOptions, Matcher, liquidation_matches
from api.scalars import Address
from api.types import Liquidation, LiquidationRemoval, SvrRecapture

#: Where a WebSocket's Connection is kept in its ASGI scope, for its subscriptions to find.
CONNECTION_KEY = "aave.live.connection"
MAX_OPERATION_ID_CHARS = 128


@strawberry.input(description="All given conditions must hold.")
class SvrRecaptureFilter:
    chains: list[Chain] | None = strawberry.field(default=None, description="Any of these.")
    chain_ids: list[int] | None = None
    markets: list[str] | None = strawberry.field(
        default=None,
        description="Any of these markets (a recapture that belongs to no liquidation has "
        "none, so it is left out).",
    )
    aggregator: Address | None = None


@dataclass(frozen=True)
class RecaptureWhere:
    chain_ids: tuple[int, ...] | None = None
    markets: tuple[str, ...] | None = None
    aggregator: str | None = None


def recapture_where(f: SvrRecaptureFilter | None) -> RecaptureWhere:
    if f is None:
        return RecaptureWhere()
    return RecaptureWhere(
        chain_ids=selected_chain_ids(f.chains, f.chain_ids),
        markets=selected_markets(f.markets),
        aggregator=f.aggregator,
    )


def recapture_matches(w: RecaptureWhere, r: Any) -> bool:
    return (
        (w.chain_ids is None or r["chain_id"] in w.chain_ids)
        and (w.markets is None or r["market"] in w.markets)
        and (w.aggregator is None or r["aggregator"] == w.aggregator)
    )


async def _stream(info: Info, kind: Kind, matches: Matcher) -> AsyncGenerator[Any, None]:
    """The feed's objects of `kind` that pass `matches`, until the feed ends the
    subscription (with an error) or the client completes it."""
    ctx = info.context
    if ctx.live is None:
        raise ApiError("subscriptions are served over WebSocket (graphql-transport-ws) at /graphql")
    connection = ctx.request.scope.get(CONNECTION_KEY) if ctx.request is not None else None
    sub = await ctx.live.subscribe(kind, matches, connection)
    try:
        while True:
            for item in await sub.next_batch():
                yield item
            ctx.forget()
    finally:
        ctx.live.unsubscribe(sub)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Each liquidation matching the filter, once, as soon as the indexer "
        "commits it (in chain order per chain). Not final: a reorg may remove it later "
        "(liquidationRemoved)."
    )
    async def liquidation_added(
        self, info: Info, filter: LiquidationFilter | None = None
    ) -> AsyncGenerator[Liquidation, None]:
        where = liquidation_where(filter)
        async for item in _stream(info, Kind.LIQUIDATIONS, partial(liquidation_matches, where)):
            yield item

    @strawberry.subscription(
        description="Each liquidation matching the filter that a reorg rollback deletes, once, "
        "as the rollback commits: it was committed before, so a query or liquidationAdded may "
        "have shown it. `finalized: true` matches none (a removed row was never final)."
    )
    async def liquidation_removed(
        self, info: Info, filter: LiquidationFilter | None = None
    ) -> AsyncGenerator[LiquidationRemoval, None]:
        where = liquidation_where(filter)
        async for item in _stream(info, Kind.RETRACTIONS, partial(liquidation_matches, where)):
            yield item

    @strawberry.subscription(
        description="Each SVR recapture matching the filter, once, as soon as the indexer "
        "commits it."
    )
    async def svr_recapture_added(
        self, info: Info, filter: SvrRecaptureFilter | None = None
    ) -> AsyncGenerator[SvrRecapture, None]:
        where = recapture_where(filter)
        async for item in _stream(info, Kind.RECAPTURES, partial(recapture_matches, where)):
            yield item


class SubscriptionsOverWebSocket(SchemaExtension):
    """Refuses a subscription sent as an HTTP request with a message: Strawberry would run
    it as a query, whose field then fails as an internal error."""

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.pre_execution_errors is None and ctx.graphql_document is not None:
            is_sub = any(
                isinstance(d, OperationDefinitionNode) and d.operation is OperationType.SUBSCRIPTION
                for d in ctx.graphql_document.definitions
            )
            if is_sub and getattr(ctx.context, "live", None) is None:
                ctx.pre_execution_errors = [
                    GraphQLError(
                        "subscriptions are served over WebSocket (graphql-transport-ws) at "
                        "/graphql, not over HTTP",
                        extensions={"code": "BAD_USER_INPUT"},
                    )
                ]
        yield


def _well_formed(message: Any) -> bool:
    """A subscribe or complete message whose fields Strawberry can use as they are."""
    op_id = message.get("id")
    if not isinstance(op_id, str) or not 0 < len(op_id) <= MAX_OPERATION_ID_CHARS:
        return False
    if message.get("type") == "complete":
        return True
    payload = message.get("payload")
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("query"), str)
        and isinstance(payload.get("variables") or {}, dict)
        and isinstance(payload.get("operationName") or "", str)
    )


class TransportHandler(BaseGraphQLTransportWSHandler[ApiContext, None]):
    """Strawberry's graphql-transport-ws handler, with a cap message that says what to do and
    malformed messages refused with 4400 (a list where an id belongs would otherwise end the
    connection's task with an exception)."""

    async def handle(self) -> None:
        try:
            await super().handle()
        except HTTPException as exc:  # api.app's decode_json: not a JSON object
            with suppress(RuntimeError):
                await self.websocket.close(4400, exc.reason[:100])

    async def handle_message(self, message: Message) -> None:
        if message.get("type") in ("subscribe", "complete") and not _well_formed(message):
            await self.handle_invalid_message(f"invalid {message['type']} message")
            return
        await super().handle_message(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        cap = self.max_subscriptions_per_connection
        if self.connection_acknowledged and message["id"] not in self.operations:
            error = None
            if cap is not None and len(self.operations) >= cap:
                error = GraphQLError(
                    f"at most {cap} subscriptions per connection: complete one first, or "
                    "open another connection",
                    extensions={"code": LIMIT_EXCEEDED},
                )
            else:
                error = _syntax_error(message["payload"]["query"])
            if error is not None:
                await self.send_message(
                    {"id": message["id"], "type": "error", "payload": [error.formatted]}
                )
                return
        await super().handle_subscribe(message)


@lru_cache(maxsize=256)
def _syntax_error(query: str) -> GraphQLError | None:
    """The document's syntax error (or token excess), answered as an `error` message: over
    a WebSocket, Strawberry's parser extensions would raise it out of the operation's task
    (logged as a crash, and the client told nothing but `complete`)."""
    try:
        parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        return exc
    return None


def websocket_options(options: LiveOptions, origins: Sequence[str]) -> dict[str, Any]:
    """The Strawberry view's WebSocket settings: graphql-transport-ws only, the init
    timeout, the subscription cap, and the CORS origins as the pages allowed to connect."""
    return {
        "subscription_protocols": (GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        "connection_init_wait_timeout": timedelta(seconds=options.init_timeout_s),
        "max_subscriptions_per_connection": options.max_subscriptions,
        "allowed_origins": tuple(origins),
    }


async def serve_websocket(
    view: GraphQL[ApiContext, None], live: LiveFeed, scope: Scope, receive: Receive, send: Send
) -> None:
    """One WebSocket, from the handshake to its close, within the process's cap; closed
    with the feed's code when the feed drops it."""
    ws = WebSocket(scope, receive=receive, send=send)
    if not live.claim_websocket():
        await ws.accept(subprotocol=await view.pick_websocket_subprotocol(ws))
        await ws.close(1013, f"{live.options.max_websockets} WebSockets open here; try later")
        return
    connection = Connection()
    scope[CONNECTION_KEY] = connection
    run = asyncio.create_task(view.run(ws))
    run.add_done_callback(lambda t: t.cancelled() or t.exception())
    dropped = asyncio.create_task(connection.dropped.wait())
    try:
        await asyncio.wait({run, dropped}, return_when=asyncio.FIRST_COMPLETED)
        if run.done():
            await run
            return
        # Dropped: end the operations first (nothing more is sent), then the close frame,
        # which a client that does not read may never take.
        run.cancel()
        await asyncio.wait({run}, timeout=live.options.close_timeout_s)
        with suppress(Exception):
            await asyncio.wait_for(
                ws.close(connection.code, connection.reason), live.options.close_timeout_s
            )
    finally:
        run.cancel()
        dropped.cancel()
        live.release_websocket()
