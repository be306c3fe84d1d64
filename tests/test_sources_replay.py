"""SVR feed discovery against a replayed Ethereum history (tests/rpc_standin.py, a stand-in
for a node, at the Aave address book's real addresses): what `resolve` finds behind each
source, what `discover_sources` keeps and reads next, the windows the book answers from, and
how `open()` treats configured contracts that are not on the chain."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from indexer.config import ChainConfig, parse_config
from indexer.decode.topics import ASSET_SOURCE_UPDATED, ORACLE_TOPICS
from indexer.enrich.sources import Resolved, SourceBook, resolve
from indexer.pipeline import ChainIndexer, PoolUnusable
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import RangeTooLarge, RpcError, classify
from indexer.store import writer
from tests import rpc_standin as s
from tests.conftest import drop_database, make_database
from tests.rpc_standin import RpcStandIn, ethereum_history

LIMIT = 50_000  # the stand-in provider's eth_getLogs span limit (the config allows more)

# The pools as the address book spells them (the configuration lowercases them).
CORE = {
    "market": "core",
    "address": "0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2",
    "oracle": "0x54586bE62E3c3580375aE3723C145253060Ca0C2",
    "start_block": s.CORE_DEPLOY,
}
PRIME = {  # no start_block, as in chains.toml: its deployment is found on-chain
    "market": "prime",
    "address": "0x4e033931ad43597d96D6bcc25c280717730B58B1",
    "oracle": "0xE3C061981870C0C7b1f3C4F4bB36B95f1F260BE6",
}
BASE_ON_ETHEREUM = {  # AaveV3Base's pool and oracle: no code on Ethereum
    "market": "base",
    "address": "0xA238Dd80C259a72e81d7e4664a9801593F98d1c5",
    "oracle": "0x2Cc0Fc26eD4563A5ce5e8bdcfe1A2878676Ae156",
}
ARBITRUM_ON_ETHEREUM = {  # AaveV3Arbitrum's
    "market": "arbitrum",
    "address": "0x794a61358D6845594F94dc1DB02A252b5b4814aD",
    "oracle": "0xb56c2F0B653B2e0b10C9b928C8580Ac5Df02C7C7",
}

OCR2, DUAL = s.OCR2_VERSION, s.DUAL_VERSION
ETH_BASE, LINK_BASE = s.AAVE_SVR_ETH_USD_BASE, s.AAVE_SVR_LINK_USD_BASE
FINALIZED = s.HEAD - 77  # the stand-in's "finalized" block


def ethereum(url: str, pools: list[dict[str, Any]], **chain: Any) -> ChainConfig:
    """Pools and oracles only: the SVR feeds are left to discovery (no aggregators)."""
    body = {
        "chain_id": 1,
        "rpc_urls": [url],
        "max_block_range": 200_000,
        "requests_per_second": 5_000,
        "pools": pools,
        "svr": {"model": "mev-share"},
        **chain,
    }
    return parse_config({"chains": {"ethereum": body}}).chains["ethereum"]


@pytest.fixture
def fresh_dsn(pg_template: str) -> Iterator[str]:
    """A database of its own for a test that changes the chain's state."""
    dsn = make_database(pg_template)
    yield dsn
    drop_database(dsn)


