"""Hostile and malformed requests are refused with a message, never a 500 or a traceback;
and a property-based fuzz of query arguments."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from api import queries
from tests.test_api_support import (
    CHAIN_ENUM,
    DAYS,
    NO_TOTALS,
    T0,
    api_client,
    build_dataset,
    expected_ids,
    expected_stats,
    gql,
    matches,
    messages,
    seed,
    sort_rows,
    stats_by_key,
)

DS = build_dataset(n_per_chain=200, seed=11)
BY_ID = {f"{r['chain_id']}:{r['tx_hash']}:{r['log_index']}": r for r in DS.liquidations}


@pytest.fixture(scope="module")
async def client(db_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed(db_dsn, DS)
    async with api_client(db_dsn) as c:
        yield c


def assert_clean(response: httpx.Response) -> dict[str, Any]:
    """Not a 500, JSON with an error message, nothing that looks like a traceback, and no
    echo of a huge input."""
    assert response.status_code != 500, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert len(response.content) < 8192
    body: dict[str, Any] = response.json()
    assert body.get("errors"), body
    assert all(isinstance(e.get("message"), str) and e["message"] for e in body["errors"])
    assert not any("internal error" in e["message"] for e in body["errors"]), body
    return body


async def refused(client: httpx.AsyncClient, query: str, **variables: Any) -> str:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body = assert_clean(response)
    assert response.status_code == 200
    return " | ".join(e["message"] for e in body["errors"])


PAGE = """query($f: LiquidationFilter, $first: Int!, $after: String, $o: LiquidationOrder!) {
  liquidations(filter: $f, first: $first, after: $after, orderBy: $o) {
    edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"""


async def first_cursor(
    client: httpx.AsyncClient, order: str = "BLOCK_TIME_DESC", f: dict[str, Any] | None = None
) -> str:
    body = await gql(client, PAGE, {"first": 3, "o": order, "f": f})
    cursor: str = body["data"]["liquidations"]["pageInfo"]["endCursor"]
    return cursor


# --------------------------------------------------------------------------------------
# Query shape limits
# --------------------------------------------------------------------------------------


async def test_depth_bomb(client: httpx.AsyncClient) -> None:
    query = "{ " + "a { " * 40 + "b" + " }" * 40 + " }"
    assert "nested 41 levels deep" in await refused(client, query)
    intro = "{ __schema { types { " + "ofType { " * 30 + "name" + " }" * 30 + " } } }"
    assert "introspection is nested" in await refused(client, intro)


async def test_introspection_fan_out_is_refused_but_standard_introspection_works(
    client: httpx.AsyncClient,
) -> None:
    bomb = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    assert "introspection selects `fields`" in await refused(client, bomb)
    from graphql import get_introspection_query

    body = await gql(client, get_introspection_query(descriptions=True))
    assert not body.get("errors") and body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_fragment_bomb_is_refused_quickly(client: httpx.AsyncClient) -> None:
    n = 60
    frags = (
        "\n".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
        + f"\nfragment F{n} on Query {{ indexerStatus {{ chainId }} }}"
    )
    started = time.perf_counter()
    message = await refused(client, "{ ...F0 }\n" + frags)
    assert "query cost astronomical exceeds" in message
    assert time.perf_counter() - started < 2.0
    cyclic = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
    assert "Cannot spread fragment" in await refused(client, cyclic)


async def test_alias_flood(client: httpx.AsyncClient) -> None:
    query = "{ " + " ".join(f"a{i}: indexerStatus {{ chainId }}" for i in range(50)) + " }"
    assert "50 aliases; the limit is 15" in await refused(client, query)


async def test_cost_of_many_big_pages(client: httpx.AsyncClient) -> None:
    node = "id chainId blockNumber blockTime txHash user liquidator debtUsd collateralUsd " * 1
    page = f"liquidations(first: 1000) {{ edges {{ cursor node {{ {node} }} }} }}"
    query = "{ " + " ".join(f"p{i}: {page}" for i in range(6)) + " }"  # 6 x 11,000
    assert "query cost" in await refused(client, query)
    # the same pages one at a time are fine
    body = await gql(client, "{ " + page + " }")
    assert not body.get("errors")


async def test_token_flood(client: httpx.AsyncClient) -> None:
    query = "{ indexerStatus { " + "chainId " * 5000 + "} }"
    assert "token" in (await refused(client, query)).lower()


@pytest.mark.parametrize("first", [100_000, 1001, -1])
async def test_page_size_is_capped(client: httpx.AsyncClient, first: int) -> None:
    message = await refused(client, PAGE, first=first, o="BLOCK_TIME_DESC")
    assert "first must be between 0 and 1000" in message


async def test_int_overflow(client: httpx.AsyncClient) -> None:
    message = await refused(client, "{ liquidations(first: 99999999999) { totalCount } }")
    assert "Int cannot represent" in message


async def test_no_mutations_or_subscriptions(client: httpx.AsyncClient) -> None:
    assert "mutation" in (await refused(client, "mutation { x }")).lower()
    response = await client.post("/graphql", json={"query": "subscription { x }"})
    assert response.status_code != 500 and response.json()["errors"]


# --------------------------------------------------------------------------------------
# Cursors
# --------------------------------------------------------------------------------------


async def test_tampered_and_garbage_cursors(client: httpx.AsyncClient) -> None:
    good = await first_cursor(client)
    raw = bytearray(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))
    # change the log index digit inside the signed payload
    flipped = bytes(raw).replace(b',1,"', b',2,"') if b',1,"' in raw else bytes(raw[:-1]) + b"x"
    tampered = base64.urlsafe_b64encode(flipped).rstrip(b"=").decode()
    payload = json.loads(bytes(raw[:-12]))
    payload[3] = "1; DROP TABLE liquidations"
    unsigned = base64.urlsafe_b64encode(json.dumps(payload).encode() + bytes(raw[-12:]))
    for bad in [
        tampered,
        good[:-1] + ("A" if good[-1] != "A" else "B"),
        good[:20],
        "",
        "abc",
        "!!!!",
        "' OR 1=1 --",
        "A" * 5000,
        unsigned.rstrip(b"=").decode(),
        base64.urlsafe_b64encode(b"[1]").decode(),
    ]:
        message = await refused(client, PAGE, first=5, after=bad, o="BLOCK_TIME_DESC")
        assert "invalid cursor" in message, (bad, message)


async def test_cursor_is_bound_to_order_and_filter(client: httpx.AsyncClient) -> None:
    cursor = await first_cursor(client, "BLOCK_TIME_DESC")
    message = await refused(client, PAGE, first=5, after=cursor, o="DEBT_USD_DESC")
    assert "ordered by BLOCK_TIME_DESC" in message
    message = await refused(
        client, PAGE, first=5, after=cursor, o="BLOCK_TIME_DESC", f={"svr": True}
    )
    assert "different filter" in message


async def test_cursor_from_another_secret_is_refused(db_dsn: str) -> None:
    async with api_client(db_dsn, cursor_secret="one") as one:
        cursor = await first_cursor(one)
    async with api_client(db_dsn, cursor_secret="two") as two:
        message = await refused(two, PAGE, first=5, after=cursor, o="BLOCK_TIME_DESC")
    assert "invalid cursor" in message
    async with api_client(db_dsn, cursor_secret="one") as again:  # another process, same key
        body = await gql(again, PAGE, {"first": 5, "after": cursor, "o": "BLOCK_TIME_DESC"})
        assert not body.get("errors")


def test_cursors_of_the_release_before_markets_stay_valid() -> None:
    """An unset `markets` leaves a filter's fingerprint (bound into its cursors) as the
    release before markets computed it; a set one makes another listing."""
    before = {  # LiquidationWhere(...).fingerprint() of that release
        (): "ea24203d7581830c",
        ((1,), True): "17a869f611a429cd",
    }
    assert queries.LiquidationWhere().fingerprint() == before[()]
    assert queries.LiquidationWhere(chain_ids=(1,), svr=True).fingerprint() == before[((1,), True)]
    assert queries.LiquidationWhere(markets=("core",)).fingerprint() not in before.values()


# --------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------

LIQ = "query($f: LiquidationFilter) { liquidations(filter: $f) { totalCount } }"
STATS = """query($f: LiquidationFilter, $g: [StatsDimension!]) {
  liquidationStats(filter: $f, groupBy: $g) { count } }"""
SVR = """query($f: SvrRevenueFilter, $g: [SvrRevenueDimension!]) {
  svrRevenue(filter: $f, groupBy: $g) { recapturedUsd } }"""


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        (LIQ, {"f": {"user": "0x123"}}, "invalid address"),
        (LIQ, {"f": {"liquidator": "hello"}}, "invalid address"),
        (LIQ, {"f": {"debtAsset": "0x" + "g" * 40}}, "invalid address"),
        (LIQ, {"f": {"collateralAsset": 12}}, "invalid address"),
        (LIQ, {"f": {"user": "0x" + "a" * 30_000}}, "invalid address"),
        (LIQ, {"f": {"chains": ["SOLANA"]}}, "SOLANA"),
        (LIQ, {"f": {"chains": "ETHEREUM ETHEREUM"}}, "Chain"),
        (LIQ, {"f": {"chainIds": [-1]}}, "not a chain id"),
        (LIQ, {"f": {"markets": [""]}}, "markets: a market name is not empty"),
        (LIQ, {"f": {"markets": ["core", "  "]}}, "markets: a market name is not empty"),
        (LIQ, {"f": {"markets": ["m" * 65]}}, "at most 64 characters"),
        (LIQ, {"f": {"markets": [f"m{i}" for i in range(65)]}}, "markets: at most 64 markets"),
        (LIQ, {"f": {"markets": [7]}}, "String"),
        (STATS, {"f": {"markets": [""]}, "g": ["MARKET"]}, "a market name is not empty"),
        (SVR, {"f": {"markets": ["x" * 100]}}, "at most 64 characters"),
        (SVR, {"f": {"markets": [""]}, "g": ["MARKET"]}, "a market name is not empty"),
        ('{ svrFeeds(markets: [""]) { market } }', {}, "a market name is not empty"),
        ("{ svrFeeds(chainIds: [0]) { market } }", {}, "not a chain id"),
        (LIQ, {"f": {"txHash": "0x1234"}}, "invalid txHash"),
        (LIQ, {"f": {"timeFrom": "yesterday"}}, "invalid DateTime"),
        (LIQ, {"f": {"timeFrom": "2026-02-01", "timeTo": "2026-01-01"}}, "before timeTo"),
        (LIQ, {"f": {"timeTo": "9" * 200}}, "invalid DateTime"),
        (LIQ, {"f": {"blockFrom": -5}}, "blockFrom must be >= 0"),
        (LIQ, {"f": {"blockFrom": 10, "blockTo": 5}}, "blockFrom must be <= blockTo"),
        (LIQ, {"f": {"minDebtUsd": "NaN"}}, "must be finite"),
        (LIQ, {"f": {"minDebtUsd": "1e400"}}, "from 0 to 1e30"),
        (LIQ, {"f": {"minDebtUsd": "-1"}}, "from 0 to 1e30"),
        (LIQ, {"f": {"minDebtUsd": "1" * 500}}, "longer than"),
        (LIQ, {"f": {"minCollateralUsd": "ten"}}, "invalid Decimal"),
        (LIQ, {"f": {"svr": "yes"}}, "Boolean"),
        (LIQ, {"f": {"nope": 1}}, "nope"),
        (PAGE, {"first": 5, "o": "RANDOM"}, "RANDOM"),
        (STATS, {"g": ["DAY", "HOUR"]}, "at most one of HOUR, DAY, WEEK, MONTH"),
        (STATS, {"g": ["YEAR"]}, "YEAR"),
        (
            STATS,
            {"g": ["HOUR"], "f": {"timeFrom": "1970-01-01", "timeTo": "2100-01-01"}},
            "hour buckets; at most 10,000",
        ),
        (
            STATS,
            {"g": ["DAY", "CHAIN"], "f": {"timeFrom": "0001-01-01", "timeTo": "9999-12-31"}},
            "day buckets; at most 10,000",
        ),
        (SVR, {"g": ["DAY"], "f": {"timeFrom": "1900-01-01", "timeTo": "2200-01-01"}}, "day"),
        (SVR, {"f": {"timeTo": "2026-02-01T12:00:00Z"}}, "midnight UTC"),
        (SVR, {"f": {"aggregator": "0xnope"}}, "invalid address"),
        ('{ liquidation(id: "1:2") { id } }', {}, "chainId:txHash:logIndex"),
        ('{ liquidation(id: "' + "9" * 5000 + '") { id } }', {}, "chainId:txHash:logIndex"),
        ("{ nothing }", {}, "Cannot query field"),
        ('{ liquidations(filter: {user: "0x12"}) { totalCount } }', {}, "invalid address"),
    ],
)
async def test_bad_arguments_get_a_message(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], expected: str
) -> None:
    assert expected in await refused(client, query, **variables)


async def test_too_many_grouped_rows(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "MAX_GROUPED_ROWS", 20)
    message = await refused(client, STATS, g=["HOUR", "CHAIN"])
    assert "more than 20 rows" in message
    assert "more than 20 rows" in await refused(client, SVR, g=["DAY", "CHAIN", "AGGREGATOR"])


# --------------------------------------------------------------------------------------
# HTTP level
# --------------------------------------------------------------------------------------


async def test_huge_bodies_and_query_strings(client: httpx.AsyncClient) -> None:
    big = "x" * 100_000
    for payload in (
        {"query": "{ indexerStatus { chainId } }", "variables": {"u": big}},
        {"query": "{ indexerStatus { chainId } } # " + big},
    ):
        response = await client.post("/graphql", json=payload)
        assert response.status_code == 413
        assert "request body above" in assert_clean(response)["errors"][0]["message"]
    long_get = "{ indexerStatus { chainId } }#" + "x" * 20_000
    response = await client.get("/graphql", params={"query": long_get})
    assert response.status_code == 414
    assert_clean(response)


async def test_streamed_body_without_length_is_capped(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    response = await client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert_clean(response)


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        (b"{not json", "application/json", "unable to parse"),
        (b"[1, 2]", "application/json", "expected a JSON object"),
        (b"5", "application/json", "expected a JSON object"),
        (b"[" * 20_000 + b"]" * 20_000, "application/json", "nested too deeply"),
        (b'{"a": ' * 5000 + b"1" + b"}" * 5000, "application/json", "nested too deeply"),
        (b"\xff\xfe\xfa", "application/json", "unable to parse"),
        (b'{"query": 5}', "application/json", "must be a string"),
        (b'{"query": "{ __typename }", "variables": [1]}', "application/json", "variables"),
        (b"{}", "application/json", "No GraphQL query"),
        (b"query=1", "text/plain", "Unsupported content type"),
    ],
)
async def test_malformed_requests(
    client: httpx.AsyncClient, content: bytes, content_type: str, expected: str
) -> None:
    response = await client.post(
        "/graphql", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == 400, response.text
    body = assert_clean(response)
    assert expected.lower() in body["errors"][0]["message"].lower()


async def test_wrong_method(client: httpx.AsyncClient) -> None:
    response = await client.put("/graphql", content=b"{}")
    assert response.status_code == 405


# --------------------------------------------------------------------------------------
# Fuzz
# --------------------------------------------------------------------------------------

ADDRESSES = sorted(
    {r["user_address"] for r in DS.liquidations[:40]}
    | {r["liquidator"] for r in DS.liquidations}
    | {r["collateral_asset"] for r in DS.liquidations}
)
TX_HASHES = [r["tx_hash"] for r in DS.liquidations[::37]]
ORDERS = ["BLOCK_TIME_DESC", "BLOCK_TIME_ASC", "DEBT_USD_DESC", "DEBT_USD_ASC"]

junk = st.one_of(
    st.text(max_size=30),
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.floats(allow_nan=True),
)
address = st.one_of(
    st.sampled_from(ADDRESSES),
    st.sampled_from(ADDRESSES).map(str.upper).map(lambda a: "0x" + a[2:]),
    st.text(alphabet="0123456789abcdefxX", max_size=44).map(lambda s: "0x" + s),
    junk,
)
moment = st.datetimes(
    min_value=datetime(2026, 1, 20), max_value=datetime(2026, 2, 12), timezones=st.just(UTC)
)
time_value = st.one_of(
    moment.map(lambda t: t.isoformat()),
    moment.map(lambda t: t.replace(minute=0, second=0, microsecond=0).isoformat()),
    moment.map(lambda t: t.strftime("%Y-%m-%d")),
    junk,
)
usd = st.one_of(
    st.decimals(min_value=0, max_value=300_000, places=2).map(str),
    st.integers(0, 300_000),
    st.sampled_from(["NaN", "-1", "1e31", "Infinity", "0.000000000000000001"]),
    junk,
)
hostile_filters = st.fixed_dictionaries(
    {},
    optional={
        "chains": st.lists(st.sampled_from([*CHAIN_ENUM.values(), "SOLANA"]), max_size=3),
        "chainIds": st.lists(st.sampled_from([1, 137, 8453, 31337, 0, -4]), max_size=3),
        "markets": st.one_of(
            st.lists(st.sampled_from(["core", "prime", "etherfi", "", "CORE"]), max_size=3),
            junk,
        ),
        "user": address,
        "liquidator": address,
        "collateralAsset": address,
        "debtAsset": address,
        "txHash": st.one_of(st.sampled_from(TX_HASHES), junk),
        "svr": st.one_of(st.booleans(), junk),
        "finalized": st.booleans(),
        "timeFrom": time_value,
        "timeTo": time_value,
        "blockFrom": st.one_of(st.integers(-3, 5_010_000), junk),
        "blockTo": st.one_of(st.integers(0, 5_010_000), junk),
        "minDebtUsd": usd,
        "minCollateralUsd": usd,
    },
)
plausible_filters = st.fixed_dictionaries(
    {},
    optional={
        "chains": st.lists(st.sampled_from(list(CHAIN_ENUM.values())), max_size=3),
        "chainIds": st.lists(st.sampled_from([1, 137, 8453, 31337]), max_size=2),
        "markets": st.lists(st.sampled_from(["core", "prime", "etherfi", "nosuch"]), max_size=2),
        "user": st.sampled_from(ADDRESSES),
        "liquidator": st.sampled_from(ADDRESSES).map(lambda a: "0x" + a[2:].upper()),
        "collateralAsset": st.sampled_from(ADDRESSES),
        "txHash": st.sampled_from(TX_HASHES),
        "svr": st.booleans(),
        "finalized": st.booleans(),
        "timeFrom": moment.map(lambda t: t.isoformat()),
        "timeTo": moment.map(lambda t: t.isoformat()),
        "blockFrom": st.integers(0, 5_010_000),
        "minDebtUsd": st.decimals(min_value=0, max_value=300_000, places=3).map(str),
    },
)


def _order_key(order: str) -> Any:
    if order.startswith("BLOCK_TIME"):
        return lambda r: r["block_time"]
    return lambda r: r["debt_usd"] if r["debt_usd"] is not None else Decimal(-1)


FUZZ_PAGE = """query($f: LiquidationFilter, $first: Int!, $after: String, $o: LiquidationOrder!) {
  liquidations(filter: $f, first: $first, after: $after, orderBy: $o) {
    edges { node { id } } pageInfo { hasNextPage endCursor } } }"""

FUZZ_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def check_page(client: httpx.AsyncClient, f: Any, first: Any, order: Any, after: Any) -> None:
    """Refused cleanly, or exactly the head of the oracle's answer."""
    variables = {"f": f, "first": first, "o": order, "after": after}
    # json.dumps lets NaN and Infinity through (as Python's parser accepts them)
    content = json.dumps({"query": FUZZ_PAGE, "variables": variables}).encode()
    response = await client.post(
        "/graphql", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    if body.get("errors"):
        event("refused")
        assert_clean(response)
        return
    event("accepted")
    assert after is None  # a made-up string is never a valid cursor
    first = int(first)  # GraphQL Int also takes an integral float such as 3.0
    got = [e["node"]["id"] for e in body["data"]["liquidations"]["edges"]]
    expected = expected_ids(DS, f, order)
    assert got == expected[:first]
    assert body["data"]["liquidations"]["pageInfo"]["hasNextPage"] == (len(expected) > first)
    for i in got:
        assert matches(DS, BY_ID[i], f)
    rows = [BY_ID[i] for i in got]
    assert rows == sort_rows(rows, order)


@FUZZ_SETTINGS
@given(
    f=st.one_of(hostile_filters, junk),
    first=st.one_of(st.integers(-5, 1200), junk),
    order=st.one_of(st.sampled_from(ORDERS), st.text(max_size=10), junk),
    after=st.one_of(st.none(), st.text(max_size=60), junk),
)
async def test_fuzz_hostile_arguments(
    client: httpx.AsyncClient, f: Any, first: Any, order: Any, after: Any
) -> None:
    await check_page(client, f, first, order, after)


@FUZZ_SETTINGS
@given(
    f=plausible_filters,
    first=st.one_of(st.integers(0, 1000), st.sampled_from([0, 1, 1000])),
    order=st.sampled_from(ORDERS),
)
async def test_fuzz_filters_match_the_oracle(
    client: httpx.AsyncClient, f: dict[str, Any], first: int, order: str
) -> None:
    await check_page(client, f, first, order, None)


STATS_FUZZ = """query($f: LiquidationFilter, $g: [StatsDimension!]) {
  liquidationStats(filter: $f, groupBy: $g) {
    source chainId market period liquidator count debtUsd collateralUsd svrCount svrDebtUsd bonusUsd
    protocolFeeUsd collateralSeizedUsd collateralAsset { address } debtAsset { address } } }"""

valid_filters = st.fixed_dictionaries(
    {},
    optional={
        "chains": st.lists(st.sampled_from(list(CHAIN_ENUM.values())), max_size=2),
        "markets": st.lists(st.sampled_from(["core", "prime", "etherfi"]), max_size=2),
        "liquidator": st.sampled_from(sorted({r["liquidator"] for r in DS.liquidations})),
        "collateralAsset": st.sampled_from(
            sorted({r["collateral_asset"] for r in DS.liquidations})
        ),
        "svr": st.booleans(),
        "timeFrom": st.sampled_from(
            [(T0 + timedelta(days=d, hours=h)).isoformat() for d in range(DAYS) for h in (0, 7)]
            + [(T0 + timedelta(days=3, minutes=17)).isoformat()]
        ),
        "minDebtUsd": st.sampled_from(["0", "999.5", "20000"]),
        "blockTo": st.integers(1_000_000, 5_010_000),
    },
)
dimensions = st.lists(
    st.sampled_from(
        [
            "CHAIN",
            "MARKET",
            "HOUR",
            "DAY",
            "WEEK",
            "MONTH",
            "COLLATERAL_ASSET",
            "DEBT_ASSET",
            "LIQUIDATOR",
        ]
    ),
    max_size=3,
    unique=True,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(f=valid_filters, dims=dimensions)
async def test_fuzz_stats_equal_group_by(
    client: httpx.AsyncClient, f: dict[str, Any], dims: list[str]
) -> None:
    response = await client.post(
        "/graphql", json={"query": STATS_FUZZ, "variables": {"f": f, "g": dims}}
    )
    assert response.status_code == 200
    body = response.json()
    if len({"HOUR", "DAY", "WEEK", "MONTH"} & set(dims)) > 1:
        assert "at most one of" in messages(body)[0]
        return
    assert not body.get("errors"), body
    expected = expected_stats(DS, f, dims)
    if not dims and not expected:
        expected = {(None,) * 6: NO_TOTALS}
    assert stats_by_key(body["data"]["liquidationStats"]) == expected
