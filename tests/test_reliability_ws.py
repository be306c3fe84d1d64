"""Hostile WebSockets against the real server (api.server.run, a subprocess): thousands of
idle connections, subscription floods, malformed and unknown messages, connections that
never initialise, a lost listening connection. Afterwards the server is up, serves HTTP
queries, and still pushes new rows."""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from indexer.store import writer
from tests.reliability_support import publish, scaled
from tests.test_store import CHAIN, make_batch
from tests.ws_support import PROTOCOL, RawWs, Server, WsClient, api_server, close_code, metric
from tests.ws_support import wait_metric as wait_for_metric

MAX_SUBSCRIPTIONS = 20
INIT_TIMEOUT_S = 1.0
SUB = "subscription { liquidationAdded { id blockNumber } }"
STATUS_Q = "{ indexerStatus { chainId } }"


def raise_fd_limit() -> int:
    """The soft limit of open files raised to the hard one (the server inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# As many idle WebSockets as the file-descriptor limit leaves room for, at most 10,000:
# each costs one descriptor here and one in the server.
FD_LIMIT = raise_fd_limit()
IDLE = min(scaled("RELIABILITY_IDLE_WEBSOCKETS", 10_000), FD_LIMIT - 1000)


@pytest.fixture(scope="module")
def server(db_dsn: str) -> Iterator[Server]:
    with api_server(
        db_dsn,
        AAVE_API_MAX_WEBSOCKETS=str(IDLE + 2),
        AAVE_API_MAX_SUBSCRIPTIONS=str(MAX_SUBSCRIPTIONS),
        AAVE_API_WS_INIT_TIMEOUT_S=str(INIT_TIMEOUT_S),
    ) as srv:
        yield srv


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def db(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db_dsn)
    await writer.prepare(conn)
    await writer.start_checkpoint(conn, CHAIN, 99)
    try:
        yield conn
    finally:
        await conn.close()


class Blocks:
    """The next blocks to write (the module's tests share one chain)."""

    next = 100


async def write_one(db: asyncpg.Connection) -> int:
    """One block of two liquidations, committed; returns its number."""
    block = Blocks.next
    await writer.write_batch(db, make_batch(block, block), "arbitrum")
    Blocks.next += 1
    return block


async def still_pushes(server: Server, http: httpx.AsyncClient, db: asyncpg.Connection) -> float:
    """A new subscriber receives a new block's rows; the seconds from commit to the last."""
    client = await WsClient.open(server.ws_url)
    try:
        before = await metric(http, "aave_api_subscriptions_active", kind="liquidations")
        await client.subscribe("1", SUB)
        await wait_for_metric(
            http, "aave_api_subscriptions_active", before + 1, kind="liquidations"
        )
        block = await write_one(db)
        committed = time.monotonic()
        for _ in range(2):
            message = await client.recv(timeout=5)
            assert message["payload"]["data"]["liquidationAdded"]["blockNumber"] == block
        return time.monotonic() - committed
    finally:
        await client.close()


async def serves_http(http: httpx.AsyncClient) -> float:
    """A GraphQL query over HTTP answers; its seconds."""
    started = time.monotonic()
    response = await http.post("/graphql", json={"query": STATUS_Q})
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    assert (await http.get("/healthz")).status_code == 200
    return time.monotonic() - started


def no_tracebacks(server: Server) -> None:
    log = server.log_text()
    assert "Traceback" not in log and "Exception in" not in log, log[-3000:]


async def test_idle_websockets_leave_http_and_push_working(
    server: Server, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    rss_before = server.rss_kib()
    cpu_before = server.cpu_s()
    gate = asyncio.Semaphore(64)

    async def idle() -> WsClient:
        async with gate:
            return await WsClient.open(server.ws_url, open_timeout=60, max_queue=1)

    started = time.monotonic()
    clients = await asyncio.gather(*(idle() for _ in range(IDLE)))
    opened_s = time.monotonic() - started
    try:
        await wait_for_metric(http, "aave_api_websockets_open", IDLE)
        rss_open = server.rss_kib()
        http_s = max([await serves_http(http) for _ in range(20)])
        push_s = await still_pushes(server, http, db)
        await wait_for_metric(http, "aave_api_websockets_open", IDLE)
        # The cap is IDLE + 2: two more fit, the next one is closed at once.
        extra = [await WsClient.open(server.ws_url) for _ in range(2)]
        over = await WsClient.open(server.ws_url, init=False)
        code, reason = await close_code(over)
        assert (code, "WebSockets open here" in reason) == (1013, True), (code, reason)
        for c in extra:
            await c.close()
        assert await metric(http, "aave_api_websockets_refused_total") == 1
    finally:
        closing = time.monotonic()
        await asyncio.gather(*(c.close() for c in clients))
        closed_s = time.monotonic() - closing
    # closing 10,000 takes a while on a loaded machine: the server's count follows
    await wait_for_metric(http, "aave_api_websockets_open", 0, timeout=240)
    figures = {
        "idle_websockets": IDLE,
        "fd_limit": FD_LIMIT,
        "opened_s": round(opened_s, 1),
        "closed_s": round(closed_s, 1),
        "server_rss_mib_before": round(rss_before / 1024, 1),
        "server_rss_mib_open": round(rss_open / 1024, 1),
        "kib_per_websocket": round((rss_open - rss_before) / IDLE, 1),
        "server_cpu_s": round(server.cpu_s() - cpu_before, 1),
        "http_query_max_s": round(http_s, 3),
        "push_latency_s": round(push_s, 3),
    }
    publish("ws.idle", **figures)
    assert http_s < 1.0 and push_s < 1.0, figures
    no_tracebacks(server)


async def test_a_subscription_flood_is_capped_per_connection(
    server: Server, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    flood = scaled("RELIABILITY_WS_FLOOD", 2000)
    client = await WsClient.open(server.ws_url)
    try:
        started = time.monotonic()
        for i in range(flood):
            await client.subscribe(str(i), SUB)
        errors: list[dict[str, Any]] = []
        while len(errors) < flood - MAX_SUBSCRIPTIONS:
            message = await client.recv(timeout=10)
            assert message["type"] == "error", message
            errors.append(message)
        flood_s = time.monotonic() - started
        assert {e["id"] for e in errors} == {str(i) for i in range(MAX_SUBSCRIPTIONS, flood)}
        assert {e["payload"][0]["message"] for e in errors} == {
            f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection: complete one first, "
            "or open another connection"
        }
        assert {e["payload"][0]["extensions"]["code"] for e in errors} == {"LIMIT_EXCEEDED"}
        await wait_for_metric(
            http, "aave_api_subscriptions_active", MAX_SUBSCRIPTIONS, kind="liquidations"
        )
        # The twenty still get every row, once.
        block = await write_one(db)
        got = [await client.recv() for _ in range(2 * MAX_SUBSCRIPTIONS)]
        assert Counter(m["id"] for m in got) == {str(i): 2 for i in range(MAX_SUBSCRIPTIONS)}
        assert {m["payload"]["data"]["liquidationAdded"]["blockNumber"] for m in got} == {block}
        # Completing one frees a place.
        await client.send({"id": "0", "type": "complete"})
        await wait_for_metric(
            http, "aave_api_subscriptions_active", MAX_SUBSCRIPTIONS - 1, kind="liquidations"
        )
        await client.subscribe("again", SUB)
        await wait_for_metric(
            http, "aave_api_subscriptions_active", MAX_SUBSCRIPTIONS, kind="liquidations"
        )
        # Reusing a live id ends the connection (the protocol's rule).
        await client.subscribe("again", SUB)
        assert (await close_code(client))[0] == 4409
    finally:
        await client.close()
    await wait_for_metric(http, "aave_api_subscriptions_active", 0, kind="liquidations")
    publish(
        "ws.flood", subscribe_messages=flood, accepted=MAX_SUBSCRIPTIONS, seconds=round(flood_s, 2)
    )
    assert await serves_http(http) < 1.0
    no_tracebacks(server)


def _subscribe(payload: object, op_id: object = "1") -> dict[str, object]:
    return {"type": "subscribe", "id": op_id, "payload": payload}


def _added(args: str, selection: str = "id") -> str:
    return f"subscription {{ liquidationAdded{args} {{ {selection} }} }}"


#: (what is sent after connection_init, the close code the server answers with)
MALFORMED: list[tuple[str, Any, int]] = [
    ("not JSON", "{nope", 4400),
    ("a JSON array", [1, 2], 4400),
    ("a JSON string", "just text", 4400),
    ("an unknown type", {"type": "bogus"}, 4400),
    ("no type", {"id": "1"}, 4400),
    ("a list as id", _subscribe({"query": SUB}, ["1"]), 4400),
    ("an empty id", _subscribe({"query": SUB}, ""), 4400),
    ("a 200-character id", _subscribe({"query": SUB}, "x" * 200), 4400),
    ("a string payload", _subscribe("q"), 4400),
    ("no payload", {"type": "subscribe", "id": "1"}, 4400),
    ("a number as query", _subscribe({"query": 5}), 4400),
    ("a list as variables", _subscribe({"query": SUB, "variables": [1]}), 4400),
    ("an object as id of complete", {"type": "complete", "id": {}}, 4400),
    ("a second connection_init", {"type": "connection_init"}, 4429),
]

#: (what is subscribed, a piece of the error message the server answers with); the
#: connection stays open.
REFUSED: list[tuple[str, str, str]] = [
    ("a syntax error", "subscription {", "Syntax Error"),
    ("an unknown field", "subscription { liquidationGone { id } }", "Cannot query field"),
    ("an unknown argument", _added("(first: 5)"), "Unknown argument"),
    ("a bad address", _added('(filter: {user: "0x1"})'), "invalid address"),
    ("a bad range", _added("(filter: {blockFrom: 5, blockTo: 1})"), "blockFrom must be"),
    (
        "two root fields",
        "subscription { a: liquidationAdded { id } b: liquidationRemoved { id } }",
        "only one top level field",
    ),
    ("an alias flood", _added("", " ".join(f"a{i}: id" for i in range(16))), "16 aliases"),
    ("a token flood", _added("", "id " * 3000), "3000 tokens"),
    ("a query", STATUS_Q, ""),
]


async def test_malformed_messages_close_only_their_connection(
    server: Server, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    results = {}
    for name, message, want in MALFORMED:
        client = await WsClient.open(server.ws_url)
        raw = message if isinstance(message, str) and name != "a JSON string" else None
        await client.ws.send(raw if raw is not None else json.dumps(message))
        results[name] = await close_code(client)
        assert results[name][0] == want, (name, results[name])
    # A binary frame, a subscribe before connection_init, an oversized message.
    client = await WsClient.open(server.ws_url)
    await client.ws.send(b"\x00\x01")
    assert (await close_code(client))[0] == 4400
    client = await WsClient.open(server.ws_url, init=False)
    await client.subscribe("1", SUB)
    assert (await close_code(client))[0] == 4401
    client = await WsClient.open(server.ws_url)
    await client.subscribe("1", "subscription { liquidationAdded { id " + " " * 70_000 + "} }")
    assert (await close_code(client))[0] == 1009  # above 64 KiB, as an HTTP body
    for name, query, piece in REFUSED:
        client = await WsClient.open(server.ws_url)
        await client.subscribe("1", query)
        answer = await client.recv()
        if name == "a query":
            assert answer["type"] == "next"
            assert isinstance(answer["payload"]["data"]["indexerStatus"], list)
            assert (await client.recv())["type"] == "complete"
        else:
            assert answer["type"] in ("error", "next"), (name, answer)
            errors = answer["payload"] if answer["type"] == "error" else answer["payload"]["errors"]
            assert piece in errors[0]["message"], (name, errors)
        # still open and serving (after the operation's `complete`, if it had one)
        await client.send({"type": "ping"})
        reply = await client.recv()
        if reply == {"id": "1", "type": "complete"}:
            reply = await client.recv()
        assert reply == {"type": "pong"}, (name, reply)
        await client.close()
    # Another subprotocol, or none, is refused; so is a handshake from a foreign page.
    for protocols in (["graphql-ws"], None):
        ws = await connect(server.ws_url, subprotocols=protocols)  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4406
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            server.ws_url,
            subprotocols=[PROTOCOL],  # type: ignore[list-item]
            additional_headers={"Origin": "https://evil.example"},
        )
    assert refused.value.response.status_code == 403
    publish("ws.malformed", closed=len(MALFORMED) + 3, refused=len(REFUSED) + 3)
    assert await serves_http(http) < 1.0
    assert await still_pushes(server, http, db) < 1.0
    no_tracebacks(server)


async def test_connections_that_never_initialise_are_closed(
    server: Server, http: httpx.AsyncClient
) -> None:
    n = 200
    gate = asyncio.Semaphore(50)

    async def uninitialised() -> tuple[int | None, str]:
        """The close code the server sent; on a loaded machine the timeout may already
        have closed the connection while the client was still opening it."""
        async with gate:
            try:
                client = await WsClient.open(server.ws_url, init=False, open_timeout=30)
            except ConnectionClosed as closed:
                received = closed.rcvd
                return (received.code, received.reason) if received else (None, "")
        return await close_code(client, timeout=INIT_TIMEOUT_S + 10)

    started = time.monotonic()
    codes = await asyncio.gather(*(uninitialised() for _ in range(n)))
    closed_s = time.monotonic() - started
    assert {c for c, _ in codes} == {4408}
    await wait_for_metric(http, "aave_api_websockets_open", 0)
    publish(
        "ws.init_timeout", connections=n, timeout_s=INIT_TIMEOUT_S, all_closed_s=round(closed_s, 2)
    )
    assert closed_s < INIT_TIMEOUT_S + 5
    assert await serves_http(http) < 1.0


async def test_a_lost_listener_ends_subscriptions_loudly_and_comes_back(
    server: Server, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    client = await WsClient.open(server.ws_url)
    try:
        await client.subscribe("1", SUB)
        await wait_for_metric(http, "aave_api_subscriptions_active", 1, kind="liquidations")
        killed = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'aave-svr-indexer-api-live'"
        )
        assert killed == 1
        message = await client.recv(timeout=10)
        assert message["type"] == "next" and "may have missed rows" in str(message), message
        assert (await client.recv())["type"] == "complete"
        await wait_for_metric(http, "aave_api_live_listening", 1, timeout=20)
        assert await metric(http, "aave_api_subscriptions_dropped_total", reason="lost") >= 1
    finally:
        await client.close()
    assert await still_pushes(server, http, db) < 1.0
    no_tracebacks(server)


async def test_half_open_client_does_not_hold_the_feed(
    server: Server, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """A client that subscribed, then neither reads nor closes: the feed goes on for others."""
    raw = await RawWs.open(server.ws_url)
    try:
        await raw.send({"id": "1", "type": "subscribe", "payload": {"query": SUB}})
        await wait_for_metric(http, "aave_api_subscriptions_active", 1, kind="liquidations")
        for _ in range(5):
            assert await still_pushes(server, http, db) < 1.0
    finally:
        raw.close()
    with pytest.raises(InvalidStatus):  # a plain GET is no WebSocket
        await connect(server.url.replace("http", "ws") + "/healthz")
