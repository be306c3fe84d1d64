"""Subscriptions end to end: the real writer and rollback commit, PostgreSQL notifies, the
API server (api.server.run, a subprocess) pushes over a real WebSocket. Every row once,
filters as the queries apply them, retractions after a rollback, latency, slow clients."""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from api.live import SLOW_CLOSE_CODE
from indexer.records import Batch, BlockRow, LiquidationRow, RecaptureRow
from indexer.store import rollback, writer
from tests.reliability_support import publish
from tests.test_store import CHAIN, make_batch
from tests.ws_support import RawWs, Server, WsClient, api_server, metric, wait_metric

QUEUE = 8  # the server's per-subscriber queue, small so that a slow client fills it soon
KINDS = ("liquidations", "svr_recaptures", "liquidation_retractions")
LIQUIDATION = "id blockNumber blockHash market debtUsd svr { aggregator }"
FULL_LIQUIDATION = """id chain chainId blockNumber blockHash blockTime txHash txIndex logIndex
  pool market user liquidator collateralAsset { address symbol decimals }
  debtAsset { address symbol decimals } debtToCover liquidatedCollateralAmount
  protocolFeeAmount receiveAToken collateralPrice debtPrice collateralUsd debtUsd finalized
  svr { aggregator roundId oracleTxHash recapturedUsd aaveUsd chainlinkUsd bonusUsd }"""


@pytest.fixture(scope="module")
def server(db_dsn: str) -> Iterator[Server]:
    with api_server(db_dsn, AAVE_API_LIVE_QUEUE=str(QUEUE)) as srv:
        yield srv


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def db(db_dsn: str, http: httpx.AsyncClient) -> AsyncIterator[asyncpg.Connection]:
    """The writer's connection, on an empty database with no subscription left over."""
    for kind in KINDS:
        await wait_metric(http, "aave_api_subscriptions_active", 0, kind=kind)
    conn = await asyncpg.connect(db_dsn)
    try:
        for table in (
            "liquidations",
            "svr_recaptures",
            "checkpoints",
            "blocks",
            "chain_status",
            "liquidation_retractions",
        ):
            await conn.execute(f"DELETE FROM {table}")
        await writer.prepare(conn)
        await writer.start_checkpoint(conn, CHAIN, 99)
        yield conn
    finally:
        await conn.close()


def sub(field: str, selection: str) -> str:
    return f"subscription S($f: LiquidationFilter) {{ {field}(filter: $f) {{ {selection} }} }}"


async def subscribe_all(
    http: httpx.AsyncClient, client: WsClient, ops: dict[str, tuple[str, dict[str, Any] | None]]
) -> None:
    """Subscribe each op (id -> (query, filter)) and wait until the server counts them."""
    want: Counter[str] = Counter()
    for op_id, (query, filt) in ops.items():
        await client.subscribe(op_id, query, {"f": filt})
        field = query.split("{", 1)[1].split("(", 1)[0].strip()
        want[
            {
                "liquidationAdded": "liquidations",
                "liquidationRemoved": "liquidation_retractions",
                "svrRecaptureAdded": "svr_recaptures",
            }[field]
        ] += 1
    for kind in KINDS:
        await wait_metric(http, "aave_api_subscriptions_active", want[kind], kind=kind)


async def collect(
    client: WsClient, expected: dict[str, int], quiet: float = 0.5, timeout: float = 20
) -> dict[str, list[dict[str, Any]]]:
    """Messages per op until each has its expected count, then `quiet` seconds more (so a
    duplicate would show)."""
    got: dict[str, list[dict[str, Any]]] = defaultdict(list)
    deadline = time.monotonic() + timeout
    done_at: float | None = None
    while True:
        if done_at is None and all(len(got[k]) >= n for k, n in expected.items()):
            done_at = time.monotonic()
        now = time.monotonic()
        if done_at is not None and now - done_at >= quiet:
            return got
        if now > deadline:
            counts = {k: len(v) for k, v in got.items()}
            raise AssertionError(f"timed out: got {counts}, expected {expected}")
        try:
            message = await client.recv(timeout=0.1)
        except TimeoutError:
            continue
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data = message["payload"]["data"]
        got[message["id"]].append(next(iter(data.values())))


