"""HTTP caching of /graphql: GET equals POST, ETag and 304, the answer cache and its
invalidation when a chain advances or rolls back, Cache-Control by settledness, and
automatic persisted queries."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from api.http_cache import CacheSettings, HttpGraphQL
from api.persisted import PersistedQueries, PersistedQueryError
from indexer.store import rollback, status
from tests.test_api_support import (
    CHAIN_NAMES,
    LIQUIDATION_COLUMNS,
    T0,
    api_client,
    build_dataset,
    seed,
)

DS = build_dataset(n_per_chain=40, seed=5)
PAGE = """query Page($f: LiquidationFilter, $n: Int!) {
  liquidations(filter: $f, first: $n) { edges { node { id blockNumber debtUsd } } }
}"""
STATUS = "{ indexerStatus { chainId headBlock indexedBlock } }"
MIN_FINALIZED = min(final for _, final, _ in DS.status.values())
LONG = "public, max-age=86400, immutable"
SHORT = "public, max-age=2"


@pytest.fixture(scope="module")
async def client(db_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed(db_dsn, DS)
    # heads read on every request, so a change is seen by the very next one
    async with api_client(db_dsn, cache=CacheSettings(heads_ttl_s=0)) as c:
        yield c


def layer(client: httpx.AsyncClient) -> HttpGraphQL:
    found: HttpGraphQL = client.app.state.graphql  # type: ignore[attr-defined]
    return found


async def get(
    client: httpx.AsyncClient,
    query: str | None = None,
    variables: dict[str, Any] | None = None,
    extensions: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    params: dict[str, str] = {}
    if query is not None:
        params["query"] = query
    if variables is not None:
        params["variables"] = json.dumps(variables)
    if extensions is not None:
        params["extensions"] = json.dumps(extensions)
    return await client.get("/graphql", params=params, headers=headers or {})


def apq(query: str, version: int = 1) -> dict[str, Any]:
    digest = hashlib.sha256(query.encode()).hexdigest()
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


async def test_get_equals_post_and_both_carry_the_etag(client: httpx.AsyncClient) -> None:
    variables = {"f": {"chains": ["ETHEREUM"]}, "n": 7}
    by_get = await get(client, PAGE, variables)
    by_post = await client.post("/graphql", json={"query": PAGE, "variables": variables})
    assert by_get.status_code == by_post.status_code == 200
    assert by_get.json() == by_post.json()
    assert len(by_get.json()["data"]["liquidations"]["edges"]) == 7
    assert by_get.headers["etag"] == by_post.headers["etag"]
    assert by_get.headers["etag"].startswith('"') and len(by_get.headers["etag"]) == 34
    # other variables, another answer and another tag
    other = await get(client, PAGE, {"f": {"chains": ["BASE"]}, "n": 7})
    assert other.headers["etag"] != by_get.headers["etag"]
    assert other.json() != by_get.json()


async def test_etag_304_round_trip(client: httpx.AsyncClient) -> None:
    first = await get(client, PAGE, {"n": 3})
    etag = first.headers["etag"]
    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        again = await get(client, PAGE, {"n": 3}, headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b"" and again.headers["etag"] == etag
        assert again.headers["cache-control"] == first.headers["cache-control"]
    stale = await get(client, PAGE, {"n": 3}, headers={"If-None-Match": '"0123"'})
    assert stale.status_code == 200 and stale.json() == first.json()
    posted = await client.post(
        "/graphql", json={"query": PAGE, "variables": {"n": 3}}, headers={"If-None-Match": etag}
    )
    assert posted.status_code == 304


async def test_answers_come_from_the_cache(client: httpx.AsyncClient) -> None:
    cache = layer(client).cache
    query = "{ liquidationStats(groupBy: [CHAIN]) { chainId count debtUsd } }"
    first = await get(client, query)
    hits = cache.hits
    second = await get(client, query)
    third = await client.post("/graphql", json={"query": query})
    assert cache.hits == hits + 2
    assert first.content == second.content == third.content
    assert sum(r["count"] for r in first.json()["data"]["liquidationStats"]) == len(DS.liquidations)


async def _insert_liquidation(conn: asyncpg.Connection, block: int) -> str:
    """A new Ethereum liquidation at `block`, with the checkpoint and indexed block moved
    there in the same transaction, as the writer does."""
    row = dict(next(r for r in DS.liquidations if r["chain_id"] == 1))
    row.update(
        block_number=block,
        block_hash="0x" + "ab" * 32,
        block_time=T0 + timedelta(days=30),
        tx_hash="0x" + "cd" * 32,
    )
    async with conn.transaction():
        await conn.copy_records_to_table(
            "liquidations",
            records=[tuple(row[c] for c in LIQUIDATION_COLUMNS)],
            columns=LIQUIDATION_COLUMNS,
        )
        await conn.execute(
            "INSERT INTO checkpoints (chain_id, stream, block_number, block_hash)"
            " VALUES (1, 'main', $1, $2) ON CONFLICT (chain_id, stream) DO UPDATE"
            " SET block_number = EXCLUDED.block_number, block_hash = EXCLUDED.block_hash,"
            " updated_at = now()",
            block,
            row["block_hash"],
        )
        await conn.execute("UPDATE chain_status SET indexed_block = $1 WHERE chain_id = 1", block)
    return f"1:{row['tx_hash']}:{row['log_index']}"


async def test_a_chain_advancing_and_rolling_back_invalidates(
    client: httpx.AsyncClient, db_dsn: str
) -> None:
    variables = {"f": {"chains": ["ETHEREUM"]}, "n": 5}
    before = await get(client, PAGE, variables)
    etag = before.headers["etag"]
    assert (await get(client, PAGE, variables, headers={"If-None-Match": etag})).status_code == 304
    indexed = DS.status[1][2]
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(
            "INSERT INTO checkpoints (chain_id, stream, block_number) VALUES (1, 'main', $1)",
            indexed,
        )
        moved = await get(client, PAGE, variables, headers={"If-None-Match": etag})
        assert moved.status_code == 200 and moved.headers["etag"] != etag  # checkpoint row
        etag = moved.headers["etag"]
        new_id = await _insert_liquidation(conn, indexed + 1)
        advanced = await get(client, PAGE, variables, headers={"If-None-Match": etag})
        assert advanced.status_code == 200
        assert advanced.headers["etag"] != etag
        ids = [e["node"]["id"] for e in advanced.json()["data"]["liquidations"]["edges"]]
        assert ids[0] == new_id
        # a reorg: the rollback to the ancestor removes the row and moves the checkpoint
        removed = await rollback.rollback(conn, 1, indexed, None)
        assert removed["liquidations"] == 1
        rolled = await get(
            client, PAGE, variables, headers={"If-None-Match": advanced.headers["etag"]}
        )
        assert rolled.status_code == 200
        assert rolled.headers["etag"] not in (etag, advanced.headers["etag"])
        assert rolled.json() == before.json()
    finally:
        await conn.execute("DELETE FROM checkpoints")
        await conn.execute("UPDATE chain_status SET indexed_block = $1 WHERE chain_id = 1", indexed)
        await conn.close()


async def test_a_new_head_invalidates_only_what_reads_the_status(
    client: httpx.AsyncClient, db_dsn: str
) -> None:
    page = await get(client, PAGE, {"n": 2})
    chains = await get(client, STATUS)
    head, final, _ = DS.status[137]
    conn = await asyncpg.connect(db_dsn)
    try:
        await status.update_heads(conn, 137, CHAIN_NAMES[137], head + 1, final)
        page2 = await get(client, PAGE, {"n": 2}, headers={"If-None-Match": page.headers["etag"]})
        assert page2.status_code == 304
        chains2 = await get(client, STATUS, headers={"If-None-Match": chains.headers["etag"]})
        assert chains2.status_code == 200
        heads = {r["chainId"]: r["headBlock"] for r in chains2.json()["data"]["indexerStatus"]}
        assert heads[137] == head + 1
    finally:
        await status.update_heads(conn, 137, CHAIN_NAMES[137], head, final)
        await conn.close()


async def test_heads_are_read_at_most_once_per_ttl(db_dsn: str) -> None:
    async with api_client(db_dsn, cache=CacheSettings(heads_ttl_s=0.3)) as c:
        clock = layer(c).clock
        await asyncio.gather(*(get(c, PAGE, {"n": 1}) for _ in range(20)))
        assert clock.reads == 1
        await asyncio.sleep(0.35)
        await get(c, PAGE, {"n": 1})
        assert clock.reads == 2


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"f": {"blockTo": MIN_FINALIZED}}, LONG),
        ({"f": {"blockTo": MIN_FINALIZED + 10**6}}, SHORT),  # above some chain's finality
        ({"f": {"chains": ["POLYGON"], "blockTo": DS.status[137][1]}}, LONG),
        ({"f": {"chains": ["POLYGON"], "blockTo": DS.status[137][1] + 1}}, SHORT),
        ({"f": {"chainIds": [137, 999], "blockTo": DS.status[137][1]}}, SHORT),  # unknown chain
        ({"f": {"timeTo": T0.isoformat()}}, LONG),
        ({"f": {"timeTo": (T0 + timedelta(days=400)).isoformat()}}, SHORT),
        ({"f": {"chains": ["BASE"]}}, SHORT),  # no upper bound
        ({}, SHORT),
    ],
)
async def test_cache_control_follows_settledness(
    client: httpx.AsyncClient, variables: dict[str, Any], expected: str
) -> None:
    response = await get(client, PAGE, {**variables, "n": 2})
    assert response.status_code == 200 and not response.json().get("errors")
    assert response.headers["cache-control"] == expected


async def test_cache_control_of_other_shapes(client: httpx.AsyncClient) -> None:
    settled = (
        f"{{ svrRevenue(filter: {{timeTo: {json.dumps(T0.isoformat())}}}) {{ recaptureCount }} }}"
    )
    assert (await get(client, settled)).headers["cache-control"] == LONG
    stats = f"{{ a: liquidationStats(filter: {{blockTo: {MIN_FINALIZED}}}) {{ count }} }}"
    assert (await get(client, stats)).headers["cache-control"] == LONG
    fragment = (
        "query { ...F } fragment F on Query { liquidations(filter: {blockTo: 1}) { edges {"
        " node { id } } } }"
    )
    assert (await get(client, fragment)).headers["cache-control"] == LONG
    lead = (
        f"{{ liquidations(filter: {{blockTo: {MIN_FINALIZED}}}) {{ edges {{ node {{ svr {{"
        " leadSeconds } } } } }"
    )
    assert (await get(client, lead)).headers["cache-control"] == SHORT
    mixed = "{ liquidationStats(filter: {blockTo: 1}) { count } indexerStatus { chainId } }"
    assert (await get(client, mixed)).headers["cache-control"] == SHORT


async def test_errors_are_not_cached(client: httpx.AsyncClient) -> None:
    cache = layer(client).cache
    for _ in range(2):
        response = await get(client, "{ liquidations(first: 5000) { edges { cursor } } }")
        assert response.status_code == 200 and response.json()["errors"]
        assert response.headers["cache-control"] == "no-store"
        assert "etag" not in response.headers
    syntax = await get(client, "{ liquidations(")
    assert syntax.json()["errors"] and syntax.headers["cache-control"] == "no-store"
    assert all(b'"errors":' not in answer.body for answer in cache._entries.values())


async def test_get_refuses_mutations_and_subscriptions(client: httpx.AsyncClient) -> None:
    for kind in ("mutation", "subscription"):
        response = await get(client, f"{kind} {{ x }}")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        message = response.json()["errors"][0]["message"]
        assert f"a {kind} cannot be sent with GET" in message
    named = "query A { indexerStatus { chainId } } mutation B { x }"
    assert (await get(client, named)).status_code == 405  # no operationName: any is refused
    # naming the query picks it: past this layer (the schema then refuses the document,
    # as it has no mutations)
    ok = await client.get("/graphql", params={"query": named, "operationName": "A"})
    assert ok.status_code == 200 and ok.json()["errors"]
    two = "query A { indexerStatus { chainId } } query B { assets { address } }"
    picked = await client.get("/graphql", params={"query": two, "operationName": "A"})
    assert picked.status_code == 200 and picked.json()["data"]["indexerStatus"]
    # POST still reaches GraphQL, which has no mutations
    posted = await client.post("/graphql", json={"query": "mutation { x }"})
    assert posted.status_code == 200 and posted.json()["errors"]


async def test_persisted_query_miss_register_hit(client: httpx.AsyncClient) -> None:
    query = "{ liquidationStats(groupBy: [CHAIN]) { chainId svrCount } }"
    ext = apq(query)
    miss = await get(client, extensions=ext)
    assert miss.status_code == 200
    error = miss.json()["errors"][0]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert miss.headers["cache-control"] == "no-store"
    registered = await client.post("/graphql", json={"query": query, "extensions": ext})
    assert registered.status_code == 200 and not registered.json().get("errors")
    hit = await get(client, extensions=ext)
    assert hit.status_code == 200 and hit.json() == registered.json()
    assert hit.headers["etag"] == registered.headers["etag"]
    by_post = await client.post("/graphql", json={"extensions": ext})
    assert by_post.json() == registered.json()
    # GET registration works as well, with variables
    page_ext = apq(PAGE)
    assert (await get(client, variables={"n": 1}, extensions=page_ext)).json()["errors"]
    first = await get(client, PAGE, {"n": 1}, page_ext)
    second = await get(client, variables={"n": 1}, extensions=page_ext)
    assert (
        first.json() == second.json() and len(second.json()["data"]["liquidations"]["edges"]) == 1
    )


async def test_persisted_query_mismatch_and_malformed_are_refused(
    client: httpx.AsyncClient,
) -> None:
    query = "{ indexerStatus { chainId } }"
    wrong = apq("{ assets { address } }")
    response = await client.post("/graphql", json={"query": query, "extensions": wrong})
    assert response.status_code == 400
    assert "does not match the query" in response.json()["errors"][0]["message"]
    # and the wrong hash was not registered
    assert (await get(client, extensions=wrong)).json()["errors"][0]["message"] == (
        "PersistedQueryNotFound"
    )
    cases = [
        (apq(query, version=2), "version must be 1"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "xyz"}}, "64 hex digits"),
        ({"persistedQuery": "abc"}, "must be an object"),
    ]
    for ext, words in cases:
        response = await get(client, query, extensions=ext)
        assert response.status_code == 400 and words in response.json()["errors"][0]["message"]


def test_persisted_store_is_bounded() -> None:
    store = PersistedQueries(max_entries=3, max_chars=10_000)
    queries = [f"{{ q{k} }}" for k in range(5)]
    for q in queries:
        store.register(hashlib.sha256(q.encode()).hexdigest(), q)
    assert len(store) == 3
    digests = [hashlib.sha256(q.encode()).hexdigest() for q in queries]
    assert store.get(digests[0]) is None and store.get(digests[4]) == queries[4]
    big = PersistedQueries(max_entries=100, max_chars=30)
    for q in ("{ " + "a" * 10 + " }", "{ " + "b" * 10 + " }", "{ " + "c" * 10 + " }"):
        big.register(hashlib.sha256(q.encode()).hexdigest(), q)
    assert len(big) == 2  # 14 characters each, 30 at most
    with pytest.raises(PersistedQueryError):
        store.register("0" * 64, "{ x }")


async def test_repeated_requests_are_answered_from_their_bytes(
    client: httpx.AsyncClient, db_dsn: str
) -> None:
    cache = layer(client).cache
    body = {"query": STATUS}
    first = await client.post("/graphql", json=body)  # runs, kept
    second = await client.post("/graphql", json=body)  # from the cache; its bytes indexed
    raw_hits = cache.hits
    third = await client.post("/graphql", json=body)  # from the bytes
    assert cache.hits == raw_hits + 1 and cache._raw
    assert first.content == second.content == third.content
    assert third.headers["etag"] == second.headers["etag"]
    assert third.headers["cache-control"] == second.headers["cache-control"]
    assert third.headers["content-type"] == "application/json"
    not_modified = await client.post(
        "/graphql", json=body, headers={"If-None-Match": third.headers["etag"]}
    )
    assert not_modified.status_code == 304 and not_modified.content == b""
    head, final, _ = DS.status[137]
    conn = await asyncpg.connect(db_dsn)
    try:
        await status.update_heads(conn, 137, CHAIN_NAMES[137], head + 1, final)
        moved = await client.post("/graphql", json=body)
        assert moved.headers["etag"] != third.headers["etag"]
        heads = {r["chainId"]: r["headBlock"] for r in moved.json()["data"]["indexerStatus"]}
        assert heads[137] == head + 1
    finally:
        await status.update_heads(conn, 137, CHAIN_NAMES[137], head, final)
        await conn.close()
    # another content type is another request: the view answers it as before
    other = await client.post(
        "/graphql", content=json.dumps(body), headers={"content-type": "text/plain"}
    )
    assert other.status_code != 200 or other.content != third.content