def covered(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Served eth_getLogs spans merged, checking that none overlaps another."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            raise AssertionError(f"span {start}-{end} read twice")
        if merged and start == merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


# -- the stand-in itself ------------------------------------------------------------------


async def test_the_stand_in_answers_as_a_node_would() -> None:
    """Filters, tags, reverts and refusals as the tests below rely on them."""
    assert s.ASSET_SOURCE_UPDATED == ASSET_SOURCE_UPDATED
    async with RpcStandIn(ethereum_history(), max_log_span=LIMIT) as node:
        client = RpcClient([node.url], chain="ethereum", requests_per_second=5_000)
        try:
            finalized = await client.call("eth_getBlockByNumber", ["finalized", False])
            assert int(finalized["number"], 16) == FINALIZED
            assert await client.call("eth_getBlockByNumber", [hex(s.HEAD + 1), False]) is None
            block = s.CORE_ETH_SVR
            window = {"fromBlock": hex(block), "toBlock": hex(block)}
            everything = await client.call("eth_getLogs", [window])
            assert len(everything) == 6
            rounds = await client.call(
                "eth_getLogs",
                [{**window, "topics": [[s.SECONDARY_ROUND_ID_UPDATED, s.UPGRADED]]}],
            )
            assert [int(log["logIndex"], 16) for log in rounds] == [0, 1, 5]
            aave_only = await client.call(
                "eth_getLogs",
                [{**window, "address": [ETH_BASE], "topics": [s.SECONDARY_ROUND_ID_UPDATED]}],
            )
            assert [int(log["logIndex"], 16) for log in aave_only] == [0, 5]
            by_asset = await client.call(
                "eth_getLogs",
                [{**window, "topics": [None, s.address_topic(s.WSTETH)]}],
            )
            assert [int(log["logIndex"], 16) for log in by_asset] == [4]
            wide = {"fromBlock": hex(block - LIMIT), "toBlock": hex(block)}
            with pytest.raises(RangeTooLarge):
                await client.call("eth_getLogs", [wide])
            answers = await client.batch(
                [
                    ("eth_getCode", [s.CORE_POOL, hex(s.CORE_DEPLOY - 1)]),
                    ("eth_getCode", [s.CORE_POOL, hex(s.CORE_DEPLOY)]),
                    ("eth_call", [{"to": s.ETH_USD, "data": s.selector("typeAndVersion()")}]),
                    ("eth_call", [{"to": s.GHO_FIXED_PRICE, "data": s.selector("aggregator()")}]),
                    ("eth_call", [{"to": s.BASE_POOL, "data": s.selector("aggregator()")}]),
                ]
            )
            assert answers[0] == "0x" and len(answers[1]) > 2
            assert isinstance(answers[2], RpcError) and isinstance(answers[3], RpcError)
            assert answers[4] == "0x"
        finally:
            await client.close()
    refusal = s.range_refusal("alchemy", 100, 9_000, 2_000)
    refused = classify(refusal, "eth_getLogs")
    assert isinstance(refused, RangeTooLarge) and refused.suggested == (100, 2_099)


# -- 1. resolve ---------------------------------------------------------------------------

#: Every (source, block) of the history, and a few more, with what stands behind each.
RESOLVED = {
    # plain feeds: proxy -> OCR2 aggregator, the one of the block (ETH/USD changed phase)
    (s.ETH_USD, s.CORE_DEPLOY): Resolved(s.ETH_USD_OCR2_A, False, OCR2),
    (s.ETH_USD, s.PRIME_DEPLOY): Resolved(s.ETH_USD_OCR2_B, False, OCR2),
    (s.BTC_USD, s.CORE_DEPLOY): Resolved(s.BTC_USD_OCR2, False, OCR2),
    (s.LINK_USD, s.CORE_DEPLOY): Resolved(s.LINK_USD_OCR2, False, OCR2),
    (s.LINK_USD, s.CORE_LINK_BACK): Resolved(s.LINK_USD_OCR2, False, OCR2),
    (s.USDC_USD, s.CORE_DEPLOY): Resolved(s.USDC_USD_OCR2, False, OCR2),
    (s.USDC_USD, s.PRIME_DEPLOY): Resolved(s.USDC_USD_OCR2, False, OCR2),
    # a source answering no probe
    (s.GHO_FIXED_PRICE, s.GHO_LISTED): Resolved(None, False, None),
    # CAPO -> plain proxy -> OCR2
    (s.WSTETH_CAPO_OLD, s.WSTETH_CAPO): Resolved(s.ETH_USD_OCR2_B, False, OCR2),
    # SVR feed proxy -> DualAggregator
    (s.AAVE_SVR_LINK_USD, s.CORE_LINK_SVR): Resolved(LINK_BASE, True, DUAL),
    (s.AAVE_SVR_LINK_USD, s.CORE_LINK_SVR_AGAIN): Resolved(LINK_BASE, True, DUAL),
    (s.AAVE_SVR_ETH_USD, s.CORE_ETH_SVR): Resolved(ETH_BASE, True, DUAL),
    (s.AAVE_SVR_ETH_USD, s.PRIME_ETH_SVR): Resolved(ETH_BASE, True, DUAL),
    # CAPO -> SVR feed proxy -> DualAggregator
    (s.WSTETH_CAPO_SVR, s.CORE_ETH_SVR): Resolved(ETH_BASE, True, DUAL),
    # not in the history: the DualAggregator itself as a source; the SVR proxy before it
    # existed (no code: every probe answers nothing)
    (ETH_BASE, s.CORE_ETH_SVR): Resolved(ETH_BASE, True, DUAL),
    (s.AAVE_SVR_ETH_USD, s.SVR_FEEDS_DEPLOYED - 1): Resolved(None, False, None),
}
#: How many contracts lie on each source's path (the source, then what stands behind it).
PATH_LENGTH = {s.GHO_FIXED_PRICE: 1, ETH_BASE: 1, s.WSTETH_CAPO_OLD: 3, s.WSTETH_CAPO_SVR: 3}


def path_length(source: str, block: int) -> int:
    if source == s.AAVE_SVR_ETH_USD and block < s.SVR_FEEDS_DEPLOYED:
        return 1  # not deployed yet: nothing behind it
    return PATH_LENGTH.get(source, 2)


async def test_resolve_finds_what_stands_behind_every_source() -> None:
    async with RpcStandIn(ethereum_history()) as node:
        client = RpcClient([node.url], chain="ethereum", requests_per_second=5_000)
        try:
            found = await resolve(client, list(RESOLVED))
        finally:
            await client.close()
    assert found == RESOLVED
    # One batch per level of the deepest path (CAPO -> proxy -> aggregator), nothing
    # retried: a revert, in either form, is an answer.
    assert node.requests_by_method["eth_call"] == 3 == node.http_requests == node.batches
    # At most four probes of each contract on each source's path.
    assert len(node.eth_calls) <= 4 * sum(path_length(*key) for key in RESOLVED)
    # Every probe at the block its source was set.
    blocks = {block for _, block in RESOLVED}
    assert {block for _, _, block in node.eth_calls} <= blocks
    assert not any(to in (s.SVR_ETH_USD, s.SVR_ETH_USD_BASE) for to, _, _ in node.eth_calls)


# -- 2. discover_sources ------------------------------------------------------------------

# (market, block, log index, asset, source, aggregator, is_svr, type_and_version)
EXPECTED_ROWS = sorted(
    [
        ("core", s.CORE_DEPLOY, 1, s.WETH, s.ETH_USD, s.ETH_USD_OCR2_A, False, OCR2),
        ("core", s.CORE_DEPLOY, 2, s.WBTC, s.BTC_USD, s.BTC_USD_OCR2, False, OCR2),
        ("core", s.CORE_DEPLOY, 3, s.LINK, s.LINK_USD, s.LINK_USD_OCR2, False, OCR2),
        ("core", s.CORE_DEPLOY, 4, s.USDC, s.USDC_USD, s.USDC_USD_OCR2, False, OCR2),
        ("core", s.GHO_LISTED, 0, s.GHO, s.GHO_FIXED_PRICE, None, False, None),
        ("core", s.WSTETH_CAPO, 0, s.WSTETH, s.WSTETH_CAPO_OLD, s.ETH_USD_OCR2_B, False, OCR2),
        ("core", s.CORE_LINK_SVR, 1, s.LINK, s.AAVE_SVR_LINK_USD, LINK_BASE, True, DUAL),
        ("core", s.CORE_LINK_BACK, 0, s.LINK, s.LINK_USD, s.LINK_USD_OCR2, False, OCR2),
        ("core", s.CORE_LINK_SVR_AGAIN, 0, s.LINK, s.AAVE_SVR_LINK_USD, LINK_BASE, True, DUAL),
        ("core", s.CORE_ETH_SVR, 2, s.WETH, s.AAVE_SVR_ETH_USD, ETH_BASE, True, DUAL),
        ("core", s.CORE_ETH_SVR, 4, s.WSTETH, s.WSTETH_CAPO_SVR, ETH_BASE, True, DUAL),
        ("prime", s.PRIME_DEPLOY, 1, s.WETH, s.ETH_USD, s.ETH_USD_OCR2_B, False, OCR2),
        ("prime", s.PRIME_DEPLOY, 2, s.USDC, s.USDC_USD, s.USDC_USD_OCR2, False, OCR2),
        ("prime", s.PRIME_ETH_SVR, 0, s.WETH, s.AAVE_SVR_ETH_USD, ETH_BASE, True, DUAL),
    ]
)
# (market, asset, source, from_block, to_block, is_svr)
EXPECTED_WINDOWS = sorted(
    [
        ("core", s.WETH, s.ETH_USD, s.CORE_DEPLOY, s.CORE_ETH_SVR, False),
        ("core", s.WETH, s.AAVE_SVR_ETH_USD, s.CORE_ETH_SVR, None, True),
        ("core", s.WBTC, s.BTC_USD, s.CORE_DEPLOY, None, False),
        ("core", s.LINK, s.LINK_USD, s.CORE_DEPLOY, s.CORE_LINK_SVR, False),
        ("core", s.LINK, s.AAVE_SVR_LINK_USD, s.CORE_LINK_SVR, s.CORE_LINK_BACK, True),
        ("core", s.LINK, s.LINK_USD, s.CORE_LINK_BACK, s.CORE_LINK_SVR_AGAIN, False),
        ("core", s.LINK, s.AAVE_SVR_LINK_USD, s.CORE_LINK_SVR_AGAIN, None, True),
        ("core", s.USDC, s.USDC_USD, s.CORE_DEPLOY, None, False),
        ("core", s.GHO, s.GHO_FIXED_PRICE, s.GHO_LISTED, None, False),
        ("core", s.WSTETH, s.WSTETH_CAPO_OLD, s.WSTETH_CAPO, s.CORE_ETH_SVR, False),
        ("core", s.WSTETH, s.WSTETH_CAPO_SVR, s.CORE_ETH_SVR, None, True),
        ("prime", s.WETH, s.ETH_USD, s.PRIME_DEPLOY, s.PRIME_ETH_SVR, False),
        ("prime", s.WETH, s.AAVE_SVR_ETH_USD, s.PRIME_ETH_SVR, None, True),
        ("prime", s.USDC, s.USDC_USD, s.PRIME_DEPLOY, None, False),
    ],
    key=lambda w: (w[0], w[1], w[3]),
)
ORACLE_OF = {"core": s.CORE_ORACLE, "prime": s.PRIME_ORACLE}


async def stored_rows(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(
            await conn.fetch(
                "SELECT * FROM asset_sources WHERE chain_id = 1 "
                "ORDER BY block_number, log_index, market"
            )
        )
    finally:
        await conn.close()


async def stored_windows(dsn: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT market, asset, source, from_block, to_block, is_svr "
            "FROM asset_source_windows WHERE chain_id = 1"
        )
    finally:
        await conn.close()
    return sorted((tuple(r) for r in rows), key=lambda w: (w[0], w[1], w[3]))


def row_key(r: asyncpg.Record) -> tuple[Any, ...]:
    return (
        r["market"],
        r["block_number"],
        r["log_index"],
        r["asset"],
        r["source"],
        r["aggregator"],
        r["is_svr"],
        r["type_and_version"],
    )


@dataclass
class Discovered:
    dsn: str
    node: RpcStandIn
    config: ChainConfig
    book: SourceBook
    aggregators: frozenset[str]
    filter_addresses: list[str]
    filter_topics: list[Any]
    first_block: int
    finalized: int
    updates: int


@pytest.fixture(scope="module")
async def discovered(db_dsn: str) -> AsyncIterator[Discovered]:
    """Core and Prime from their pools and oracles only, discovered up to the finalized
    block once; the stand-in stays up for the tests that look further."""
    async with RpcStandIn(ethereum_history(), max_log_span=LIMIT) as node:
        config = ethereum(node.url, [CORE, PRIME])
        ix = ChainIndexer(config, db_dsn)
        try:
            await ix.open()
            heads = await ix.read_heads()
            updates = await ix.discover_sources(heads.finalized)
        finally:
            await ix.close()  # the chain's lock is free for the tests that start it again
        assert ix.first_block is not None
        yield Discovered(
            db_dsn,
            node,
            config,
            ix.book,
            ix.aggregators,
            list(ix.log_filter.addresses),
            list(ix.log_filter.topics),
            ix.first_block,
            heads.finalized,
            updates,
        )


async def test_discovery_stores_every_source_and_its_window(discovered: Discovered) -> None:
    d = discovered
    assert d.first_block == s.CORE_DEPLOY and d.finalized == FINALIZED
    assert d.updates == len(EXPECTED_ROWS)
    rows = await stored_rows(d.dsn)
    assert sorted(row_key(r) for r in rows) == EXPECTED_ROWS
    hashes = {(log.block, log.log_index): log for log in d.node.chain.logs}
    for r in rows:
        log = hashes[(r["block_number"], r["log_index"])]
        assert r["oracle"] == ORACLE_OF[r["market"]] == log.address
        assert r["block_hash"] == d.node.chain.block_hash(log.block)
        assert r["tx_hash"] == d.node.chain.tx_hash(log.block, log.tx_index)
    assert await stored_windows(d.dsn) == EXPECTED_WINDOWS


async def test_the_pipeline_reads_only_the_aggregators_behind_aave_sources(
    discovered: Discovered,
) -> None:
    d = discovered
    assert d.aggregators == {ETH_BASE, LINK_BASE}
    expected = {s.CORE_POOL, s.PRIME_POOL, s.CORE_ORACLE, s.PRIME_ORACLE, ETH_BASE, LINK_BASE}
    assert sorted(d.filter_addresses) == sorted(expected)
    assert set(ORACLE_TOPICS) <= set(d.filter_topics[0])
    foreign = {s.SVR_ETH_USD, s.SVR_ETH_USD_BASE, s.OTHER_PROTOCOL_ORACLE}
    for r in await stored_rows(d.dsn):
        assert not foreign & {r["oracle"], r["source"], r["aggregator"]}
    assert not foreign & set(d.filter_addresses)


async def test_discovery_split_the_refused_ranges_and_read_each_block_once(
    discovered: Discovered,
) -> None:
    d = discovered
    assert d.node.logs_refused, "the provider's span limit was never met"
    assert all(end - start + 1 <= LIMIT for start, end in d.node.logs_served)
    assert covered(d.node.logs_served) == [(s.CORE_DEPLOY, FINALIZED)]
    assert d.node.beyond_head == 0


async def test_discovery_goes_on_from_its_checkpoint(fresh_dsn: str) -> None:
    chain = ethereum_history()
    async with RpcStandIn(chain, max_log_span=LIMIT) as node:
        config = ethereum(node.url, [CORE, PRIME])
        ix = ChainIndexer(config, fresh_dsn)
        try:
            await ix.open()
            assert await ix.discover_sources(FINALIZED) == len(EXPECTED_ROWS)
            before = node.counts()
            assert await ix.discover_sources(FINALIZED) == 0
            assert node.counts() == before  # nothing asked at all
            assert len(await stored_rows(fresh_dsn)) == len(EXPECTED_ROWS)
            # The chain grows: Prime lists wstETH on the CAPO adapter over the SVR feed.
            listed = s.HEAD + 500
            chain.head = s.HEAD + 1_000
            chain.emit(
                listed,
                0,
                s.PRIME_ORACLE,
                [
                    s.ASSET_SOURCE_UPDATED,
                    s.address_topic(s.WSTETH),
                    s.address_topic(s.WSTETH_CAPO_SVR),
                ],
            )
            served = len(node.logs_served)
            assert await ix.discover_sources(chain.finalized) == 1
            assert covered(node.logs_served[served:]) == [(FINALIZED + 1, chain.finalized)]
            rows = await stored_rows(fresh_dsn)
            assert len(rows) == len(EXPECTED_ROWS) + 1
            new = next(r for r in rows if r["block_number"] == listed)
            assert row_key(new) == (
                "prime",
                listed,
                0,
                s.WSTETH,
                s.WSTETH_CAPO_SVR,
                ETH_BASE,
                True,
                DUAL,
            )
            assert ix.book.svr_aggregators("prime", s.WSTETH, listed, 1) == (ETH_BASE,)
            assert ix.aggregators == {ETH_BASE, LINK_BASE}
        finally:
            await ix.close()


# -- 3. the book's answers ----------------------------------------------------------------

# (market, asset, block, log index) -> the SVR aggregators behind the asset's source there
AT = s.CORE_ETH_SVR  # WETH's switch is log 2 of that block, wstETH's log 4
BOOK_ANSWERS = [
    ("core", s.WETH, s.CORE_DEPLOY - 1, 0, ()),
    ("core", s.WETH, AT - 1, 500, ()),
    ("core", s.WETH, AT, 1, ()),
    ("core", s.WETH, AT, 2, ()),  # the switch's own position: still the old source
    ("core", s.WETH, AT, 3, (ETH_BASE,)),
    ("core", s.WETH, s.HEAD, 0, (ETH_BASE,)),
    ("core", s.WSTETH, AT, 3, ()),
    ("core", s.WSTETH, AT, 5, (ETH_BASE,)),
    ("core", s.WSTETH, s.WSTETH_CAPO + 1, 0, ()),
    ("prime", s.WETH, AT, 3, ()),  # the other market switched later
    ("prime", s.WETH, s.PRIME_ETH_SVR - 1, 0, ()),
    ("prime", s.WETH, s.PRIME_ETH_SVR, 1, (ETH_BASE,)),
    ("core", s.LINK, s.CORE_LINK_SVR, 0, ()),
    ("core", s.LINK, s.CORE_LINK_SVR, 2, (LINK_BASE,)),
    ("core", s.LINK, s.CORE_LINK_BACK - 1, 0, (LINK_BASE,)),
    ("core", s.LINK, s.CORE_LINK_BACK, 1, ()),
    ("core", s.LINK, s.CORE_LINK_SVR_AGAIN + 1, 0, (LINK_BASE,)),
    ("prime", s.LINK, s.HEAD, 0, ()),  # never listed there
    ("core", s.GHO, s.HEAD, 0, ()),
    ("core", s.USDC, s.HEAD, 0, ()),
    ("prime", s.USDC, s.HEAD, 0, ()),
    ("etherfi", s.WETH, s.HEAD, 0, ()),  # no such market configured
]
IN_FORCE = [
    (ETH_BASE, AT, 1, False),
    (ETH_BASE, AT, 3, True),
    (LINK_BASE, s.CORE_LINK_SVR + 1, 0, True),
    (LINK_BASE, s.CORE_LINK_BACK + 1, 0, False),  # behind no source, in either market
    (s.SVR_ETH_USD_BASE, s.HEAD, 0, False),
    (s.SVR_ETH_USD_BASE, s.OTHER_PROTOCOL_SVR, 9, False),
]


async def loaded_book(discovered: Discovered) -> SourceBook:
    """The book a later start reads from the database."""
    conn = await asyncpg.connect(discovered.dsn)
    try:
        book = SourceBook(discovered.config.svr.aggregators)
        book.add(await writer.asset_sources(conn, 1))
        return book
    finally:
        await conn.close()


@pytest.mark.parametrize("where", ["discovered", "reloaded"])
async def test_the_book_answers_by_window(discovered: Discovered, where: str) -> None:
    book = discovered.book if where == "discovered" else await loaded_book(discovered)
    answers = [
        (market, asset, block, index, book.svr_aggregators(market, asset, block, index))
        for market, asset, block, index, _ in BOOK_ANSWERS
    ]
    assert answers == BOOK_ANSWERS
    in_force = [(a, b, i, book.in_force(a, b, i)) for a, b, i, _ in IN_FORCE]
    assert in_force == IN_FORCE
    assert book.aggregators() == {ETH_BASE, LINK_BASE}


async def test_a_restart_reads_the_same_book(discovered: Discovered) -> None:
    ix = ChainIndexer(discovered.config, discovered.dsn)
    try:
        await ix.open()
        assert ix.aggregators == {ETH_BASE, LINK_BASE}
        assert sorted(ix.log_filter.addresses) == sorted(discovered.filter_addresses)
        for market, asset, block, index, expected in BOOK_ANSWERS:
            assert ix.book.svr_aggregators(market, asset, block, index) == expected
        before = discovered.node.counts()
        assert await ix.discover_sources(discovered.finalized) == 0
        assert discovered.node.counts()["eth_getLogs"] == before["eth_getLogs"]
    finally:
        await ix.close()


# -- sources set before the first indexed block -------------------------------------------


async def test_a_source_set_before_the_chains_start_block_still_counts(fresh_dsn: str) -> None:
    """An operator starts the chain after LINK's switch to SVR: liquidations from there on
    are still priced by the SVR feed, so the book must know it."""
    start = s.CORE_LINK_SVR_AGAIN + 100_000
    async with RpcStandIn(ethereum_history(), max_log_span=LIMIT) as node:
        ix = ChainIndexer(ethereum(node.url, [CORE], start_block=start), fresh_dsn)
        try:
            await ix.open()
            await ix.discover_sources(FINALIZED)
            assert ix.book.svr_aggregators("core", s.LINK, start + 10, 0) == (LINK_BASE,)
            assert ix.aggregators == {ETH_BASE, LINK_BASE}
        finally:
            await ix.close()


async def test_an_oracle_older_than_its_pool_keeps_its_constructor_sources(
    fresh_dsn: str,
) -> None:
    """A deployment that sets up the AaveOracle a few blocks before the pool proxy: the
    constructor's sources are the assets' first windows."""
    lead = 3
    async with RpcStandIn(ethereum_history(oracle_lead=lead), max_log_span=LIMIT) as node:
        ix = ChainIndexer(ethereum(node.url, [CORE, PRIME]), fresh_dsn)
        try:
            await ix.open()
            await ix.discover_sources(FINALIZED)
        finally:
            await ix.close()
    firsts = {
        (market, asset): from_block
        for market, asset, _, from_block, _, _ in reversed(await stored_windows(fresh_dsn))
    }
    assert firsts[("core", s.WETH)] == s.CORE_DEPLOY - lead
    assert firsts[("core", s.WBTC)] == s.CORE_DEPLOY - lead
    assert firsts[("prime", s.WETH)] == s.PRIME_DEPLOY - lead


# -- 4. configured contracts that are not on the chain ------------------------------------


def lines_naming(caplog: pytest.LogCaptureFixture, address: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if address.lower() in r.getMessage()]


async def test_a_pool_without_code_is_left_out(
    fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    history = ethereum_history()
    async with RpcStandIn(history, max_log_span=LIMIT, range_style="alchemy") as node:
        ix = ChainIndexer(ethereum(node.url, [CORE, BASE_ON_ETHEREUM, PRIME]), fresh_dsn)
        try:
            with caplog.at_level(logging.INFO, logger="aave_indexer"):
                await ix.open()
            assert len(lines_naming(caplog, s.BASE_POOL)) == 1
            assert not lines_naming(caplog, s.BASE_ORACLE)
            problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(problems) == 1
            assert [p.market for p in ix.chain.pools] == ["core", "prime"]
            assert ix.pools == {s.CORE_POOL, s.PRIME_POOL}
            assert ix.oracles == {s.CORE_ORACLE, s.PRIME_ORACLE}
            assert ix.first_block == s.CORE_DEPLOY
            assert not {s.BASE_POOL, s.BASE_ORACLE} & set(ix.log_filter.addresses)
            assert await ix.discover_sources(FINALIZED) == len(EXPECTED_ROWS)
            assert sorted(row_key(r) for r in await stored_rows(fresh_dsn)) == EXPECTED_ROWS
            # (the provider's proposed ranges taken, every block read once)
            assert node.logs_refused
            assert covered(node.logs_served) == [(s.CORE_DEPLOY, FINALIZED)]
        finally:
            await ix.close()


async def test_an_oracle_without_code_is_reported_and_its_market_indexed(
    fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    prime = {**PRIME, "oracle": BASE_ON_ETHEREUM["oracle"]}
    async with RpcStandIn(ethereum_history(), max_log_span=LIMIT) as node:
        ix = ChainIndexer(ethereum(node.url, [CORE, prime]), fresh_dsn)
        try:
            with caplog.at_level(logging.INFO, logger="aave_indexer"):
                await ix.open()
            assert len(lines_naming(caplog, s.BASE_ORACLE)) == 1
            assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
            assert [p.market for p in ix.chain.pools] == ["core", "prime"]
            assert ix.pools == {s.CORE_POOL, s.PRIME_POOL}
            assert s.PRIME_POOL in ix.log_filter.addresses
            assert ix.first_block == s.CORE_DEPLOY
            assert await ix.discover_sources(FINALIZED) == len(
                [r for r in EXPECTED_ROWS if r[0] == "core"]
            )
            markets = {r["market"] for r in await stored_rows(fresh_dsn)}
            assert markets == {"core"}
        finally:
            await ix.close()


async def test_no_pool_with_code_is_unusable(
    fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with RpcStandIn(ethereum_history()) as node:
        config = ethereum(node.url, [BASE_ON_ETHEREUM, ARBITRUM_ON_ETHEREUM])
        ix = ChainIndexer(config, fresh_dsn)
        try:
            with caplog.at_level(logging.INFO, logger="aave_indexer"), pytest.raises(PoolUnusable):
                await ix.open()
            assert len(lines_naming(caplog, s.BASE_POOL)) == 1
            assert len(lines_naming(caplog, ARBITRUM_ON_ETHEREUM["address"])) == 1
        finally:
            await ix.close()
        # The failed start left the chain's lock free: a good configuration starts.
        ix = ChainIndexer(ethereum(node.url, [CORE]), fresh_dsn)
        try:
            await ix.open()
        finally:
            await ix.close()
