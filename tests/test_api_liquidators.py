"""Liquidators, their concentration, and borrowers, against a GROUP BY computed here from
the rows the test inserted (exact Decimal arithmetic), for the filters that the rollup
answers and those that need the base table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from eth_utils import to_checksum_address

from tests.test_api_support import (
    CHAIN_ENUM,
    HIGH,
    Dataset,
    api_client,
    build_dataset,
    gql,
    matches,
    messages,
    parse_time,
    seed,
)

DS = build_dataset(n_per_chain=2000)  # 10^4 liquidations
PLACES = Decimal("1e-18")


@pytest.fixture(scope="module")
async def client(db_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed(db_dsn, DS)
    async with api_client(db_dsn) as c:
        yield c


def per_liquidator(ds: Dataset, f: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"count": 0, "debt": Decimal(0), "bonus": Decimal(0), "chains": set(), "t": []}
    )
    for r in ds.liquidations:
        if not matches(ds, r, f):
            continue
        a = out[r["liquidator"]]
        a["count"] += 1
        a["debt"] = HIGH.add(a["debt"], r["debt_usd"] or 0)
        a["bonus"] = HIGH.add(a["bonus"], r["bonus_usd"] or 0)
        a["chains"].add(r["chain_id"])
        a["t"].append(r["block_time"])
    return out


SORTS = {"COUNT": "count", "DEBT_USD": "debt", "BONUS_USD": "bonus"}

LIQUIDATORS_Q = """
query($f: LiquidationFilter, $first: Int!, $after: String, $o: LiquidatorOrder!) {
  liquidators(filter: $f, first: $first, after: $after, orderBy: $o) {
    source
    edges { cursor node { address count debtUsd bonusUsd chains chainIds firstSeen lastSeen } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""

ROLLUP = "LIQUIDATOR_ROLLUP_DAILY"
CASES = [
    ({}, "LIQUIDATOR_ROLLUP_DAILY"),
    ({"chains": ["ETHEREUM", "BASE"]}, "LIQUIDATOR_ROLLUP_DAILY"),
    ({"svr": True, "markets": ["core"]}, "LIQUIDATOR_ROLLUP_DAILY"),
    ({"svr": False}, "LIQUIDATOR_ROLLUP_DAILY"),
    ({"timeFrom": "2026-01-28T00:00:00Z", "timeTo": "2026-01-31T00:00:00Z"}, ROLLUP),
    ({"timeFrom": "2026-02-01T05:00:00Z"}, "LIQUIDATIONS"),  # not a whole day
    ({"minDebtUsd": "1000"}, "LIQUIDATIONS"),
]


async def walk_liquidators(
    client: httpx.AsyncClient, f: dict[str, Any], order: str, page: int
) -> tuple[list[dict[str, Any]], set[str]]:
    nodes: list[dict[str, Any]] = []
    sources: set[str] = set()
    after = None
    for _ in range(1000):
        body = await gql(client, LIQUIDATORS_Q, {"f": f, "first": page, "after": after, "o": order})
        assert not body.get("errors"), body
        conn = body["data"]["liquidators"]
        sources.add(conn["source"])
        assert len(conn["edges"]) <= page
        nodes.extend(e["node"] for e in conn["edges"])
        assert conn["pageInfo"]["hasPreviousPage"] == (after is not None)
        if not conn["pageInfo"]["hasNextPage"]:
            return nodes, sources
        after = conn["pageInfo"]["endCursor"]
    raise AssertionError("no last page")


@pytest.mark.parametrize("order", list(SORTS))
@pytest.mark.parametrize(("f", "source"), CASES, ids=[str(i) for i in range(len(CASES))])
async def test_liquidators_equal_group_by(
    client: httpx.AsyncClient, f: dict[str, Any], source: str | None, order: str
) -> None:
    expected = per_liquidator(DS, f)
    nodes, sources = await walk_liquidators(client, f, order, page=7)
    if source is not None:
        assert sources == {source}
    key = SORTS[order]
    want = sorted(expected.items(), key=lambda kv: (-kv[1][key], kv[0]))
    assert [n["address"] for n in nodes] == [to_checksum_address(a) for a, _ in want]
    for node, (_, a) in zip(nodes, want, strict=True):
        assert node["count"] == a["count"]
        assert Decimal(node["debtUsd"]) == a["debt"]
        assert Decimal(node["bonusUsd"]) == a["bonus"]
        assert node["chainIds"] == sorted(a["chains"])
        assert node["chains"] == [CHAIN_ENUM[c] for c in sorted(a["chains"])]
        assert parse_time(node["firstSeen"]) == min(a["t"])
        assert parse_time(node["lastSeen"]) == max(a["t"])
    assert len(want) > 1 or f.get("minDebtUsd")  # the cases hold several liquidators


async def test_a_liquidators_cursor_is_bound_to_its_order_and_filter(
    client: httpx.AsyncClient,
) -> None:
    body = await gql(client, LIQUIDATORS_Q, {"f": {}, "first": 1, "o": "COUNT"})
    cursor = body["data"]["liquidators"]["pageInfo"]["endCursor"]
    for variables, needle in (
        ({"f": {}, "first": 1, "after": cursor, "o": "DEBT_USD"}, "ordered by COUNT"),
        ({"f": {"svr": True}, "first": 1, "after": cursor, "o": "COUNT"}, "different filter"),
        ({"f": {}, "first": 1, "after": cursor[:-3] + "abc", "o": "COUNT"}, "invalid cursor"),
        ({"f": {}, "first": 1001, "o": "COUNT"}, "first must be between"),
    ):
        body = await gql(client, LIQUIDATORS_Q, variables)
        assert any(needle in m for m in messages(body)), (variables, body)
    # a cursor of the liquidations listing is no cursor of this one
    page = await gql(client, "{ liquidations(first: 1) { pageInfo { endCursor } } }")
    other = page["data"]["liquidations"]["pageInfo"]["endCursor"]
    body = await gql(client, LIQUIDATORS_Q, {"f": {}, "first": 1, "after": other, "o": "COUNT"})
    assert any("invalid cursor" in m for m in messages(body)), body


CONCENTRATION_Q = """
query($f: LiquidationFilter) {
  liquidatorConcentration(filter: $f) {
    uniqueLiquidators count debtUsd top5DebtUsd top5Share herfindahl source
  }
}"""


def _rounded(value: Decimal) -> Decimal:
    return value.quantize(PLACES, rounding=ROUND_HALF_UP, context=HIGH)


@pytest.mark.parametrize(("f", "source"), CASES, ids=[str(i) for i in range(len(CASES))])
async def test_concentration_equals_group_by(
    client: httpx.AsyncClient, f: dict[str, Any], source: str | None
) -> None:
    expected = per_liquidator(DS, f)
    body = await gql(client, CONCENTRATION_Q, {"f": f})
    assert not body.get("errors"), body
    got = body["data"]["liquidatorConcentration"]
    if source is not None:
        assert got["source"] == source
    debts = sorted((a["debt"] for a in expected.values()), reverse=True)
    total = sum(debts, Decimal(0))
    top5 = sum(debts[:5], Decimal(0))
    assert got["uniqueLiquidators"] == len(expected)
    assert got["count"] == sum(a["count"] for a in expected.values())
    assert Decimal(got["debtUsd"]) == total
    assert Decimal(got["top5DebtUsd"]) == top5
    squares = sum((HIGH.multiply(d, d) for d in debts), Decimal(0))
    assert Decimal(got["top5Share"]) == _rounded(HIGH.divide(top5, total))
    assert Decimal(got["herfindahl"]) == _rounded(HIGH.divide(squares, HIGH.multiply(total, total)))
    assert 0 < Decimal(got["herfindahl"]) <= 1


async def test_concentration_of_nothing(client: httpx.AsyncClient) -> None:
    empty = {"timeFrom": "2001-01-01T00:00:00Z", "timeTo": "2001-01-02T00:00:00Z"}
    body = await gql(client, CONCENTRATION_Q, {"f": empty})
    got = body["data"]["liquidatorConcentration"]
    assert got["uniqueLiquidators"] == 0 and got["count"] == 0
    assert got["top5Share"] is None and got["herfindahl"] is None


BORROWER_Q = """
query($u: Address!, $c: [Chain!]) {
  borrowerStats(user: $u, chains: $c) {
    user count debtUsd bonusUsd collateralSeizedUsd
    chains { chain chainId count debtUsd bonusUsd collateralSeizedUsd firstSeen lastSeen }
  }
}"""


def _busiest_borrower() -> str:
    """A borrower liquidated on several chains and in several markets."""
    chains: dict[str, set[int]] = defaultdict(set)
    markets: dict[str, set[str]] = defaultdict(set)
    for r in DS.liquidations:
        chains[r["user_address"]].add(r["chain_id"])
        markets[r["user_address"]].add(r["market"])
    return max(chains, key=lambda u: (len(markets[u]) > 1, len(chains[u]), u))


@pytest.mark.parametrize("chains", [None, ["ETHEREUM", "POLYGON"]])
async def test_borrower_stats_span_chains_and_markets(
    client: httpx.AsyncClient, chains: list[str] | None
) -> None:
    user = _busiest_borrower()
    f: dict[str, Any] = {"user": user, **({"chains": chains} if chains else {})}
    rows = [r for r in DS.liquidations if matches(DS, r, f)]
    assert len({r["chain_id"] for r in rows}) > 1 and len({r["market"] for r in rows}) > 1
    body = await gql(client, BORROWER_Q, {"u": user.upper().replace("0X", "0x"), "c": chains})
    assert not body.get("errors"), body
    got = body["data"]["borrowerStats"]
    assert got["user"] == to_checksum_address(user)
    assert got["count"] == len(rows)

    def total(rs: list[dict[str, Any]], column: str) -> Decimal:
        out = Decimal(0)
        for r in rs:
            out = HIGH.add(out, r[column] or 0)
        return out

    assert Decimal(got["debtUsd"]) == total(rows, "debt_usd")
    assert Decimal(got["bonusUsd"]) == total(rows, "bonus_usd")
    assert Decimal(got["collateralSeizedUsd"]) == total(rows, "collateral_seized_usd")
    by_chain: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_chain[r["chain_id"]].append(r)
    assert [c["chainId"] for c in got["chains"]] == sorted(by_chain)
    for c in got["chains"]:
        rs = by_chain[c["chainId"]]
        assert c["chain"] == CHAIN_ENUM[c["chainId"]]
        assert c["count"] == len(rs)
        assert Decimal(c["debtUsd"]) == total(rs, "debt_usd")
        assert Decimal(c["bonusUsd"]) == total(rs, "bonus_usd")
        assert parse_time(c["firstSeen"]) == min(r["block_time"] for r in rs)
        assert parse_time(c["lastSeen"]) == max(r["block_time"] for r in rs)
    # the same borrower's liquidations through the list, across chains and markets
    listed = await gql(
        client,
        "query($f: LiquidationFilter) { liquidations(filter: $f, first: 1000) {"
        " totalCount edges { node { chainId market } } } }",
        {"f": f},
    )
    edges = listed["data"]["liquidations"]["edges"]
    assert listed["data"]["liquidations"]["totalCount"] == len(rows) == len(edges)


async def test_borrower_without_liquidations(client: httpx.AsyncClient) -> None:
    body = await gql(client, BORROWER_Q, {"u": "0x" + "ab" * 20, "c": None})
    got = body["data"]["borrowerStats"]
    assert got["count"] == 0 and got["chains"] == [] and Decimal(got["debtUsd"]) == 0
    body = await gql(client, BORROWER_Q, {"u": "0x1234", "c": None})
    assert any("invalid address" in m for m in messages(body)), body
