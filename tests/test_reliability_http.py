"""Hostile HTTP to the caching layer (GET, persisted queries, ETags) and the export.

Named cases (unknown hashes, oversized URLs and variables, malformed JSON in parameters,
mutations over GET, bad export filters) must each get a clear 4xx (or the GraphQL error
the protocol prescribes) with a message; then generated query strings and headers, from
hypothesis, against both /graphql and /export: never a 5xx, never a traceback, always a
JSON error with a message when refused, and the server still answers correctly after.
The number of generated cases scales with RELIABILITY_HTTP_EXAMPLES.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.limits import MAX_QUERY_STRING_BYTES
from tests.reliability_support import publish, scaled
from tests.test_api_support import api_client, build_dataset, seed

EXAMPLES = scaled("RELIABILITY_HTTP_EXAMPLES", 400)
DS = build_dataset(n_per_chain=60, seed=29)
STATUS_Q = "{ indexerStatus { chainId } }"
STATS: Counter[str] = Counter()
SLOWEST: list[float] = [0.0]


@pytest.fixture(scope="module")
async def client(db_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed(db_dsn, DS)
    async with api_client(db_dsn) as c:
        yield c


def error_message(response: httpx.Response) -> str:
    body = response.json()
    message: str = body["errors"][0]["message"]
    assert message and "Traceback" not in response.text
    return message


async def still_up(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": STATUS_Q})
    assert response.status_code == 200
    assert len(response.json()["data"]["indexerStatus"]) == 5


NAMED = [
    # (path and query string, status, words in the message)
    (
        "/graphql?extensions="
        + quote(json.dumps({"persistedQuery": {"version": 1, "sha256Hash": "ab" * 32}})),
        200,
        "PersistedQueryNotFound",
    ),
    (
        "/graphql?query=%7B%20x%20%7D&extensions=%7Bnot%20json",
        400,
        "extensions parameter is not valid JSON",
    ),
    ("/graphql?query=%7B%20x%20%7D&extensions=%5B1%5D", 400, "extensions must be a JSON object"),
    ("/graphql?query=%7B%20x%20%7D&variables=%7B", 400, "variables parameter is not valid JSON"),
    ("/graphql?query=%7B%20x%20%7D&variables=3", 400, "variables must be a JSON object"),
    ("/graphql?extensions=%7B%22persistedQuery%22%3A1%7D", 400, "must be an object"),
    (
        "/graphql?extensions="
        + quote(json.dumps({"persistedQuery": {"version": 1, "sha256Hash": "zz" * 32}})),
        400,
        "64 hex digits",
    ),
    ("/graphql?query=" + quote("mutation { x }"), 405, "cannot be sent with GET"),
    ("/graphql?query=" + quote("subscription { x }"), 405, "cannot be sent with GET"),
    ("/graphql?query=%ff%fe", 200, "Syntax Error"),  # not UTF-8: replaced, then unparsable
    ("/export/liquidations.csv?chains=ETHEREUM&chain=1", 400, "unknown parameter 'chain'"),
    ("/export/liquidations.parquet?user=nobody", 400, "invalid address"),
    ("/export/liquidations.csv?timeFrom=2026-13-45", 400, "invalid DateTime"),
    (
        "/export/liquidations.csv?chainIds=" + ",".join(map(str, range(1, 101))),
        400,
        "at most 64 chains",
    ),
    ("/export/liquidations.csv?minDebtUsd=NaN", 400, "minDebtUsd"),
]


@pytest.mark.parametrize(("url", "status", "words"), NAMED)
async def test_named_hostile_requests(
    client: httpx.AsyncClient, url: str, status: int, words: str
) -> None:
    response = await client.get(url)
    assert response.status_code == status, response.text[:300]
    assert words in error_message(response)
    await still_up(client)


async def test_oversized_urls_and_variables(client: httpx.AsyncClient) -> None:
    big = {"f": {"markets": ["x" * 60] * 400}}
    for url in (
        "/graphql?query=" + quote(STATUS_Q) + "&variables=" + quote(json.dumps(big)),
        "/graphql?query=" + "%20" * MAX_QUERY_STRING_BYTES,
        "/export/liquidations.csv?markets=" + "m," * MAX_QUERY_STRING_BYTES,
    ):
        response = await client.get(url)
        assert response.status_code == 414
        assert "send the query with POST" in error_message(response)
    # a POST body carries what a URL cannot, up to the body limit
    body = {"query": STATUS_Q, "variables": {"pad": "x" * 70_000}}
    assert (await client.post("/graphql", json=body)).status_code == 413
    await still_up(client)


async def test_many_persisted_registrations_only_evict(client: httpx.AsyncClient) -> None:
    store = client.app.state.graphql.persisted  # type: ignore[attr-defined]
    for k in range(store.max_entries + 50):
        query = f"{{ indexerStatus {{ chainId }} a{k}: assets(chains: [BASE]) {{ address }} }}"
        digest = hashlib.sha256(query.encode()).hexdigest()
        ext = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
        if k % 500 == 0:
            response = await client.post("/graphql", json={"query": query, "extensions": ext})
            assert response.status_code == 200
        else:
            store.register(digest, query)
    assert len(store) == store.max_entries
    await still_up(client)


PARAM_NAMES = st.sampled_from(
    ["query", "variables", "operationName", "extensions", "chains", "chainIds", "markets",
     "user", "timeFrom", "timeTo", "blockFrom", "blockTo", "svr", "minDebtUsd", "txHash", "x"]
)  # fmt: skip
PARAM_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            STATUS_Q,
            "{",
            "mutation { x }",
            "null",
            "[]",
            "{}",
            '{"persistedQuery": {"version": 1, "sha256Hash": "' + "0" * 64 + '"}}',
            '{"persistedQuery": {"version": "1"}}',
            '{"f": {"blockTo": 1e309}}',
            "ETHEREUM,MOON",
            "0x" + "f" * 40,
            "2026-01-25T00:00:00Z",
            "99999999999999999999999",
            "-1",
            "true",
            "%00",
            "\x00",
        ]
    ),
)
PATHS = st.sampled_from(["/graphql", "/export/liquidations.csv", "/export/liquidations.parquet"])
HEADERS = st.dictionaries(
    st.sampled_from(["If-None-Match", "Accept", "Content-Type"]),
    st.sampled_from(['"abc"', "*", "W/", "", "text/html", "application/json", "\u00e9"]),
    max_size=2,
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=PATHS,
    params=st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=5),
    headers=HEADERS,
)
async def test_generated_requests(
    client: httpx.AsyncClient,
    path: str,
    params: list[tuple[str, str]],
    headers: dict[str, str],
) -> None:
    raw = {k: v.encode("latin-1") for k, v in headers.items()}  # bytes beyond ASCII too
    started = time.monotonic()
    response = await client.get(path, params=params, headers=raw)
    SLOWEST[0] = max(SLOWEST[0], time.monotonic() - started)
    STATS[str(response.status_code)] += 1
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        if response.headers.get("content-type", "").startswith("application/json"):
            error_message(response)
        else:
            assert response.status_code in (404, 405), response.text


async def test_generated_requests_summary(client: httpx.AsyncClient) -> None:
    await still_up(client)
    publish("http", cases=sum(STATS.values()), statuses=dict(STATS), slowest_s=SLOWEST[0])
