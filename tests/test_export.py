"""Bulk export: CSV and Parquet carry exactly the rows and values the database holds for
a filter (the GraphQL LiquidationFilter, as query parameters); mistakes are 400s."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from api.queries import EXPORT_COLUMNS
from tests.test_api_support import HIGH, api_client, build_dataset, matches, rid, seed

DS = build_dataset(n_per_chain=120, seed=11)
NAMES = [name for name, _, _ in EXPORT_COLUMNS]
AMOUNTS = [name for name, kind, _ in EXPORT_COLUMNS if kind == "amount"]
USD = [name for name, kind, _ in EXPORT_COLUMNS if kind == "usd"]
LIQUIDATOR = DS.liquidators[2]
DB_ROWS = """
SELECT chain_id, tx_hash, log_index, debt_to_cover::text, liquidated_collateral_amount::text,
       protocol_fee_amount::text, collateral_price::text, debt_price::text,
       collateral_usd::text, debt_usd::text, svr_recaptured_usd::text, svr_aave_usd::text,
       svr_chainlink_usd::text, svr_bid_count, svr_best_losing_bid_usd::text, block_time
FROM liquidations WHERE {where}
"""
FILTERS: list[tuple[dict[str, str], dict[str, Any], str]] = [
    ({}, {}, "TRUE"),
    ({"chains": "ETHEREUM"}, {"chains": ["ETHEREUM"]}, "chain_id = 1"),
    (
        {"chains": "ETHEREUM,BASE", "svr": "true"},
        {"chains": ["ETHEREUM", "BASE"], "svr": True},
        "chain_id IN (1, 8453) AND is_svr",
    ),
    (
        {"markets": "prime", "timeFrom": "2026-01-25T12:00:00Z", "timeTo": "2026-01-26"},
        {"markets": ["prime"], "timeFrom": "2026-01-25T12:00:00Z", "timeTo": "2026-01-26"},
        "market = 'prime' AND block_time >= '2026-01-25T12:00Z' AND block_time < '2026-01-26Z'",
    ),
    (
        {"liquidator": LIQUIDATOR.upper().replace("0X", "0x"), "minDebtUsd": "1000"},
        {"liquidator": LIQUIDATOR, "minDebtUsd": "1000"},
        f"liquidator = '{LIQUIDATOR}' AND debt_usd >= 1000",
    ),
]


@pytest.fixture(scope="module")
async def client(db_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed(db_dsn, DS)
    async with api_client(db_dsn) as c:
        yield c


async def db_rows(dsn: str, where: str) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(DB_ROWS.format(where=where))
    finally:
        await conn.close()
    return {f"{r['chain_id']}:{r['tx_hash']}:{r['log_index']}": r for r in rows}


def csv_rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == NAMES
    return list(reader)


def key(row: dict[str, Any]) -> str:
    return f"{row['chain_id']}:{row['tx_hash']}:{row['log_index']}"


@pytest.mark.parametrize(("params", "graphql_filter", "where"), FILTERS)
async def test_csv_equals_the_database(
    client: httpx.AsyncClient,
    db_dsn: str,
    params: dict[str, str],
    graphql_filter: dict[str, Any],
    where: str,
) -> None:
    response = await client.get("/export/liquidations.csv", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="liquidations.csv"' in response.headers["content-disposition"]
    rows = csv_rows(response.text)
    expected = await db_rows(db_dsn, where)
    oracle = {rid(r) for r in DS.liquidations if matches(DS, r, graphql_filter)}
    assert len(rows) == len(expected) == len(oracle) > 0
    assert {key(r) for r in rows} == set(expected) == oracle
    # oldest first
    times = [r["block_time"] for r in rows]
    assert times == sorted(times)
    # every NUMERIC as PostgreSQL spells it: exact, never a float
    for r in rows:
        db = expected[key(r)]
        for name in AMOUNTS + USD:
            assert r[name] == (db[name] or ""), name
        assert r["block_time"] == db["block_time"].strftime("%Y-%m-%dT%H:%M:%SZ")
    debt = sum((Decimal(r["debt_usd"]) for r in rows if r["debt_usd"]), Decimal(0))
    exact = sum((Decimal(d["debt_usd"]) for d in expected.values() if d["debt_usd"]), Decimal(0))
    assert debt == exact
    oracle_debt = Decimal(0)
    for r in DS.liquidations:
        if matches(DS, r, graphql_filter) and r["debt_usd"] is not None:
            oracle_debt = HIGH.add(oracle_debt, r["debt_usd"])
    assert HIGH.plus(debt) == oracle_debt


@pytest.mark.parametrize(("params", "graphql_filter", "where"), FILTERS[1:3])
async def test_parquet_equals_the_database(
    client: httpx.AsyncClient,
    db_dsn: str,
    params: dict[str, str],
    graphql_filter: dict[str, Any],
    where: str,
) -> None:
    response = await client.get("/export/liquidations.parquet", params=params)
    assert response.status_code == 200, response.text
    table = pq.read_table(io.BytesIO(response.content))
    assert table.schema.names == NAMES
    for name in AMOUNTS:
        assert table.schema.field(name).type == pa.string()
    for name in USD:
        t = table.schema.field(name).type
        assert pa.types.is_decimal(t) or t == pa.string(), (name, t)
    assert pa.types.is_decimal(table.schema.field("debt_usd").type)
    assert table.schema.field("block_time").type == pa.timestamp("us", tz="UTC")
    expected = await db_rows(db_dsn, where)
    rows = table.to_pylist()
    assert len(rows) == len(expected) > 0
    for r in rows:
        db = expected[key(r)]
        for name in AMOUNTS:
            assert r[name] == db[name], name
        for name in USD:
            want = None if db[name] is None else Decimal(db[name])
            got = None if r[name] is None else Decimal(r[name])
            assert got == want, name
        assert r["block_time"] == db["block_time"]
    total = sum((r["debt_usd"] for r in rows if r["debt_usd"] is not None), Decimal(0))
    assert total == sum(
        (Decimal(d["debt_usd"]) for d in expected.values() if d["debt_usd"]), Decimal(0)
    )


async def test_parquet_of_nothing_is_a_valid_empty_file(client: httpx.AsyncClient) -> None:
    response = await client.get("/export/liquidations.parquet", params={"chainIds": "999"})
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(response.content))
    assert table.num_rows == 0 and table.schema.names == NAMES
    csv_response = await client.get("/export/liquidations.csv", params={"chainIds": "999"})
    assert csv_response.text == ",".join(NAMES) + "\n"


async def test_list_parameters_repeat_or_take_commas(client: httpx.AsyncClient) -> None:
    a = await client.get("/export/liquidations.csv?chainIds=1&chainIds=137")
    b = await client.get("/export/liquidations.csv?chainIds=1,137")
    c = await client.get("/export/liquidations.csv?chains=ETHEREUM,POLYGON")
    assert a.status_code == b.status_code == c.status_code == 200
    assert a.text == b.text == c.text
    assert {r["chain_id"] for r in csv_rows(a.text)} == {"1", "137"}


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("chain=ETHEREUM", "unknown parameter 'chain'"),
        ("chains=MOON", "chains.0: Value 'MOON' does not exist in 'Chain' enum"),
        ("user=0x12", "user: invalid address '0x12'"),
        ("blockTo=abc", "blockTo: Int cannot represent non-integer value: 'abc'"),
        ("blockFrom=5&blockTo=4", "blockFrom must be <= blockTo"),
        ("blockTo=-1", "blockTo must be >= 0"),
        ("timeFrom=yesterday", "timeFrom: invalid DateTime 'yesterday'"),
        ("timeFrom=2026-02-01&timeTo=2026-01-01", "timeFrom must be before timeTo"),
        ("svr=yes", "svr: Boolean cannot represent a non boolean value: 'yes'"),
        ("svr=true&svr=false", "svr is given 2 times"),
        ("minDebtUsd=-5", "minDebtUsd must be a number from 0 to 1e30"),
        ("txHash=0x12", "invalid txHash '0x12'"),
        ("markets=", ""),  # an empty list: no market matches, not an error
    ],
)
async def test_bad_filters_are_400s(client: httpx.AsyncClient, query: str, words: str) -> None:
    for path in ("/export/liquidations.csv", "/export/liquidations.parquet"):
        response = await client.get(f"{path}?{query}")
        if not words:
            assert response.status_code == 200
            continue
        assert response.status_code == 400, response.text
        error = response.json()["errors"][0]
        assert words in error["message"], error["message"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await client.get("/healthz")).status_code == 200
