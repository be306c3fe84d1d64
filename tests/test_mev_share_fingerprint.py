"""The MEV-Share fingerprint, indexed end to end from RPC URLs only: a scripted Ethereum
range (tests/rpc_standin.py, at the Aave address book's addresses) with one won SVR auction
(the update, the back-run, the builder's refund to Chainlink's SVR fee Safe) among blocks
that look like one and are not, run through `ChainIndexer.open()` and `backfill()` with a
configuration that names only Core's pool and oracle and the shipped recipient. The rows
must be the script's, and the full blocks read only those with an SVR candidate."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import asyncpg
import pytest
from eth_utils import keccak

from indexer.config import ChainConfig, load_config, parse_config
from indexer.decode.topics import LIQUIDATION_CALL, ORACLE_TOPICS, TRANSFER
from indexer.pipeline import ChainIndexer
from indexer.rpc.client import RpcClient
from tests import rpc_standin as s
from tests.conftest import drop_database, make_database
from tests.rpc_standin import MevShareRange, RpcStandIn, ScriptedLiquidation, mev_share_range

ETH_BASE = s.AAVE_SVR_ETH_USD_BASE
OCR2, DUAL = s.OCR2_VERSION, s.DUAL_VERSION
SPLIT_RULE = "65/35 from 2025-03-29"
SVR_USD_COLUMNS = ("svr_recaptured_usd", "svr_aave_usd", "svr_chainlink_usd")
ECONOMICS_USD = ("bonus_usd", "protocol_fee_usd", "collateral_seized_usd")
TOKEN_FUNCTIONS = ("decimals()", "symbol()")


def ethereum(url: str) -> ChainConfig:
    """Core's pool and oracle as the address book spells them, the shipped SVR recipient,
    no aggregators (the feeds are discovered); indexing starts at the range."""
    body = {
        "chain_id": 1,
        "rpc_urls": [url],
        "start_block": s.RANGE_START,
        "max_block_range": 1_000_000,
        "requests_per_second": 5_000,
        "native_price_asset": "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
        "pools": [
            {
                "market": "core",
                "address": "0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2",
                "oracle": "0x54586bE62E3c3580375aE3723C145253060Ca0C2",
                "start_block": s.CORE_DEPLOY,
            }
        ],
        "svr": {
            "model": "mev-share",
            "recipients": ["0x149b41b1e4c00b5f9aa34b14fd9f84cfd2f014e5"],
            "aggregators": [],
        },
    }
    return parse_config({"chains": {"ethereum": body}}).chains["ethereum"]


@dataclass
class Indexed:
    dsn: str
    script: MevShareRange
    node: RpcStandIn
    log_timestamps: bool
    written: int
    checkpoint: int
    #: what backfill() asked, after open()
    calls: Counter[str]
    blocks: list[tuple[int | str, bool]]
    eth_calls: list[tuple[str, str, int]]


@pytest.fixture(scope="module", params=[False, True], ids=["headers", "blockTimestamp"])
def variant(request: pytest.FixtureRequest, pg_template: str) -> Iterator[tuple[bool, str]]:
    """Logs without blockTimestamp (block times from headers) and with it; a database each."""
    dsn = make_database(pg_template)
    yield bool(request.param), dsn
    drop_database(dsn)


@pytest.fixture(scope="module")
async def indexed(variant: tuple[bool, str]) -> AsyncIterator[Indexed]:
    log_timestamps, dsn = variant
    script = mev_share_range()
    async with RpcStandIn(script.chain, log_timestamps=log_timestamps) as node:
        ix = ChainIndexer(ethereum(node.url), dsn)
        try:
            await ix.open()
            calls_before = Counter(node.calls)
            blocks_before, eth_calls_before = len(node.blocks_served), len(node.eth_calls)
            written = await ix.backfill()
            checkpoint = await ix.checkpoint()
        finally:
            await ix.close()
        yield Indexed(
            dsn,
            script,
            node,
            log_timestamps,
            written,
            checkpoint,
            Counter(node.calls) - calls_before,
            node.blocks_served[blocks_before:],
            node.eth_calls[eth_calls_before:],
        )


async def fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def when(chain: s.ScriptedChain, block: int) -> datetime:
    return datetime.fromtimestamp(chain.timestamp(block), UTC)


def exact(value: Decimal | None) -> Fraction | None:
    return None if value is None else Fraction(value)


def usd(amount: int, price: int, decimals: int) -> Fraction:
    return Fraction(amount * price, 10 ** (decimals + 8))


# -- the script ---------------------------------------------------------------------------

# Aave's WETH price (the SVR feed's latest answer) and USDC's, per block with a liquidation:
# a call at a block reads the state after it, so the won auction's block has its new answer.
WETH_PRICE = {
    s.FINGERPRINT_BLOCK: s.WON_ANSWER,
    s.UNSOLD_BLOCK: s.PRIMARY_ANSWER,
    s.OTHER_PAYER_BLOCK: s.OTHER_ANSWER,
    s.FOREIGN_BLOCK: s.OTHER_ANSWER,  # another protocol's feed moves no Aave price
}
# (block, tx index, log index) of each liquidation, and whether it is SVR
POSITIONS = [
    (s.FINGERPRINT_BLOCK, 2, 7, False),  # public, before the update
    (s.FINGERPRINT_BLOCK, 4, 18, True),  # the back-run the refund follows
    (s.UNSOLD_BLOCK, 1, 7, False),  # after an update nobody bid on
    (s.OTHER_PAYER_BLOCK, 1, 8, False),  # the Safe paid by the searcher, not the builder
    (s.FOREIGN_BLOCK, 1, 10, False),  # after a DualAggregator behind no Aave source
]
# (block, tx index, log index, kind, route, round id, answer): Aave's ETH/USD DualAggregator
# only (the other protocol's is never read)
# (block, tx, log index, kind, route, round, answer, sold): the won report's marker was
# sold; the lone marker of the unsold block is a catch-up; the report the Safe was paid for
# by someone else was not sold.
ORACLE_UPDATES = [
    (s.FINGERPRINT_BLOCK, 3, 8, "secondary_round_id_updated", "secondary", s.WON_ROUND, None, True),
    (s.FINGERPRINT_BLOCK, 3, 9, "new_transmission", "secondary", s.WON_ROUND, s.WON_ANSWER, None),
    (s.FINGERPRINT_BLOCK, 3, 10, "new_round", "secondary", s.WON_ROUND, None, None),
    (s.FINGERPRINT_BLOCK, 3, 11, "answer_updated", "secondary", s.WON_ROUND, s.WON_ANSWER, None),
    (s.PRIMARY_BLOCK, 0, 0, "new_transmission", "primary", s.PRIMARY_ROUND, s.PRIMARY_ANSWER, None),
    (s.PRIMARY_BLOCK, 0, 1, "new_round", "primary", s.PRIMARY_ROUND, None, None),
    (s.PRIMARY_BLOCK, 0, 2, "answer_updated", "primary", s.PRIMARY_ROUND, s.PRIMARY_ANSWER, None),
    (s.UNSOLD_BLOCK, 0, 0, "secondary_round_id_updated", "catch_up", s.PRIMARY_ROUND, None, None),
    (
        s.OTHER_PAYER_BLOCK, 0, 0, "secondary_round_id_updated", "secondary", s.OTHER_ROUND,
        None, False,
    ),
    (
        s.OTHER_PAYER_BLOCK, 0, 1, "new_transmission", "secondary", s.OTHER_ROUND,
        s.OTHER_ANSWER, None,
    ),
    (s.OTHER_PAYER_BLOCK, 0, 2, "new_round", "secondary", s.OTHER_ROUND, None, None),
    (s.OTHER_PAYER_BLOCK, 0, 3, "answer_updated", "secondary", s.OTHER_ROUND, s.OTHER_ANSWER, None),
]  # fmt: skip
# Core's asset sources, from its oracle's history (market, block, log index, asset,
# source, aggregator, is_svr, typeAndVersion)
ASSET_SOURCES = [
    ("core", s.CORE_DEPLOY, 1, s.WETH, s.ETH_USD, s.ETH_USD_OCR2_A, False, OCR2),
    ("core", s.CORE_DEPLOY, 2, s.WBTC, s.BTC_USD, s.BTC_USD_OCR2, False, OCR2),
    ("core", s.CORE_DEPLOY, 3, s.LINK, s.LINK_USD, s.LINK_USD_OCR2, False, OCR2),
    ("core", s.CORE_DEPLOY, 4, s.USDC, s.USDC_USD, s.USDC_USD_OCR2, False, OCR2),
    ("core", s.GHO_LISTED, 0, s.GHO, s.GHO_FIXED_PRICE, None, False, None),
    ("core", s.WSTETH_CAPO, 0, s.WSTETH, s.WSTETH_CAPO_OLD, s.ETH_USD_OCR2_B, False, OCR2),
    ("core", s.CORE_LINK_SVR, 1, s.LINK, s.AAVE_SVR_LINK_USD, s.AAVE_SVR_LINK_USD_BASE, True, DUAL),
    ("core", s.CORE_LINK_BACK, 0, s.LINK, s.LINK_USD, s.LINK_USD_OCR2, False, OCR2),
    (
        "core",
        s.CORE_LINK_SVR_AGAIN,
        0,
        s.LINK,
        s.AAVE_SVR_LINK_USD,
        s.AAVE_SVR_LINK_USD_BASE,
        True,
        DUAL,
    ),
    ("core", s.CORE_ETH_SVR, 2, s.WETH, s.AAVE_SVR_ETH_USD, ETH_BASE, True, DUAL),
    ("core", s.CORE_ETH_SVR, 4, s.WSTETH, s.WSTETH_CAPO_SVR, ETH_BASE, True, DUAL),
]
#: the blocks with an SVR candidate (an update of an aggregator behind the liquidation's
#: asset, before it): only these are read with their transactions
#: blocks where a new SVR report precedes a liquidation (a catch-up is no candidate)
CANDIDATE_BLOCKS = [s.FINGERPRINT_BLOCK, s.OTHER_PAYER_BLOCK]
#: the blocks with an event the indexer keeps (a liquidation or an update it reads)
EVENT_BLOCKS = [
    s.FINGERPRINT_BLOCK,
    s.PRIMARY_BLOCK,
    s.UNSOLD_BLOCK,
    s.OTHER_PAYER_BLOCK,
    s.FOREIGN_BLOCK,
]
LIQUIDATION_BLOCKS = sorted(WETH_PRICE)


def recapture_usd() -> Fraction:
    """The refund's value: wei times the WETH price of its block."""
    return usd(s.REFUND_WEI, s.WON_ANSWER, 18)