async def query_ids(http: httpx.AsyncClient, filt: dict[str, Any] | None) -> list[str]:
    """The ids the `liquidations` query gives for the same filter: SQL's answer."""
    body = (
        await http.post(
            "/graphql",
            json={
                "query": "query Q($f: LiquidationFilter) { liquidations(filter: $f, first: 1000)"
                " { edges { node { id } } } }",
                "variables": {"f": filt},
            },
        )
    ).json()
    return sorted(e["node"]["id"] for e in body["data"]["liquidations"]["edges"])


FILTERS: dict[str, dict[str, Any] | None] = {
    "all": None,
    "svr": {"svr": True},
    "not_svr": {"svr": False},
    "prime_late": {"markets": ["prime"], "blockFrom": 110},
    "rich": {"minDebtUsd": "115.5"},
    "window": {"blockFrom": 103, "blockTo": 112, "chains": ["ARBITRUM"]},
    "elsewhere": {"chainIds": [1]},
    "tx": {"txHash": "0x" + "ab" * 32},
}


async def test_every_liquidation_once_with_the_filters_of_the_queries(
    server: Server, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    client = await WsClient.open(server.ws_url)
    try:
        await subscribe_all(
            http, client, {k: (sub("liquidationAdded", LIQUIDATION), f) for k, f in FILTERS.items()}
        )
        await writer.write_batch(db, make_batch(100, 104), "arbitrum")
        await writer.write_batch(db, make_batch(105, 109), "arbitrum")
        # A replay inserts nothing, so it announces nothing.
        await db.execute("UPDATE checkpoints SET block_number = 99")
        assert await writer.write_batch(db, make_batch(100, 109), "arbitrum") == 0
        # A replay overlapping new blocks (the staging path) announces only the new rows.
        await db.execute("UPDATE checkpoints SET block_number = 99")
        await writer.write_batch(db, make_batch(100, 119), "arbitrum")
        await writer.write_batch(db, make_batch(120, 129), "arbitrum")
        expected = {k: await query_ids(http, f) for k, f in FILTERS.items()}
        assert len(expected["all"]) == 60 and expected["elsewhere"] == []
        assert 0 < len(expected["prime_late"]) < 60 and 0 < len(expected["window"]) < 60
        got = await collect(client, {k: len(v) for k, v in expected.items()})
        for op_id, ids in expected.items():
            assert sorted(m["id"] for m in got[op_id]) == ids, op_id  # once each, no other
        blocks = [m["blockNumber"] for m in got["all"]]
        assert blocks == sorted(blocks)  # chain order
        assert {m["id"]: m["svr"] is not None for m in got["all"]} == {
            m["id"]: True for m in got["svr"]
        } | {m["id"]: False for m in got["not_svr"]}
    finally:
        await client.close()


def rebranch(batch: Batch, tag: str) -> Batch:
    """The same liquidations in blocks of another branch (other block hashes)."""
    batch.liquidations = [
        LiquidationRow(*r)._replace(block_hash=r[2] + tag) for r in batch.liquidations
    ]
    batch.recaptures = [RecaptureRow(*r)._replace(block_hash=r[2] + tag) for r in batch.recaptures]
    batch.blocks = [BlockRow(*b)._replace(block_hash=b[2] + tag) for b in batch.blocks]
    return batch


async def test_rollback_retracts_what_was_delivered(
    server: Server, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    client = await WsClient.open(server.ws_url)
    try:
        await subscribe_all(
            http,
            client,
            {
                "added": (sub("liquidationAdded", LIQUIDATION), None),
                "removed": (
                    sub("liquidationRemoved", "id chainId txHash logIndex blockNumber blockHash"),
                    None,
                ),
                "removed_core": (sub("liquidationRemoved", "id"), {"markets": ["core"]}),
                "removed_final": (sub("liquidationRemoved", "id"), {"finalized": True}),
            },
        )
        await writer.write_batch(db, make_batch(100, 109), "arbitrum")
        added = (await collect(client, {"added": 20}))["added"]
        removed = await rollback.rollback(db, CHAIN, 104, "0xh104")
        assert removed["liquidations"] == 10
        above = [m for m in added if m["blockNumber"] > 104]
        core = [m["id"] for m in above if m["market"] == "core"]
        got = await collect(client, {"removed": 10, "removed_core": len(core)})
        assert sorted(m["id"] for m in got["removed"]) == sorted(m["id"] for m in above)
        assert sorted(m["id"] for m in got["removed_core"]) == sorted(core)
        assert "removed_final" not in got and "added" not in got
        for m in got["removed"]:
            chain, tx, log = m["id"].split(":")
            assert (m["chainId"], m["txHash"], m["logIndex"]) == (int(chain), tx, int(log))
            assert m["blockHash"] == f"0xh{m['blockNumber']}"
        # The new branch's rows come as new liquidations.
        await writer.write_batch(db, rebranch(make_batch(105, 112), "b"), "arbitrum")
        again = (await collect(client, {"added": 16}))["added"]
        assert sorted(m["blockNumber"] for m in again) == sorted(list(range(105, 113)) * 2)
        assert {m["blockHash"] for m in again} == {f"0xh{b}b" for b in range(105, 113)}
    finally:
        await client.close()


def apply(state: dict[str, str], gone: set[tuple[str, str]], kind: str, m: dict[str, Any]) -> None:
    """A client's view of the table from the stream: an addition of a version (id, block
    hash) already removed is stale; a removal names the version it removes."""
    version = (m["id"], m["blockHash"])
    if kind == "added":
        assert m["id"] not in state or state[m["id"]] != m["blockHash"], f"twice: {version}"
        if version not in gone:
            state[m["id"]] = m["blockHash"]
    else:
        gone.add(version)
        if state.get(m["id"]) == m["blockHash"]:
            del state[m["id"]]


async def test_bursts_of_writes_and_rollbacks_leave_a_client_with_the_table(
    server: Server, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """Writes and rollbacks back to back, faster than the API reads: whatever the timing,
    applying the stream gives exactly the rows in the database, and no version twice."""
    client = await WsClient.open(server.ws_url)
    try:
        await subscribe_all(
            http,
            client,
            {
                "added": (sub("liquidationAdded", "id blockHash"), None),
                "removed": (sub("liquidationRemoved", "id blockHash"), None),
            },
        )
        last = 99
        for round_ in range(12):
            await writer.write_batch(
                db, rebranch(make_batch(last + 1, last + 6), f"r{round_}"), "x"
            )
            last += 6
            if round_ % 3 == 2:
                back = last - 4
                await rollback.rollback(db, CHAIN, back, None)
                last = back
        rows = await db.fetch("SELECT chain_id, tx_hash, log_index, block_hash FROM liquidations")
        want = {f"{r['chain_id']}:{r['tx_hash']}:{r['log_index']}": r["block_hash"] for r in rows}
        state: dict[str, str] = {}
        gone: set[tuple[str, str]] = set()
        deadline = time.monotonic() + 20
        counts: Counter[str] = Counter()
        while time.monotonic() < deadline:  # until a second without messages
            try:
                message = await client.recv(timeout=1.0)
            except TimeoutError:
                break
            assert message["type"] == "next", message
            kind = message["id"]
            counts[kind] += 1
            apply(state, gone, kind, message["payload"]["data"][f"liquidation{kind.title()}"])
        assert state == want
        assert counts["removed"] >= 4 * 8 and counts["added"] >= len(want)
    finally:
        await client.close()


async def test_svr_recaptures_are_delivered(
    server: Server, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    query = (
        "subscription S($f: SvrRecaptureFilter) { svrRecaptureAdded(filter: $f) {"
        " id chain chainId blockNumber txHash sourceIndex recipient token amount amountUsd"
        " aggregator market liquidationIds aaveBps aaveUsd chainlinkUsd splitRule } }"
    )
    client = await WsClient.open(server.ws_url)
    try:
        await subscribe_all(
            http,
            client,
            {
                "all": (query, None),
                "prime": (query, {"markets": ["prime"]}),
                "other_feed": (query, {"aggregator": "0x" + "11" * 20}),
            },
        )
        await writer.write_batch(db, make_batch(100, 111), "arbitrum")
        rows = await db.fetch("SELECT * FROM svr_recaptures ORDER BY block_number, tx_hash")
        prime = [r for r in rows if r["market"] == "prime"]
        assert len(rows) == 8 and 0 < len(prime) < 8
        got = await collect(client, {"all": len(rows), "prime": len(prime)})
        assert "other_feed" not in got
        assert [m["id"] for m in got["all"]] == [
            f"{r['chain_id']}:{r['tx_hash']}:{r['source_index']}" for r in rows
        ]
        assert sorted(m["id"] for m in got["prime"]) == sorted(
            f"{r['chain_id']}:{r['tx_hash']}:{r['source_index']}" for r in prime
        )
        first = got["all"][0]
        assert first["chain"] == "ARBITRUM" and first["token"] is None
        assert (first["amount"], first["amountUsd"], first["aaveBps"]) == (
            "1000000000000000",
            "2.5",
            6500,
        )
        assert (first["aaveUsd"], first["chainlinkUsd"], first["splitRule"]) == (
            "1.625",
            "0.875",
            "65/35",
        )
        assert first["liquidationIds"] == [rows[0]["liquidation_ids"][0]]
    finally:
        await client.close()


async def test_delivered_within_a_second_of_the_commit(
    server: Server, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    client = await WsClient.open(server.ws_url)
    try:
        await subscribe_all(
            http, client, {"all": (sub("liquidationAdded", FULL_LIQUIDATION), None)}
        )
        latencies = []
        for block in range(100, 140):
            await writer.write_batch(db, make_batch(block, block), "arbitrum")
            committed = time.monotonic()
            for _ in range(2):  # two liquidations per block
                message = await client.recv(timeout=5)
                assert message["payload"]["data"]["liquidationAdded"]["blockNumber"] == block
            latencies.append(time.monotonic() - committed)
        latencies.sort()
        figures = {
            "batches": len(latencies),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1),
        }
        publish("subscriptions.latency", **figures)
        assert latencies[-1] < 1.0, figures
    finally:
        await client.close()


async def test_a_slow_subscriber_is_dropped_and_never_delays_a_fast_one(
    server: Server, http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    fast = await WsClient.open(server.ws_url)
    slow = await RawWs.open(server.ws_url)  # reads nothing until told to
    try:
        await subscribe_all(http, fast, {"fast": (sub("liquidationAdded", "id blockNumber"), None)})
        query = sub("liquidationAdded", FULL_LIQUIDATION)
        await slow.send({"id": "slow", "type": "subscribe", "payload": {"query": query}})
        await wait_metric(http, "aave_api_subscriptions_active", 2, kind="liquidations")
        latencies = []
        dropped_after = None
        start = 100
        # The kernel takes up to 4 MiB for the slow socket before the server's sends wait
        # (about 3,000 of its messages); then QUEUE notifications more and it is dropped.
        for batches, start in enumerate(range(100, 6100, 50), start=1):  # 100 rows a batch
            await writer.write_batch(db, make_batch(start, start + 49), "arbitrum")
            committed = time.monotonic()
            for _ in range(100):
                message = await fast.recv(timeout=5)
                assert message["type"] == "next"
            latencies.append(time.monotonic() - committed)
            if dropped_after is None:
                if await _dropped(http):
                    dropped_after = batches
            elif batches >= dropped_after + 5:
                break
        assert dropped_after is not None, "the slow subscriber was never dropped"
        assert await _dropped(http) == 1
        await wait_metric(http, "aave_api_subscriptions_active", 1, kind="liquidations")
        code, reason, before = await slow.close_code()
        assert (code, "too slow" in reason) == (SLOW_CLOSE_CODE, True), (code, reason)
        figures = {
            "queue": QUEUE,
            "batches_until_dropped": dropped_after,
            "fast_p50_ms": round(statistics.median(latencies) * 1000, 1),
            "fast_max_ms": round(max(latencies) * 1000, 1),
            "close": f"{code} {reason}",
            "messages_before_close": before,
        }
        publish("subscriptions.slow", **figures)
        assert max(latencies) < 1.0, figures
        # The fast one goes on.
        await writer.write_batch(db, make_batch(start + 50, start + 50), "arbitrum")
        assert (await fast.recv())["payload"]["data"]["liquidationAdded"][
            "blockNumber"
        ] == start + 50
    finally:
        await fast.close()
        slow.close()


async def _dropped(http: httpx.AsyncClient) -> float:
    return await metric(http, "aave_api_subscriptions_dropped_total", reason="slow")


async def test_subscriptions_over_http_are_refused(server: Server, http: httpx.AsyncClient) -> None:
    body = (
        await http.post("/graphql", json={"query": "subscription { liquidationAdded { id } }"})
    ).json()
    assert body["data"] is None
    assert body["errors"][0]["message"].startswith("subscriptions are served over WebSocket")
    assert "Traceback" not in server.log_text()
