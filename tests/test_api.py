"""GraphQL API against a real PostgreSQL: every query, filter, grouping and order.

Expected answers are computed independently in Python from the rows the test inserted
(exact Decimal arithmetic), and the headline totals also from SQL GROUP BY over the base
table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from eth_utils import to_checksum_address

from tests.test_api_support import (
    CHAIN_ENUM,
    CHAIN_IDS,
    ENUM_CHAIN,
    HIGH,
    NO_TOTALS,
    T0,
    StatsKey,
    api_client,
    build_dataset,
    expected_ids,
    expected_stats,
    gql,
    messages,
    parse_time,
    rid,
    seed,
    stats,
    stats_by_key,
    token_address,
    trunc,
    walk,
)

DS = build_dataset()


@pytest.fixture(scope="module")
async def client(db_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed(db_dsn, DS)
    async with api_client(db_dsn) as c:
        yield c


# --------------------------------------------------------------------------------------
# Liquidations
# --------------------------------------------------------------------------------------

FULL_Q = """
query($id: ID!) {
  liquidation(id: $id) {
    id chain chainId blockNumber blockHash blockTime txHash txIndex logIndex pool market user
    liquidator debtToCover liquidatedCollateralAmount protocolFeeAmount receiveAToken
    collateralPrice debtPrice collateralUsd debtUsd finalized bonusUsd protocolFeeUsd
    collateralSeizedUsd closedFully
    collateralAsset { chain chainId address symbol decimals }
    debtAsset { chain chainId address symbol decimals }
    svr {
      aggregator roundId oracleTxHash recapturedUsd aaveUsd chainlinkUsd bonusUsd
      recaptureRate bidCount bestLosingBidUsd leadSeconds leadBlocks
    }
  }
}"""


def _pick(pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return next(r for r in DS.liquidations if pred(r))


@pytest.mark.parametrize(
    "pick",
    [
        lambda r: r["is_svr"] and r["debt_usd"] is not None,
        lambda r: not r["is_svr"] and r["protocol_fee_amount"] is None,
        lambda r: r["debt_usd"] is None,
        lambda r: r["collateral_asset"] == token_address(r["chain_id"], "NOMETA"),
        lambda r: DS.finalized(r),
    ],
    ids=["svr", "no-fee", "no-price", "asset-without-metadata", "finalized"],
)
async def test_liquidation_has_every_field_exact(
    client: httpx.AsyncClient, pick: Callable[[dict[str, Any]], bool]
) -> None:
    r = _pick(pick)
    body = await gql(client, FULL_Q, {"id": rid(r)})
    assert not body.get("errors"), body
    n = body["data"]["liquidation"]
    assets = {(c, a): (s, d) for c, a, s, d in DS.assets}

    def usd(v: Decimal | None) -> str | None:
        return None if v is None else format(v, "f")

    def price(v: Decimal | None) -> str | None:
        return None if v is None else format(v.scaleb(-8), "f")

    def asset(address: str) -> dict[str, Any]:
        symbol, decimals = assets.get((r["chain_id"], address), (None, None))
        return {
            "chain": CHAIN_ENUM[r["chain_id"]],
            "chainId": r["chain_id"],
            "address": to_checksum_address(address),
            "symbol": symbol,
            "decimals": decimals,
        }

    svr = None
    if r["is_svr"]:
        svr = {
            "aggregator": to_checksum_address(r["svr_aggregator"]),
            "roundId": str(r["svr_round_id"]),
            "oracleTxHash": r["svr_oracle_tx_hash"],
            "recapturedUsd": usd(r["svr_recaptured_usd"]),
            "aaveUsd": usd(r["svr_aave_usd"]),
            "chainlinkUsd": usd(r["svr_chainlink_usd"]),
            "bonusUsd": None,
            "recaptureRate": None,
            "leadSeconds": None,  # the dataset has no oracle updates
            "leadBlocks": None,
            "bidCount": r.get("svr_bid_count"),
            "bestLosingBidUsd": usd(r["svr_best_losing_bid_usd"])
            if r.get("svr_best_losing_bid_usd") is not None
            else None,
        }
        c_usd, d_usd = r["collateral_usd"], r["debt_usd"]
        if c_usd is not None and d_usd is not None:
            bonus = HIGH.subtract(c_usd, d_usd)
            svr["bonusUsd"] = usd(bonus)
            if bonus > 0 and r["svr_recaptured_usd"] is not None:
                rate = HIGH.divide(r["svr_recaptured_usd"], bonus).quantize(Decimal("1e-18"))
                svr["recaptureRate"] = usd(rate)
    fee = r["protocol_fee_amount"]
    assert n == {
        "id": rid(r),
        "chain": CHAIN_ENUM[r["chain_id"]],
        "chainId": r["chain_id"],
        "blockNumber": r["block_number"],
        "blockHash": r["block_hash"],
        "blockTime": r["block_time"].isoformat(),
        "txHash": r["tx_hash"],
        "txIndex": r["tx_index"],
        "logIndex": r["log_index"],
        "pool": to_checksum_address(r["pool"]),
        "market": r["market"],
        "user": to_checksum_address(r["user_address"]),
        "liquidator": to_checksum_address(r["liquidator"]),
        "debtToCover": str(int(r["debt_to_cover"])),
        "liquidatedCollateralAmount": str(int(r["liquidated_collateral_amount"])),
        "protocolFeeAmount": None if fee is None else str(int(fee)),
        "receiveAToken": r["receive_atoken"],
        "collateralPrice": price(r["collateral_price"]),
        "debtPrice": price(r["debt_price"]),
        "collateralUsd": usd(r["collateral_usd"]),
        "bonusUsd": usd(r["bonus_usd"]),
        "protocolFeeUsd": usd(r["protocol_fee_usd"]),
        "collateralSeizedUsd": usd(r["collateral_seized_usd"]),
        "closedFully": r["closed_fully"],
        "debtUsd": usd(r["debt_usd"]),
        "finalized": DS.finalized(r),
        "collateralAsset": asset(r["collateral_asset"]),
        "debtAsset": asset(r["debt_asset"]),
        "svr": svr,
    }
    # USD strings are exact: they parse back to the stored Decimal
    if r["debt_usd"] is not None:
        assert Decimal(n["debtUsd"]) == r["debt_usd"]


async def test_liquidation_by_id_missing_or_malformed(client: httpx.AsyncClient) -> None:
    body = await gql(client, FULL_Q, {"id": f"1:0x{'ab' * 32}:0"})
    assert body["data"]["liquidation"] is None and not body.get("errors")
    body = await gql(client, FULL_Q, {"id": "1:nothex:0"})
    assert messages(body) and "chainId:txHash:logIndex" in messages(body)[0]


U0 = DS.liquidations[5]["user_address"]
L0 = DS.liquidations[0]["liquidator"]
ETH_WETH = token_address(1, "WETH")
ETH_USDC = token_address(1, "USDC")
MID = (T0 + timedelta(days=4, hours=5, minutes=17)).isoformat()
LATE = (T0 + timedelta(days=9)).isoformat()

FILTERS: list[dict[str, Any]] = [
    {},
    {"chains": ["ETHEREUM"]},
    {"chains": ["POLYGON", "BASE"]},
    {"chains": []},
    {"chainIds": [42161, 999]},
    {"chains": ["ETHEREUM"], "chainIds": [8453]},
    {"user": U0},
    {"user": U0.upper().replace("0X", "0x")},
    {"liquidator": L0},
    {"collateralAsset": ETH_WETH},
    {"debtAsset": ETH_USDC, "collateralAsset": ETH_WETH},
    {"txHash": DS.liquidations[10]["tx_hash"]},
    {"svr": True},
    {"svr": False, "chains": ["ARBITRUM"]},
    {"finalized": True},
    {"finalized": False},
    {"timeFrom": MID},
    {"timeTo": MID},
    {"timeFrom": MID, "timeTo": LATE, "chains": ["BASE"]},
    {"timeFrom": "2026-01-28", "timeTo": "2026-01-29T00:00:00"},
    {"blockFrom": 1_000_500, "blockTo": 1_002_000},
    {"blockTo": 2_000_000},
    {"minDebtUsd": "2500"},
    {"minDebtUsd": 10000, "svr": True},
    {"minCollateralUsd": "0.5"},
    {"user": "0x" + "00" * 20},
    {"markets": ["prime"]},
    {"markets": ["etherfi", "core"], "chains": ["ETHEREUM"]},
    {"markets": ["core"], "svr": True, "timeFrom": MID},
    {"markets": []},
    {"markets": ["nosuch"]},
]


@pytest.mark.parametrize("f", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
async def test_filters_select_exactly_the_matching_rows(
    client: httpx.AsyncClient, f: dict[str, Any]
) -> None:
    q = """query($f: LiquidationFilter) {
      liquidations(filter: $f, first: 1000) {
        totalCount pageInfo { hasNextPage } edges { node { id } } } }"""
    expected = expected_ids(DS, f)
    ids: list[str] = []
    if len(expected) <= 1000:
        body = await gql(client, q, {"f": f})
        assert not body.get("errors"), body
        conn = body["data"]["liquidations"]
        ids = [e["node"]["id"] for e in conn["edges"]]
        assert conn["totalCount"] == len(expected)
        assert conn["pageInfo"]["hasNextPage"] is False
    else:
        ids = await walk(client, f, "BLOCK_TIME_DESC", 1000)
    assert ids == expected


@pytest.mark.parametrize("order", ["BLOCK_TIME_DESC", "BLOCK_TIME_ASC", "DEBT_USD_DESC",
                                   "DEBT_USD_ASC"])  # fmt: skip
@pytest.mark.parametrize(
    "f", [None, {"chains": ["POLYGON"], "svr": False}, {"svr": True}, {"markets": ["prime"]}]
)
async def test_cursor_walk_has_no_gap_or_duplicate(
    client: httpx.AsyncClient, order: str, f: dict[str, Any] | None
) -> None:
    ids = await walk(client, f, order, 97)
    assert len(ids) == len(set(ids))
    assert ids == expected_ids(DS, f or {}, order)


async def test_small_pages_across_ties(client: httpx.AsyncClient) -> None:
    """Pages of 1 and 2 rows across rows that share a block time and a USD value."""
    times = [r["block_time"] for r in DS.liquidations]
    busiest = max(set(times), key=times.count)
    assert times.count(busiest) >= 4
    ties = {
        "timeFrom": (busiest - timedelta(hours=2)).isoformat(),
        "timeTo": (busiest + timedelta(hours=2)).isoformat(),
    }
    for order in ("BLOCK_TIME_DESC", "BLOCK_TIME_ASC", "DEBT_USD_DESC", "DEBT_USD_ASC"):
        for page in (1, 2):
            assert await walk(client, ties, order, page) == expected_ids(DS, ties, order)


async def test_total_count_runs_only_when_selected(client: httpx.AsyncClient) -> None:
    db = client.app.state.db  # type: ignore[attr-defined]
    calls = 0
    original = db.fetchval

    async def counting(sql: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(sql)

    db.fetchval = counting
    try:
        await gql(client, "{ liquidations(first: 2) { edges { node { id } } } }")
        assert calls == 0
        body = await gql(client, "{ liquidations(first: 0) { totalCount edges { cursor } } }")
        assert calls == 1
        assert body["data"]["liquidations"] == {"totalCount": len(DS.liquidations), "edges": []}
    finally:
        del db.fetchval


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------

DAY2 = (T0 + timedelta(days=2)).isoformat()
DAY9 = (T0 + timedelta(days=9)).isoformat()
HOUR_ALIGNED = (T0 + timedelta(days=3, hours=13)).isoformat()
UNALIGNED = (T0 + timedelta(days=3, hours=13, minutes=30)).isoformat()

STATS_CASES: list[tuple[dict[str, Any] | None, list[str], str | None]] = [
    (None, [], "CHAIN_ROLLUP_DAILY"),
    (None, ["CHAIN"], "CHAIN_ROLLUP_DAILY"),
    (None, ["DAY"], "CHAIN_ROLLUP_DAILY"),
    (None, ["WEEK", "CHAIN"], "CHAIN_ROLLUP_DAILY"),
    (None, ["MONTH"], "CHAIN_ROLLUP_DAILY"),
    (None, ["HOUR"], "CHAIN_ROLLUP_HOURLY"),
    (None, ["HOUR", "CHAIN"], "CHAIN_ROLLUP_HOURLY"),
    ({"chains": ["BASE"]}, ["HOUR", "COLLATERAL_ASSET"], "LIQUIDATIONS"),
    (None, ["COLLATERAL_ASSET"], "LIQUIDATION_ROLLUP_DAY"),
    (None, ["DEBT_ASSET", "COLLATERAL_ASSET", "DAY"], "LIQUIDATION_ROLLUP_DAY"),
    (None, ["LIQUIDATOR"], "LIQUIDATOR_ROLLUP_DAILY"),
    (None, ["LIQUIDATOR", "CHAIN", "WEEK"], "LIQUIDATOR_ROLLUP_DAILY"),
    (None, ["LIQUIDATOR", "DEBT_ASSET"], "LIQUIDATIONS"),
    ({"liquidator": L0}, ["CHAIN"], "LIQUIDATOR_ROLLUP_DAILY"),
    ({"liquidator": L0, "collateralAsset": ETH_WETH}, [], "LIQUIDATIONS"),
    ({"liquidator": L0, "timeFrom": HOUR_ALIGNED}, ["CHAIN"], "LIQUIDATIONS"),
    ({"chains": ["ETHEREUM", "POLYGON"]}, ["CHAIN"], "CHAIN_ROLLUP_DAILY"),
    ({"chains": ["ARBITRUM"]}, ["MONTH", "CHAIN"], "CHAIN_ROLLUP_DAILY"),
    ({"collateralAsset": ETH_WETH}, ["DEBT_ASSET"], "LIQUIDATION_ROLLUP_DAY"),
    ({"debtAsset": ETH_USDC}, ["DAY"], "LIQUIDATION_ROLLUP_DAY"),
    ({"collateralAsset": ETH_WETH, "timeFrom": HOUR_ALIGNED}, ["CHAIN"], "LIQUIDATIONS"),
    ({"timeFrom": DAY2, "timeTo": DAY9}, ["CHAIN", "DAY"], "CHAIN_ROLLUP_DAILY"),
    ({"chains": ["BASE"], "timeFrom": DAY2, "timeTo": DAY9}, ["DAY"], "CHAIN_ROLLUP_DAILY"),
    ({"timeFrom": HOUR_ALIGNED}, ["CHAIN"], "CHAIN_ROLLUP_HOURLY"),
    ({"timeFrom": HOUR_ALIGNED, "timeTo": DAY9}, ["DAY"], "CHAIN_ROLLUP_HOURLY"),
    ({"timeFrom": UNALIGNED}, ["CHAIN"], "LIQUIDATIONS"),
    ({"timeTo": UNALIGNED}, ["HOUR"], "LIQUIDATIONS"),
    ({"liquidator": L0}, ["HOUR"], "LIQUIDATIONS"),
    ({"user": U0}, ["CHAIN"], "LIQUIDATIONS"),
    ({"svr": True}, ["CHAIN", "DAY"], "CHAIN_ROLLUP_DAILY"),
    ({"svr": True}, ["CHAIN"], "CHAIN_ROLLUP_DAILY"),
    ({"svr": False}, [], "CHAIN_ROLLUP_DAILY"),
    ({"svr": False}, ["DAY"], "CHAIN_ROLLUP_DAILY"),
    ({"svr": True, "chains": ["ETHEREUM"], "timeFrom": DAY2, "timeTo": DAY9}, ["CHAIN", "DAY"],
     "CHAIN_ROLLUP_DAILY"),
    ({"svr": True}, ["HOUR", "CHAIN"], "CHAIN_ROLLUP_HOURLY"),
    ({"svr": False, "timeFrom": HOUR_ALIGNED}, ["HOUR"], "CHAIN_ROLLUP_HOURLY"),
    ({"svr": True}, ["COLLATERAL_ASSET"], "LIQUIDATION_ROLLUP_DAY"),
    ({"svr": False, "debtAsset": ETH_USDC}, ["WEEK"], "LIQUIDATION_ROLLUP_DAY"),
    ({"svr": True}, ["LIQUIDATOR"], "LIQUIDATOR_ROLLUP_DAILY"),
    ({"svr": False, "liquidator": L0}, ["DAY"], "LIQUIDATOR_ROLLUP_DAILY"),
    ({"svr": True, "user": U0}, ["CHAIN"], "LIQUIDATIONS"),
    ({"finalized": False}, ["CHAIN"], "LIQUIDATIONS"),
    ({"minDebtUsd": "1000"}, ["CHAIN", "LIQUIDATOR"], "LIQUIDATIONS"),
    ({"blockFrom": 1_000_000, "blockTo": 1_001_000}, [], "LIQUIDATIONS"),
    ({"txHash": DS.liquidations[3]["tx_hash"]}, ["LIQUIDATOR"], "LIQUIDATIONS"),
    ({"chains": []}, ["CHAIN"], None),  # no rows, so no row to say where they came from
    (None, ["MARKET"], "CHAIN_ROLLUP_DAILY"),
    (None, ["CHAIN", "MARKET"], "CHAIN_ROLLUP_DAILY"),
    ({"markets": ["prime"]}, ["CHAIN"], "CHAIN_ROLLUP_DAILY"),
    ({"markets": ["prime", "etherfi"]}, ["MARKET", "DAY"], "CHAIN_ROLLUP_DAILY"),
    ({"markets": ["core"], "timeFrom": HOUR_ALIGNED}, ["MARKET", "HOUR"], "CHAIN_ROLLUP_HOURLY"),
    ({"markets": ["core"], "svr": True}, ["CHAIN", "MARKET"], "CHAIN_ROLLUP_DAILY"),
    ({"markets": ["prime"], "svr": False}, ["WEEK"], "CHAIN_ROLLUP_DAILY"),
    ({"markets": ["prime"]}, ["COLLATERAL_ASSET"], "LIQUIDATION_ROLLUP_DAY"),
    (None, ["MARKET", "DEBT_ASSET"], "LIQUIDATION_ROLLUP_DAY"),
    ({"markets": ["core"], "collateralAsset": ETH_WETH}, ["MARKET"], "LIQUIDATION_ROLLUP_DAY"),
    ({"markets": ["etherfi", "core"]}, ["LIQUIDATOR", "MARKET"], "LIQUIDATOR_ROLLUP_DAILY"),
    ({"markets": ["prime"], "liquidator": L0}, ["DAY"], "LIQUIDATOR_ROLLUP_DAILY"),
    ({"markets": ["prime"], "user": U0}, ["MARKET"], "LIQUIDATIONS"),
    ({"markets": ["core"], "timeFrom": UNALIGNED}, ["CHAIN", "MARKET"], "LIQUIDATIONS"),
    ({"markets": ["nosuch"]}, ["CHAIN"], None),
    ({"markets": ["nosuch"]}, [], "CHAIN_ROLLUP_DAILY"),  # the one row of totals, all zero
]  # fmt: skip


@pytest.mark.parametrize(
    ("f", "dims", "source"), STATS_CASES, ids=[str(i) for i in range(len(STATS_CASES))]
)
async def test_stats_equal_group_by_over_the_rows(
    client: httpx.AsyncClient, f: dict[str, Any] | None, dims: list[str], source: str | None
) -> None:
    result = await stats(client, f, dims)
    assert result["source"] == source
    expected = expected_stats(DS, f or {}, dims)
    if not dims and not expected:
        expected = {(None,) * 6: NO_TOTALS}
    assert stats_by_key(result["rows"]) == expected
    keys = [
        (
            r["period"] or "",
            r["chainId"] or 0,
            r["market"] or "",
            r["collateralAsset"] and r["collateralAsset"]["address"].lower(),
        )
        for r in result["rows"]
    ]
    assert keys == sorted(keys, key=lambda k: (k[0], k[1], k[2], k[3] or "")), "rows are ordered"


async def test_asset_dimensions_imply_chain_and_carry_metadata(client: httpx.AsyncClient) -> None:
    result = await stats(client, {"chains": ["ETHEREUM"]}, ["COLLATERAL_ASSET"])
    symbols = {r["collateralAsset"]["symbol"] for r in result["rows"]}
    assert symbols == {"WETH", "USDC", "WBTC", "LINK", "AAVE", None}  # NOMETA: no metadata
    assert all(r["chain"] == "ETHEREUM" for r in result["rows"])


async def test_per_chain_totals_equal_sql_group_by(client: httpx.AsyncClient, db_dsn: str) -> None:
    """The headline query ("Ethereum ~$3B over 58,106 liquidations") against plain SQL."""
    conn = await asyncpg.connect(db_dsn)
    try:
        sql = await conn.fetch(
            "SELECT chain_id, count(*) AS n, coalesce(sum(debt_usd), 0) AS debt,"
            " coalesce(sum(collateral_usd), 0) AS coll, count(*) FILTER (WHERE is_svr) AS s,"
            " coalesce(sum(debt_usd) FILTER (WHERE is_svr), 0) AS sd"
            " FROM liquidations GROUP BY chain_id ORDER BY chain_id"
        )
    finally:
        await conn.close()
    result = await stats(client, None, ["CHAIN"])
    got = [
        (r["chainId"], r["count"], Decimal(r["debtUsd"]), Decimal(r["collateralUsd"]),
         r["svrCount"], Decimal(r["svrDebtUsd"]))
        for r in result["rows"]
    ]  # fmt: skip
    assert got == [(r["chain_id"], r["n"], r["debt"], r["coll"], r["s"], r["sd"]) for r in sql]
    assert [r["chain"] for r in result["rows"]] == [CHAIN_ENUM[c] for c in sorted(CHAIN_IDS)]


async def test_per_market_totals_equal_sql_group_by(client: httpx.AsyncClient, db_dsn: str) -> None:
    """Grouped by chain and market, against plain SQL; Ethereum has three markets."""
    conn = await asyncpg.connect(db_dsn)
    try:
        sql = await conn.fetch(
            "SELECT chain_id, market, count(*) AS n, coalesce(sum(debt_usd), 0) AS debt,"
            " count(*) FILTER (WHERE is_svr) AS s FROM liquidations GROUP BY 1, 2 ORDER BY 1, 2"
        )
    finally:
        await conn.close()
    result = await stats(client, None, ["CHAIN", "MARKET"])
    assert result["source"] == "CHAIN_ROLLUP_DAILY"
    got = [
        (r["chainId"], r["market"], r["count"], Decimal(r["debtUsd"]), r["svrCount"])
        for r in result["rows"]
    ]
    assert got == [(r["chain_id"], r["market"], r["n"], r["debt"], r["s"]) for r in sql]
    assert [m for c, m, *_ in got if c == 1] == ["core", "etherfi", "prime"]
    ungrouped = await stats(client, {"markets": ["prime"]}, ["CHAIN"])
    assert [(r["chainId"], r["market"]) for r in ungrouped["rows"]] == [(1, None)]


CHAIN_ROLLUP_CASES: list[tuple[dict[str, Any] | None, list[str], str]] = [
    (None, ["CHAIN"], "CHAIN_ROLLUP_DAILY"),
    (None, ["DAY"], "CHAIN_ROLLUP_DAILY"),
    (None, ["CHAIN", "DAY"], "CHAIN_ROLLUP_DAILY"),
    (None, ["CHAIN", "HOUR"], "CHAIN_ROLLUP_HOURLY"),
    ({"chains": ["ETHEREUM", "BASE"]}, ["CHAIN", "DAY"], "CHAIN_ROLLUP_DAILY"),
    ({"timeFrom": DAY2, "timeTo": DAY9}, ["DAY"], "CHAIN_ROLLUP_DAILY"),
    ({"timeFrom": HOUR_ALIGNED, "timeTo": DAY9}, ["CHAIN"], "CHAIN_ROLLUP_HOURLY"),
    ({"svr": True}, ["CHAIN"], "CHAIN_ROLLUP_DAILY"),
    ({"svr": False}, ["CHAIN", "DAY"], "CHAIN_ROLLUP_DAILY"),
    ({"svr": True, "chains": ["ETHEREUM"], "timeFrom": DAY2}, ["DAY"], "CHAIN_ROLLUP_DAILY"),
    ({"svr": False, "timeTo": HOUR_ALIGNED}, ["CHAIN", "HOUR"], "CHAIN_ROLLUP_HOURLY"),
]

# The same totals straight from the base rows; $1..$4: chain ids, from, to, svr (each or NULL).
GROUP_BY_SQL = """
SELECT {chain} AS chain_id, {period} AS period, count(*) AS n,
       coalesce(sum(debt_usd), 0) AS debt, coalesce(sum(collateral_usd), 0) AS coll,
       count(*) FILTER (WHERE is_svr) AS s, coalesce(sum(debt_usd) FILTER (WHERE is_svr), 0) AS sd,
       coalesce(sum(bonus_usd), 0) AS bonus, coalesce(sum(protocol_fee_usd), 0) AS fee,
       coalesce(sum(collateral_seized_usd), 0) AS seized