def liquidation_id(chain: s.ScriptedChain, liq: ScriptedLiquidation) -> str:
    return f"1:{chain.tx_hash(liq.block, liq.tx_index)}:{liq.log_index}"


def test_the_configuration_uses_the_shipped_recipient() -> None:
    shipped = load_config().chains["ethereum"]
    assert shipped.svr.recipients == [s.SVR_SAFE] == ethereum("http://x").svr.recipients
    assert shipped.native_price_asset == s.WETH
    core = shipped.pools[0]
    assert (core.market, core.address, core.oracle) == ("core", s.CORE_POOL, s.CORE_ORACLE)


def test_the_script_is_the_fingerprint() -> None:
    """Update, back-run, refund adjacent in one block built by Flashbots."""
    script = mev_share_range()
    chain = script.chain
    update, back_run, refund = script.won
    assert (update, back_run, refund) == (3, 4, 5)
    txs = chain.block_transactions(s.FINGERPRINT_BLOCK)
    assert chain.miner(s.FINGERPRINT_BLOCK) == s.FLASHBOTS_BUILDER
    assert txs[update].to == s.FORWARDER and txs[update].data.startswith("0x6fadcf72")
    assert "ba0cb29e" in txs[update].data  # forward(aggregator, transmitSecondary(...))
    assert txs[back_run].sender == s.SEARCHER
    assert (txs[refund].sender, txs[refund].to, txs[refund].value) == (
        s.FLASHBOTS_BUILDER,
        s.SVR_SAFE,
        s.REFUND_WEI,
    )
    assert txs[refund].data == "0x"
    # The DualAggregator's events as published (topic0), and as the indexer reads them.
    published = {
        s.SECONDARY_ROUND_ID_UPDATED: (
            "0x8d530b9ddc4b318d28fdd4c3a21fcfecece54c1a72a824f262985b99afef009b"
        ),
        s.NEW_TRANSMISSION: "0xc797025feeeaf2cd924c99e9205acb8ec04d5cad21c41ce637a38fb6dee6016a",
        s.NEW_ROUND: "0x0109fc6f55cf40689f02fbaad7af7fe7bbac8a3d2186600afc7d3e10cac60271",
        s.ANSWER_UPDATED: "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f",
    }
    assert all(ours == theirs for ours, theirs in published.items())
    assert set(published) <= set(ORACLE_TOPICS)
    assert (s.LIQUIDATION_CALL, s.TRANSFER) == (LIQUIDATION_CALL, TRANSFER)
    positions = [(liq.block, liq.tx_index, liq.log_index) for liq in script.liquidations]
    assert positions == [p[:3] for p in POSITIONS]


