"""svrFeeds: the windows of the AaveOracles' price sources (asset_source_windows over
asset_sources), checked against windows computed here from the rows inserted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from eth_utils import to_checksum_address

from tests.test_api_support import CHAIN_ENUM, addr, api_client, gql, h, messages

DUAL = "DualAggregator 1.0.0"
OCR2 = "AccessControlledOCR2Aggregator 1.0.0"
WETH, USDC, WBTC, NOMETA = (addr("asset", s) for s in ("WETH", "USDC", "WBTC", "NOMETA"))
SYMBOLS = {WETH: ("WETH", 18), USDC: ("USDC", 6), WBTC: ("WBTC", 8)}
WITH_METADATA = (1, 8453, 42161)  # chains whose assets have rows in `assets`


def source(
    chain_id: int,
    market: str,
    block: int,
    log_index: int,
    asset: str,
    is_svr: bool,
    aggregator: bool = True,
) -> dict[str, Any]:
    key = (chain_id, market, block, log_index)
    return {
        "chain_id": chain_id,
        "market": market,
        "oracle": addr("oracle", chain_id, market),
        "block_number": block,
        "block_hash": h("block", chain_id, block),
        "tx_hash": h("tx", *key),
        "log_index": log_index,
        "asset": asset,
        "source": addr("source", *key),
        "aggregator": addr("aggregator", *key) if aggregator else None,
        "is_svr": is_svr,
        "type_and_version": (DUAL if is_svr else OCR2) if aggregator else None,
    }


# Inserted out of order: the view orders them.
SOURCES = [
    source(1, "core", 300, 4, WETH, False),  # replaces the SVR feed below
    source(1, "core", 100, 2, WETH, False),
    source(1, "core", 200, 1, WETH, True),
    source(1, "core", 50, 0, USDC, True),  # in force
    source(1, "core", 120, 7, WBTC, True),
    source(1, "core", 120, 9, WBTC, True),  # same block, later log: takes over at once
    source(1, "prime", 150, 3, WETH, True),
    source(1, "prime", 90, 3, USDC, False, aggregator=False),  # nothing behind it
    source(8453, "core", 10, 1, NOMETA, True),  # an asset without metadata
    source(42161, "core", 70, 2, WETH, False),
    source(31337, "devnet", 5, 0, WETH, True),  # a chain outside the enum
]


def windows() -> list[dict[str, Any]]:
    """Each source with the block of the asset's next source in its market (None: last),
    ordered as the API orders them."""
    out = []
    for s in SOURCES:
        later = sorted(
            (o["block_number"], o["log_index"])
            for o in SOURCES
            if (o["chain_id"], o["market"], o["asset"]) == (s["chain_id"], s["market"], s["asset"])
            and (o["block_number"], o["log_index"]) > (s["block_number"], s["log_index"])
        )
        out.append({**s, "to_block": later[0][0] if later else None})
    return sorted(out, key=lambda w: (w["chain_id"], w["market"], w["asset"], w["block_number"]))


def as_api(w: dict[str, Any]) -> dict[str, Any]:
    known = w["chain_id"] in WITH_METADATA
    symbol, decimals = SYMBOLS.get(w["asset"], (None, None)) if known else (None, None)
    return {
        "chain": CHAIN_ENUM.get(w["chain_id"]),
        "chainId": w["chain_id"],
        "market": w["market"],
        "oracle": to_checksum_address(w["oracle"]),
        "asset": {
            "address": to_checksum_address(w["asset"]),
            "symbol": symbol,
            "decimals": decimals,
        },
        "source": to_checksum_address(w["source"]),
        "aggregator": to_checksum_address(w["aggregator"]) if w["aggregator"] else None,
        "isSvr": w["is_svr"],
        "typeAndVersion": w["type_and_version"],
        "fromBlock": w["block_number"],
        "toBlock": w["to_block"],
    }


Q = """query($chains: [Chain!], $ids: [Int!], $markets: [String!], $svrOnly: Boolean) {
  svrFeeds(chains: $chains, chainIds: $ids, markets: $markets, svrOnly: $svrOnly) {
    chain chainId market oracle asset { address symbol decimals } source aggregator isSvr
    typeAndVersion fromBlock toBlock
  }
}"""
DEFAULT_Q = "{ svrFeeds { chainId market asset { symbol } isSvr fromBlock toBlock } }"


@pytest.fixture(scope="module")
async def client(db_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    conn = await asyncpg.connect(db_dsn)
    try:
        columns = list(SOURCES[0])
        await conn.copy_records_to_table(
            "asset_sources",
            records=[tuple(s[c] for c in columns) for s in SOURCES],
            columns=columns,
        )
        for chain_id in WITH_METADATA:
            await conn.executemany(
                "INSERT INTO assets VALUES ($1, $2, $3, $4)",
                [(chain_id, a, sym, dec) for a, (sym, dec) in SYMBOLS.items()],
            )
    finally:
        await conn.close()
    async with api_client(db_dsn) as c:
        yield c


CASES: list[tuple[dict[str, Any], Any]] = [
    ({}, lambda w: w["is_svr"]),
    ({"svrOnly": True}, lambda w: w["is_svr"]),
    ({"svrOnly": False}, lambda w: True),
    ({"svrOnly": None}, lambda w: True),  # null: no condition, as in the filters
    ({"chains": ["ETHEREUM"]}, lambda w: w["is_svr"] and w["chain_id"] == 1),
    ({"chains": ["BASE"], "ids": [31337]}, lambda w: w["is_svr"] and w["chain_id"] != 1),
    ({"ids": [42161], "svrOnly": False}, lambda w: w["chain_id"] == 42161),
    ({"markets": ["prime"], "svrOnly": False}, lambda w: w["market"] == "prime"),
    ({"markets": ["core", "devnet"]}, lambda w: w["is_svr"] and w["market"] != "prime"),
    (
        {"chains": ["ETHEREUM"], "markets": ["core"]},
        lambda w: w["is_svr"] and (w["chain_id"], w["market"]) == (1, "core"),
    ),
    ({"markets": []}, lambda w: False),
    ({"chains": ["POLYGON"]}, lambda w: False),
]


@pytest.mark.parametrize(("args", "keep"), CASES, ids=[str(i) for i in range(len(CASES))])
async def test_svr_feeds_are_the_source_windows(
    client: httpx.AsyncClient, args: dict[str, Any], keep: Any
) -> None:
    body = await gql(client, Q, args)
    assert not body.get("errors"), body
    assert body["data"]["svrFeeds"] == [as_api(w) for w in windows() if keep(w)]


async def test_a_replaced_svr_feed_ends_where_its_successor_starts(
    client: httpx.AsyncClient,
) -> None:
    body = await gql(client, DEFAULT_Q)
    rows = body["data"]["svrFeeds"]
    weth = [
        r for r in rows if (r["chainId"], r["market"], r["asset"]["symbol"]) == (1, "core", "WETH")
    ]
    assert weth == [
        {"chainId": 1, "market": "core", "asset": {"symbol": "WETH"}, "isSvr": True,
         "fromBlock": 200, "toBlock": 300}
    ]  # fmt: skip
    wbtc = [(r["fromBlock"], r["toBlock"]) for r in rows if r["asset"]["symbol"] == "WBTC"]
    assert wbtc == [(120, 120), (120, None)]
    in_force = [r for r in rows if r["toBlock"] is None]
    assert {(r["chainId"], r["market"]) for r in in_force} == {
        (1, "core"), (1, "prime"), (8453, "core"), (31337, "devnet")
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('{ svrFeeds(markets: [""]) { market } }', "a market name is not empty"),
        ("{ svrFeeds(chainIds: [-3]) { market } }", "not a chain id"),
        ('{ svrFeeds(svrOnly: "yes") { market } }', "Boolean"),
    ],
)
async def test_svr_feeds_bad_arguments(
    client: httpx.AsyncClient, query: str, expected: str
) -> None:
    body = await gql(client, query)
    assert body.get("data") is None or body["data"].get("svrFeeds") is None
    assert any(expected in m for m in messages(body)), body