FROM liquidations
WHERE ($1::integer[] IS NULL OR chain_id = ANY($1)) AND ($2::timestamptz IS NULL OR
       block_time >= $2) AND ($3::timestamptz IS NULL OR block_time < $3)
  AND ($4::boolean IS NULL OR is_svr = $4)
GROUP BY 1, 2
"""


@pytest.mark.parametrize(
    ("f", "dims", "source"),
    CHAIN_ROLLUP_CASES,
    ids=[str(i) for i in range(len(CHAIN_ROLLUP_CASES))],
)
async def test_chain_rollups_equal_sql_group_by(
    client: httpx.AsyncClient,
    db_dsn: str,
    f: dict[str, Any] | None,
    dims: list[str],
    source: str,
) -> None:
    """Stats by chain and period, served from the chain rollups, against SQL GROUP BY."""
    f = f or {}
    unit = next((u.lower() for u in ("HOUR", "DAY") if u in dims), None)
    sql = GROUP_BY_SQL.format(
        chain="chain_id" if "CHAIN" in dims else "NULL::integer",
        period=f"date_trunc('{unit}', block_time, 'UTC')" if unit else "NULL::timestamptz",
    )
    chains = [ENUM_CHAIN[c] for c in f["chains"]] if "chains" in f else None
    bounds = [parse_time(f[k]) if k in f else None for k in ("timeFrom", "timeTo")]
    conn = await asyncpg.connect(db_dsn)
    try:
        rows = await conn.fetch(sql, chains, *bounds, f.get("svr"))
    finally:
        await conn.close()
    want = {
        (r["chain_id"], r["period"], None, None, None, None): (
            r["n"], r["debt"], r["coll"], r["s"], r["sd"], r["bonus"], r["fee"], r["seized"]
        )
        for r in rows
    }  # fmt: skip
    result = await stats(client, f, dims)
    assert result["source"] == source
    assert stats_by_key(result["rows"]) == want


async def test_rollup_and_base_table_agree(client: httpx.AsyncClient) -> None:
    """blockFrom: 0 forces the base table without changing the answer."""
    for dims in (
        ["CHAIN", "DAY"],
        ["LIQUIDATOR", "WEEK"],
        ["HOUR", "CHAIN"],
        ["DEBT_ASSET"],
        ["MARKET", "CHAIN", "DAY"],
        ["MARKET", "COLLATERAL_ASSET"],
    ):
        for svr in (None, True, False):
            f = {} if svr is None else {"svr": svr}
            if "MARKET" in dims:
                f["markets"] = ["prime", "core"]
            fast = await stats(client, f, dims)
            slow = await stats(client, {**f, "blockFrom": 0}, dims)
            assert fast["source"] != "LIQUIDATIONS" and slow["source"] == "LIQUIDATIONS"
            assert stats_by_key(fast["rows"]) == stats_by_key(slow["rows"])


# --------------------------------------------------------------------------------------
# SVR revenue
# --------------------------------------------------------------------------------------

SVR_Q = """
query($f: SvrRevenueFilter, $g: [SvrRevenueDimension!]) {
  svrRevenue(filter: $f, groupBy: $g) {
    chain chainId market period aggregator svrLiquidationCount svrLiquidatedUsd
    recaptureCount recapturedUsd aaveUsd chainlinkUsd bonusUsd recaptureRate unsoldUpdates
  }
}"""


def expected_svr(f: dict[str, Any], dims: list[str]) -> dict[StatsKey, tuple[Any, ...]]:
    unit = next((u for u in ("DAY", "WEEK", "MONTH") if u in dims), None)

    def keep(row: dict[str, Any], aggregator: str | None) -> bool:
        if "chains" in f and CHAIN_ENUM[row["chain_id"]] not in f["chains"]:
            return False
        if "markets" in f and row["market"] not in f["markets"]:
            return False
        if "aggregator" in f and aggregator != f["aggregator"].lower():
            return False
        if "timeFrom" in f and row["block_time"] < parse_time(f["timeFrom"]):
            return False
        return not ("timeTo" in f and row["block_time"] >= parse_time(f["timeTo"]))

    def key(row: dict[str, Any], aggregator: str | None) -> StatsKey:
        return (
            row["chain_id"] if "CHAIN" in dims else None,
            trunc(row["block_time"], unit) if unit else None,
            aggregator if "AGGREGATOR" in dims else None,
            row["market"] if "MARKET" in dims else None,
        )

    acc: dict[StatsKey, list[Any]] = defaultdict(lambda: [0, Decimal(0), 0] + [Decimal(0)] * 4)
    for r in DS.liquidations:
        if r["is_svr"] and r["svr_aggregator"] and keep(r, r["svr_aggregator"]):
            a = acc[key(r, r["svr_aggregator"])]
            a[0] += 1
            a[1] = HIGH.add(a[1], r["debt_usd"] or 0)
            if r["collateral_usd"] is not None and r["debt_usd"] is not None:
                a[6] = HIGH.add(a[6], HIGH.subtract(r["collateral_usd"], r["debt_usd"]))
    for c in DS.recaptures:
        if keep(c, c["aggregator"] or ""):
            a = acc[key(c, c["aggregator"])]
            a[2] += 1
            a[3] = HIGH.add(a[3], c["amount_usd"])
            a[4] = HIGH.add(a[4], c["aave_usd"])
            a[5] = HIGH.add(a[5], c["chainlink_usd"])
    return {k: tuple(v) for k, v in acc.items()}


@pytest.mark.parametrize(
    ("f", "dims"),
    [
        (None, []),
        (None, ["CHAIN"]),
        (None, ["CHAIN", "AGGREGATOR"]),
        (None, ["DAY", "CHAIN"]),
        (None, ["WEEK"]),
        ({"chains": ["BASE"]}, ["MONTH", "AGGREGATOR"]),
        ({"timeFrom": DAY2, "timeTo": DAY9}, ["CHAIN", "DAY"]),
        ({"aggregator": DS.recaptures[1]["aggregator"]}, ["DAY"]),
        ({"chains": ["POLYGON"]}, ["CHAIN"]),
        (None, ["MARKET"]),
        (None, ["CHAIN", "MARKET"]),
        (None, ["CHAIN", "MARKET", "AGGREGATOR"]),
        ({"markets": ["prime"]}, ["DAY"]),
        ({"markets": ["core", "etherfi"], "chains": ["ETHEREUM"]}, ["MARKET", "WEEK"]),
        ({"markets": ["nosuch"]}, []),
    ],
)
async def test_svr_revenue_equals_group_by(
    client: httpx.AsyncClient, f: dict[str, Any] | None, dims: list[str]
) -> None:
    body = await gql(client, SVR_Q, {"f": f, "g": dims})
    assert not body.get("errors"), body
    rows = body["data"]["svrRevenue"]
    got = {
        (
            r["chainId"],
            parse_time(r["period"]) if r["period"] else None,
            r["aggregator"].lower() if r["aggregator"] else None,
            r["market"],
        ): (
            r["svrLiquidationCount"], Decimal(r["svrLiquidatedUsd"]), r["recaptureCount"],
            Decimal(r["recapturedUsd"]), Decimal(r["aaveUsd"]), Decimal(r["chainlinkUsd"]),
            Decimal(r["bonusUsd"]),
        )
        for r in rows
    }  # fmt: skip
    assert len(got) == len(rows)
    expected = expected_svr(f or {}, dims)
    if not dims and not expected:
        expected = {(None,) * 4: (0, Decimal(0), 0, Decimal(0), Decimal(0), Decimal(0), Decimal(0))}
    assert got == expected
    for r in rows:  # value-weighted: recaptured over the bonus it was competed for
        bonus = Decimal(r["bonusUsd"])
        rate = r["recaptureRate"]
        if bonus > 0:
            assert abs(Decimal(rate) - Decimal(r["recapturedUsd"]) / bonus) < Decimal("1e-17")
        else:
            assert rate is None
        assert r["unsoldUpdates"] == 0  # the dataset has no oracle updates
    for r in rows:  # the split adds up, exactly
        assert HIGH.add(Decimal(r["aaveUsd"]), Decimal(r["chainlinkUsd"])) == Decimal(
            r["recapturedUsd"]
        )


async def test_recaptures_of_no_liquidation_have_no_market(client: httpx.AsyncClient) -> None:
    """Grouped by market they make a row with market null; a markets filter leaves them out,
    while the totals keep them."""
    lone = [c for c in DS.recaptures if c["market"] is None]
    assert lone
    body = await gql(client, SVR_Q, {"g": ["MARKET"]})
    rows = {r["market"]: r for r in body["data"]["svrRevenue"]}
    assert set(rows) == {"core", "prime", "etherfi", None}
    assert rows[None]["recaptureCount"] == len(lone)
    assert rows[None]["svrLiquidationCount"] == 0
    total = await gql(client, SVR_Q, {})
    every = await gql(client, SVR_Q, {"f": {"markets": ["core", "prime", "etherfi"]}})
    (t,), (e,) = total["data"]["svrRevenue"], every["data"]["svrRevenue"]
    assert t["recaptureCount"] - e["recaptureCount"] == len(lone)
    assert Decimal(t["recapturedUsd"]) - Decimal(e["recapturedUsd"]) == sum(
        c["amount_usd"] for c in lone
    )


async def test_svr_split_is_65_35_per_chain(client: httpx.AsyncClient) -> None:
    body = await gql(client, SVR_Q, {"g": ["CHAIN"]})
    rows = body["data"]["svrRevenue"]
    assert {r["chain"] for r in rows} == {"ETHEREUM", "ARBITRUM", "BASE"}
    for r in rows:
        share = Decimal(r["aaveUsd"]) / Decimal(r["recapturedUsd"])
        assert share.quantize(Decimal("1e-15")) == Decimal("0.65")


async def test_svr_revenue_wants_whole_days(client: httpx.AsyncClient) -> None:
    body = await gql(client, SVR_Q, {"f": {"timeFrom": HOUR_ALIGNED}, "g": ["DAY"]})
    assert "midnight UTC" in messages(body)[0]


# --------------------------------------------------------------------------------------
# Status, assets, addresses
# --------------------------------------------------------------------------------------


async def test_indexer_status(client: httpx.AsyncClient) -> None:
    body = await gql(
        client,
        "{ indexerStatus { chain chainId name headBlock indexedBlock finalizedBlock lagBlocks"
        " halted updatedAt lastError } }",
    )
    rows = body["data"]["indexerStatus"]
    assert [r["chainId"] for r in rows] == sorted(CHAIN_IDS)
    for r in rows:
        head, final, indexed = DS.status[r["chainId"]]
        assert r["chain"] == CHAIN_ENUM[r["chainId"]]
        assert (r["headBlock"], r["finalizedBlock"], r["indexedBlock"]) == (head, final, indexed)
        assert r["lagBlocks"] == head - indexed
        assert r["halted"] is False and r["lastError"] is None
        assert parse_time(r["updatedAt"]).tzinfo is not None


async def test_assets(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ assets(chains: [BASE]) { chain address symbol decimals } }")
    rows = body["data"]["assets"]
    assert {r["symbol"] for r in rows} == {"WETH", "USDC", "WBTC", "LINK", "AAVE"}
    assert all(r["chain"] == "BASE" for r in rows)
    assert all(r["address"] == to_checksum_address(r["address"]) for r in rows)


async def test_addresses_any_case_in_checksummed_out(client: httpx.AsyncClient) -> None:
    q = """query($f: LiquidationFilter) { liquidations(filter: $f, first: 1000) {
        edges { node { user liquidator collateralAsset { address } } } } }"""
    lower = await gql(client, q, {"f": {"user": U0}})
    upper = await gql(client, q, {"f": {"user": "0x" + U0[2:].upper()}})
    checksummed = await gql(client, q, {"f": {"user": to_checksum_address(U0)}})
    assert lower == upper == checksummed
    edges = lower["data"]["liquidations"]["edges"]
    assert edges and all(e["node"]["user"] == to_checksum_address(U0) for e in edges)


@pytest.mark.parametrize(
    "query",
    [
        "{ liquidationStats(groupBy: [CHAIN]) { chain count debtUsd collateralUsd svrCount } }",
        "{ svrRevenue(groupBy: [CHAIN]) { chain svrLiquidationCount recapturedUsd aaveUsd"
        " chainlinkUsd } }",
    ],
)
async def test_readme_examples(client: httpx.AsyncClient, query: str) -> None:
    body = await gql(client, query)
    assert not body.get("errors"), body
    rows = next(iter(body["data"].values()))
    assert rows and all(r["chain"] for r in rows)