async def test_the_stand_in_serves_the_range_as_a_node_would() -> None:
    """Headers name their transactions by hash, full blocks list them with the fields a
    refund is read from; logs carry blockTimestamp only when asked to; contracts have code,
    the builder (an account) has none."""
    script = mev_share_range()
    chain, block = script.chain, s.FINGERPRINT_BLOCK
    for log_timestamps in (False, True):
        async with RpcStandIn(chain, log_timestamps=log_timestamps) as node:
            client = RpcClient([node.url], chain="ethereum", requests_per_second=5_000)
            try:
                header, full, logs, safe, builder = await client.batch(
                    [
                        ("eth_getBlockByNumber", [hex(block), False]),
                        ("eth_getBlockByNumber", [hex(block), True]),
                        ("eth_getLogs", [{"fromBlock": hex(block), "toBlock": hex(block)}]),
                        ("eth_getCode", [s.SVR_SAFE, hex(block)]),
                        ("eth_getCode", [s.FLASHBOTS_BUILDER, hex(block)]),
                    ]
                )
            finally:
                await client.close()
        assert header["miner"] == full["miner"] == s.FLASHBOTS_BUILDER
        assert header["transactions"] == [chain.tx_hash(block, i) for i in range(7)]
        refund = full["transactions"][script.won[2]]
        assert {k: refund[k] for k in ("hash", "from", "to", "value", "transactionIndex")} == {
            "hash": chain.tx_hash(block, 5),
            "from": s.FLASHBOTS_BUILDER,
            "to": s.SVR_SAFE,
            "value": hex(s.REFUND_WEI),
            "transactionIndex": "0x5",
        }
        assert len(logs) == 19
        assert all(("blockTimestamp" in log) is log_timestamps for log in logs)
        assert len(safe) > 2 and builder == "0x"


# -- the rows -----------------------------------------------------------------------------


async def test_everything_in_the_range_is_indexed(indexed: Indexed) -> None:
    assert indexed.written == len(POSITIONS)
    assert indexed.checkpoint == s.RANGE_END


async def test_one_svr_liquidation_with_its_recapture_and_the_others_ordinary(
    indexed: Indexed,
) -> None:
    chain = indexed.script.chain
    rows = await fetch(indexed.dsn, "SELECT * FROM liquidations ORDER BY block_number, log_index")
    assert len(rows) == len(POSITIONS)
    share = recapture_usd()
    for row, liq, (_, _, _, is_svr) in zip(
        rows, indexed.script.liquidations, POSITIONS, strict=True
    ):
        block = liq.block
        prices = {s.WETH: WETH_PRICE[block], s.USDC: s.USDC_PRICE}
        c_price, d_price = prices[liq.collateral.asset], prices[liq.debt.asset]
        got = dict(row)
        for column in ("collateral_usd", "debt_usd", *SVR_USD_COLUMNS, *ECONOMICS_USD):
            got[column] = exact(got[column])
        c_usd = usd(liq.collateral_amount, c_price, liq.collateral.decimals)
        d_usd = usd(liq.debt_to_cover, d_price, liq.debt.decimals)
        fee_usd = usd(liq.fee, c_price, liq.collateral.decimals)
        assert got == {
            "chain_id": 1,
            "block_number": block,
            "block_hash": chain.block_hash(block),
            "block_time": when(chain, block),
            "tx_hash": chain.tx_hash(block, liq.tx_index),
            "tx_index": liq.tx_index,
            "log_index": liq.log_index,
            "pool": s.CORE_POOL,
            "market": "core",
            "collateral_asset": liq.collateral.asset,
            "debt_asset": liq.debt.asset,
            "user_address": liq.user,
            "liquidator": liq.liquidator,
            "debt_to_cover": liq.debt_to_cover,
            "liquidated_collateral_amount": liq.collateral_amount,
            "receive_atoken": False,
            "collateral_price": c_price,
            "debt_price": d_price,
            "collateral_usd": c_usd,
            "debt_usd": d_usd,
            "protocol_fee_amount": liq.fee,
            "is_svr": is_svr,
            "svr_aggregator": ETH_BASE if is_svr else None,
            "svr_round_id": s.WON_ROUND if is_svr else None,
            "svr_oracle_tx_hash": chain.tx_hash(block, indexed.script.won[0]) if is_svr else None,
            "svr_recaptured_usd": share if is_svr else None,
            "svr_aave_usd": share * Fraction(65, 100) if is_svr else None,
            "svr_chainlink_usd": share * Fraction(35, 100) if is_svr else None,
            "svr_bid_count": None,  # MEV-Share: the bids are not on chain
            "svr_best_losing_bid_usd": None,
            "bonus_usd": c_usd - d_usd,
            "protocol_fee_usd": fee_usd,
            "collateral_seized_usd": c_usd + fee_usd,
            "closed_fully": s.DEBT_LEFT.get(liq.user, s.SOME_DEBT_LEFT) == 0,
            # before the won update in its block: the price it saw is not the block's end;
            # the stand-in (no EVM) cannot replay the block, so the end's price is kept
            "price_basis": "block_unsure"
            if block == s.FINGERPRINT_BLOCK and liq.tx_index < indexed.script.won[0]
            else "block",
        }, f"liquidation at block {block} log {liq.log_index}"


async def test_the_refund_is_the_one_recapture(indexed: Indexed) -> None:
    chain = indexed.script.chain
    block, (_, _, refund) = s.FINGERPRINT_BLOCK, indexed.script.won
    rows = await fetch(indexed.dsn, "SELECT * FROM svr_recaptures")
    assert len(rows) == 1
    got = dict(rows[0])
    for column in ("amount_usd", "aave_usd", "chainlink_usd"):
        got[column] = exact(got[column])
    value = recapture_usd()
    svr_liquidation = indexed.script.liquidations[1]
    assert got == {
        "chain_id": 1,
        "block_number": block,
        "block_hash": chain.block_hash(block),
        "block_time": when(chain, block),
        "tx_hash": chain.tx_hash(block, refund),
        "source_index": -1,
        "recipient": s.SVR_SAFE,
        "token": None,
        "amount": s.REFUND_WEI,
        "amount_usd": value,
        "aggregator": ETH_BASE,
        "market": "core",
        "liquidation_ids": [liquidation_id(chain, svr_liquidation)],
        "aave_bps": 6500,
        "aave_usd": value * Fraction(6500, 10000),
        "chainlink_usd": value - value * Fraction(6500, 10000),
        "split_rule": SPLIT_RULE,
    }
    liquidation = await fetch(
        indexed.dsn,
        "SELECT svr_recaptured_usd FROM liquidations WHERE is_svr",
    )
    assert [exact(r["svr_recaptured_usd"]) for r in liquidation] == [got["amount_usd"]]


def report_fields(chain: Any, block: int, kind: str, round_id: int) -> dict[str, Any]:
    """What a NewTransmission row carries of its report, as the stand-in scripts it."""
    if kind != "new_transmission":
        return dict.fromkeys(
            ("transmitter", "observations_timestamp", "epoch_and_round", "config_digest")
        )
    return {
        "transmitter": s.TRANSMITTER,
        "observations_timestamp": chain.timestamp(block) - 3,
        "epoch_and_round": (round_id << 8) | 1,
        "config_digest": "0x" + keccak(text=f"{ETH_BASE} config").hex(),
    }


async def test_the_updates_of_the_aave_feed_only(indexed: Indexed) -> None:
    chain = indexed.script.chain
    rows = await fetch(
        indexed.dsn, "SELECT * FROM svr_oracle_updates ORDER BY block_number, log_index"
    )
    expected = [
        {
            "chain_id": 1,
            "block_number": block,
            "block_hash": chain.block_hash(block),
            "block_time": when(chain, block),
            "tx_hash": chain.tx_hash(block, tx),
            "tx_index": tx,
            "log_index": index,
            "aggregator": ETH_BASE,
            "kind": kind,
            "route": route,
            "round_id": round_id,
            "answer": answer,
            **report_fields(chain, block, kind, round_id),
            "sold": sold,
        }
        for block, tx, index, kind, route, round_id, answer, sold in ORACLE_UPDATES
    ]
    assert [dict(r) for r in rows] == expected


async def test_the_sources_are_cores_from_its_oracles_history(indexed: Indexed) -> None:
    chain = indexed.script.chain
    rows = await fetch(indexed.dsn, "SELECT * FROM asset_sources ORDER BY block_number, log_index")
    got = [
        (
            r["market"],
            r["block_number"],
            r["log_index"],
            r["asset"],
            r["source"],
            r["aggregator"],
            r["is_svr"],
            r["type_and_version"],
        )
        for r in rows
    ]
    assert got == ASSET_SOURCES
    for r in rows:
        assert r["oracle"] == s.CORE_ORACLE
        assert r["block_hash"] == chain.block_hash(r["block_number"])
    assets = await fetch(indexed.dsn, "SELECT address, symbol, decimals FROM assets ORDER BY 1")
    assert [tuple(r) for r in assets] == [(s.USDC, "USDC", 6), (s.WETH, "WETH", 18)]


# -- what was asked -----------------------------------------------------------------------


async def test_full_blocks_only_for_the_svr_candidates(indexed: Indexed) -> None:
    full = [block for block, with_txs in indexed.blocks if with_txs]
    assert full == CANDIDATE_BLOCKS  # once each, in one batch, in order
    headers = [block for block, with_txs in indexed.blocks if not with_txs]
    # The finalized tag for the heads; headers for block times only where logs lack them.
    assert headers == ["finalized"] + ([] if indexed.log_timestamps else EVENT_BLOCKS)


async def test_calls_per_method(indexed: Indexed) -> None:
    calls = indexed.calls
    blocks = 1 + len(CANDIDATE_BLOCKS) + (0 if indexed.log_timestamps else len(EVENT_BLOCKS))
    assert calls["eth_getBlockByNumber"] == blocks
    assert calls["eth_blockNumber"] == 2  # the heads; the head for the oracle's deployment
    assert calls["eth_chainId"] == 0  # asked by open() only
    assert set(calls) <= {
        "eth_blockNumber",
        "eth_getBlockByNumber",
        "eth_getCode",
        "eth_getLogs",
        "eth_call",
        "eth_simulateV1",
    }
    # one replay asked for (the block of the liquidation before the won update), refused
    # by the stand-in, and never asked again
    assert calls["eth_simulateV1"] == 1
    served = indexed.node.logs_served
    # the sources' history in spans of the configured maximum; then the range once (one
    # filter for every stream) and the treasury's aToken transfers once
    history = [span for span in served if span[0] < s.RANGE_START]
    assert history[0][0] == s.CORE_DEPLOY and history[-1][1] == s.RANGE_END
    ranged = [span for span in served if span[0] >= s.RANGE_START]
    assert ranged == [
        (s.RANGE_START, s.RANGE_END),
        (s.FINGERPRINT_BLOCK, s.FOREIGN_BLOCK),
    ]
    assert calls["eth_getLogs"] == len(history) + 2


async def test_prices_once_per_liquidation_block_metadata_once(indexed: Indexed) -> None:
    """Indexing the range (not the sources' resolution, which asks at the sources' blocks):
    token metadata, the aTokens and their treasury once each at the head, and one price
    call per block with liquidations (the refund's WETH price is that block's, cached)."""
    head = s.RANGE_HEAD
    asked = Counter(
        (to, sel, block) for to, sel, block in indexed.eth_calls if block >= s.RANGE_START
    )
    prices = s.selector("getAssetsPrices(address[])")
    expected = Counter(
        {(s.CORE_ORACLE, prices, block): 1 for block in LIQUIDATION_BLOCKS}
        | {(token, s.selector(f), head): 1 for token in (s.WETH, s.USDC) for f in TOKEN_FUNCTIONS}
        | {(s.CORE_POOL, s.selector("getReserveData(address)"), head): 2}
        | {(a, s.selector("RESERVE_TREASURY_ADDRESS()"), head): 1 for a in (s.A_WETH, s.A_USDC)}
    )
    # the debt left after each block's liquidations of a borrower: one balanceOf each
    positions = {(liq.debt.v_token, liq.user, liq.block) for liq in indexed.script.liquidations}
    for v_token, _, block in positions:
        expected[(v_token, s.selector("balanceOf(address)"), block)] += 1
    assert asked == expected
