"""Pure parts: decoding logs and the SVR attribution rule, on hand-built logs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from indexer.config import parse_config
from indexer.decode.events import decode_logs
from indexer.decode.topics import (
    LIQUIDATION_CALL,
    NEW_TRANSMISSION,
    SECONDARY_ROUND_ID_UPDATED,
    SOLVER_TX_RESULT,
)
from indexer.enrich.prices import usd
from indexer.enrich.sources import SourceBook
from indexer.enrich.svr import SvrRules, share
from indexer.records import AssetSourceRow

POOL = "0x" + "aa" * 20
AGG = "0x" + "bb" * 20
ATLAS = "0x" + "cc" * 20
CONTROL = "0x" + "dd" * 20
WBTC, USDC, LINK = "0x" + "01" * 20, "0x" + "02" * 20, "0x" + "03" * 20


def word(value: int | str) -> str:
    if isinstance(value, str):
        return value[2:].rjust(64, "0")
    return hex(value)[2:].rjust(64, "0")


def log(address: str, topics: list[str], data: str, block: int, tx: str, index: int) -> dict:
    return {
        "address": address,
        "topics": topics,
        "data": "0x" + data,
        "blockNumber": hex(block),
        "blockHash": "0x" + f"{block:064x}",
        "transactionHash": tx,
        "transactionIndex": "0x0",
        "logIndex": hex(index),
    }


def liquidation(block: int, tx: str, index: int, collateral: str = WBTC, pool: str = POOL) -> dict:
    return log(
        pool,
        [
            LIQUIDATION_CALL,
            "0x" + word(collateral),
            "0x" + word(USDC),
            "0x" + word("0x" + "ee" * 20),
        ],
        word(123) + word(456) + word("0x" + "ff" * 20) + word(1),
        block,
        tx,
        index,
    )


def secondary(block: int, tx: str, index: int, round_id: int = 7) -> dict:
    """A SecondaryRoundIdUpdated alone: on its own in its transaction, a catch-up."""
    return log(AGG, [SECONDARY_ROUND_ID_UPDATED, "0x" + word(round_id)], "", block, tx, index)


def report(block: int, tx: str, index: int, round_id: int = 7) -> list[dict]:
    """A new report on the SVR route: SecondaryRoundIdUpdated, then its NewTransmission
    (placed late in the transaction, after everything these tests look at)."""
    data = (
        word(123)
        + word("0x" + "7a" * 20)
        + word(1_770_000_000)
        + word(0x100)
        + word(0x120)
        + word(0)
        + "cd" * 32
        + word(0x0105)
        + word(0)
        + word(0)
    )
    transmission = log(AGG, [NEW_TRANSMISSION, "0x" + word(round_id)], data, block, tx, 900 + index)
    return [secondary(block, tx, index, round_id), transmission]


POOL2 = "0x" + "a2" * 20
ORACLE, ORACLE2 = "0x" + "0a" * 20, "0x" + "0b" * 20


def rules(model: str, configured: bool = True) -> SvrRules:
    """The rules of one chain with two markets, core (POOL) and prime (POOL2); AGG is a
    configured aggregator of WBTC unless `configured` is false (then only the sources
    count)."""
    svr: dict[str, object] = {
        "model": model,
        "recipients": ["0x" + "99" * 20],
        "aggregators": [{"address": AGG, "assets": [WBTC]}] if configured else [],
    }
    if model == "atlas":
        svr |= {"atlas": ATLAS, "dapp_control": CONTROL}
    config = parse_config(
        {
            "chains": {
                "ethereum": {
                    "chain_id": 1,
                    "rpc_urls": ["http://x:1"],
                    "svr": svr,
                    "pools": [
                        {"market": "core", "address": POOL, "oracle": ORACLE, "start_block": 0},
                        {"market": "prime", "address": POOL2, "oracle": ORACLE2, "start_block": 0},
                    ],
                }
            }
        }
    )
    return SvrRules(config.chains["ethereum"])


def book(r: SvrRules, *rows: AssetSourceRow) -> SourceBook:
    b = SourceBook(r.chain.svr.aggregators)
    b.add(rows)
    return b


def source(market: str, block: int, index: int, asset: str, svr: bool) -> AssetSourceRow:
    """An AssetSourceUpdated of `market`'s oracle setting a source backed by AGG (svr) or
    by a plain feed."""
    return AssetSourceRow(
        1,
        market,
        ORACLE if market == "core" else ORACLE2,
        block,
        f"0x{block:064x}",
        "0x" + f"{block:02x}" * 32,
        index,
        asset,
        "0x" + "5e" * 20,
        AGG if svr else "0x" + "77" * 20,
        svr,
        "DualAggregator 1.0.0" if svr else "AccessControlledOffchainAggregator 1.0.0",
    )


def decode(logs: list[dict]):  # type: ignore[no-untyped-def]
    return decode_logs(logs, frozenset([POOL, POOL2]), frozenset([AGG]), ATLAS)


def test_liquidation_decodes_every_field() -> None:
    (liq,) = decode([liquidation(5, "0x" + "12" * 32, 3)]).liquidations
    assert (liq.collateral_asset, liq.debt_asset, liq.user) == (WBTC, USDC, "0x" + "ee" * 20)
    assert (liq.debt_to_cover, liq.liquidated_collateral_amount) == (123, 456)
    assert liq.liquidator == "0x" + "ff" * 20 and liq.receive_atoken is True
    assert liq.pos.block_number == 5 and liq.pos.log_index == 3


def test_mev_share_rule_same_block_after_the_update() -> None:
    tx1, tx2 = "0x" + "01" * 32, "0x" + "02" * 32
    logs = [
        *report(10, tx1, 0),
        liquidation(10, tx2, 1),
        liquidation(11, tx2, 0),
        liquidation(10, tx2, 2, collateral=LINK),
    ]
    decoded = decode(logs)
    r = rules("mev-share")
    matches = r.attribute(decoded.liquidations, decoded.oracle_updates, book(r))
    assert set(matches) == {(tx2, 1)}  # next block: no; LINK/USDC not priced by AGG: no
    assert matches[(tx2, 1)].round_id == 7 and matches[(tx2, 1)].oracle_tx_hash == tx1


def test_liquidation_before_the_update_is_not_svr() -> None:
    tx = "0x" + "01" * 32
    decoded = decode([liquidation(10, tx, 0), *report(10, tx, 1)])
    r = rules("mev-share")
    assert r.attribute(decoded.liquidations, decoded.oracle_updates, book(r)) == {}


def test_atlas_rule_needs_the_same_transaction() -> None:
    tx1, tx2 = "0x" + "01" * 32, "0x" + "02" * 32
    result = log(
        ATLAS,
        [SOLVER_TX_RESULT, "0x" + word(1), "0x" + word(2), "0x" + word(CONTROL)],
        word(0) + word(5 * 10**17) + word(1) + word(1) + word(0),
        10,
        tx1,
        3,
    )
    decoded = decode(
        [*report(10, tx1, 0), liquidation(10, tx1, 2), liquidation(10, tx2, 4), result]
    )
    r = rules("atlas")
    matches = r.attribute(decoded.liquidations, decoded.oracle_updates, book(r))
    assert set(matches) == {(tx1, 2)}
    (payment,) = r.atlas_payments(
        decoded.liquidations, matches, decoded.oracle_updates, decoded.solver_results, book(r)
    )
    assert payment.amount == 5 * 10**17 and payment.token is None
    assert payment.liquidation_keys == ((tx1, 2),) and payment.aggregator == AGG


def test_only_the_source_in_force_in_the_liquidations_market_counts() -> None:
    """With nothing configured, AGG counts where it stood behind a source of the
    liquidation's asset in its own market, from the AssetSourceUpdated on: not before the
    switch (even in the switch's block, before its log), not in the other market, not for
    another asset, and no longer once the source moved away from it."""
    tx = ["0x" + f"{i:02x}" * 32 for i in range(1, 8)]
    r = rules("mev-share", configured=False)
    sources = book(
        r,
        source("core", 20, 3, WBTC, svr=True),  # core WBTC -> AGG from block 20, log 3
        source("prime", 20, 9, WBTC, svr=False),  # prime WBTC: a plain feed
        source("core", 40, 0, WBTC, svr=False),  # core WBTC away from AGG at block 40
    )
    logs = [
        *report(10, tx[0], 0),
        liquidation(10, tx[1], 1),  # before the switch's block
        *report(20, tx[2], 1),
        liquidation(20, tx[3], 2),  # the switch's block, before its log (3)
        *report(20, tx[4], 5),
        liquidation(20, tx[5], 6),  # after it: SVR
        liquidation(20, tx[5], 7, pool=POOL2),  # prime: its WBTC source is a plain feed
        liquidation(20, tx[5], 8, collateral=LINK),  # LINK/USDC: no SVR source
        *report(40, tx[6], 1),
        liquidation(40, tx[6], 2),  # after the switch away
    ]
    decoded = decode(logs)
    matches = r.attribute(decoded.liquidations, decoded.oracle_updates, sources)
    assert set(matches) == {(tx[5], 6)}
    assert matches[(tx[5], 6)].oracle_tx_hash == tx[4]
    assert r.attribute(decoded.liquidations, decoded.oracle_updates, book(r)) == {}
    assert sources.in_force(AGG, 20, 4) and not sources.in_force(AGG, 20, 2)
    assert not sources.in_force(AGG, 40, 1)


def test_usd_and_split_are_exact() -> None:
    assert usd(123_456_789, 6_000_012_345_678, 8) == Decimal("74074.2258157763907942")
    r = rules("mev-share")
    rule = r.chain.svr.split_at(datetime(2026, 2, 1, tzinfo=UTC))
    aave, chainlink = r.split(rule, Decimal("100.01"))
    assert (aave, chainlink) == (Decimal("65.0065"), Decimal("35.0035"))
    assert share(Decimal("1"), 3) == Decimal("0.333333333333333333")


def test_mev_share_refund_is_the_builders_transfer_after_the_back_run() -> None:
    """In an SVR liquidation's block, a recapture is a transfer to a recipient from the
    block's fee recipient (the builder) after the back-run; the same transfer from anyone
    else, or before the back-run, is not one."""
    recipient, builder, other = "0x" + "99" * 20, "0x" + "b1" * 20, "0x" + "0e" * 20
    tx_update, tx_backrun = "0x" + "01" * 32, "0x" + "02" * 32
    r = rules("mev-share")
    decoded = decode([*report(10, tx_update, 0), liquidation(10, tx_backrun, 1)])
    for i, log_ in enumerate(decoded.liquidations):
        decoded.liquidations[i] = log_._replace(pos=log_.pos._replace(tx_index=1))
    matches = r.attribute(decoded.liquidations, decoded.oracle_updates, book(r))

    def transfer(index: int, sender: str, value: int) -> dict[str, str]:
        return {
            "hash": "0x" + f"{0xA0 + index:02x}" * 32,
            "from": sender,
            "to": recipient,
            "value": hex(value),
            "transactionIndex": hex(index),
        }

    block = {
        "hash": "0x" + f"{10:064x}",
        "miner": builder,
        "transactions": [
            transfer(0, builder, 5),  # before the back-run
            transfer(2, builder, 7 * 10**17),  # the refund
            transfer(3, other, 10**18),  # someone else paying the recipient
        ],
    }
    (payment,) = r.mev_share_payments(decoded.liquidations, matches, {10: block})
    assert payment.amount == 7 * 10**17 and payment.liquidation_keys == ((tx_backrun, 1),)
    assert (
        r.mev_share_payments(decoded.liquidations, matches, {10: block | {"miner": other}})[
            0
        ].amount
        == 10**18
    )


def test_mev_share_liquidation_without_a_refund_was_not_sold() -> None:
    tx_update, tx_backrun = "0x" + "01" * 32, "0x" + "02" * 32
    decoded = decode([*report(10, tx_update, 0), liquidation(10, tx_backrun, 1)])
    r = rules("mev-share")
    matches = r.attribute(decoded.liquidations, decoded.oracle_updates, book(r))
    assert set(matches) == {(tx_backrun, 1)}
    assert r.won(matches, []) == {}  # the update was not sold
    unwatched = rules("mev-share")
    unwatched.recipients = frozenset()
    assert unwatched.won(matches, []) == matches  # no recipient: the update alone decides
    assert rules("atlas").won(matches, []) == matches  # a metacall is the sale


def test_routes_follow_the_real_event_order() -> None:
    """SecondaryRoundIdUpdated then NewTransmission: a new SVR report (attributed); a
    SecondaryRoundIdUpdated alone: a catch-up (never attributed); a NewTransmission with no
    marker before it: the public route. The report's fields are decoded."""
    tx1, tx2, tx3 = "0x" + "01" * 32, "0x" + "02" * 32, "0x" + "03" * 32
    public = report(12, tx3, 0)[1]
    decoded = decode(
        [
            *report(10, tx1, 0),
            liquidation(10, tx1, 1),
            secondary(11, tx2, 0, round_id=5),
            liquidation(11, tx2, 1),
            public,
        ]
    )
    routes = {(u.pos.tx_hash, u.kind): u.route for u in decoded.oracle_updates}
    assert routes == {
        (tx1, "secondary_round_id_updated"): "secondary",
        (tx1, "new_transmission"): "secondary",
        (tx2, "secondary_round_id_updated"): "catch_up",
        (tx3, "new_transmission"): "primary",
    }
    (transmission,) = [u for u in decoded.oracle_updates if u.pos.tx_hash == tx1][1:]
    assert transmission.transmitter == "0x" + "7a" * 20
    assert transmission.observations_timestamp == 1_770_000_000
    assert transmission.config_digest == "0x" + "cd" * 32
    assert transmission.epoch_and_round == 0x0105
    r = rules("atlas")
    matches = r.attribute(decoded.liquidations, decoded.oracle_updates, book(r))
    assert set(matches) == {(tx1, 1)}


def test_atlas_auction_depth_two_winners_a_loser_and_a_rejected_bid() -> None:
    """Every SolverTxResult of Aave's DAppControl is a bid; each success is a recapture (two
    winners: two), the best unsuccessful one is the best losing bid, whether it was
    executed or rejected before; another DAppControl's results are no bids of Aave's."""
    tx = "0x" + "01" * 32
    other_control = "0x" + "de" * 20

    def result(index: int, amount: int, executed: bool, success: bool, bits: int = 0,
               control: str = CONTROL) -> dict:  # fmt: skip
        return log(
            ATLAS,
            [SOLVER_TX_RESULT, "0x" + word(index), "0x" + word(2), "0x" + word(control)],
            word(0) + word(amount) + word(int(executed)) + word(int(success)) + word(bits),
            10,
            tx,
            index,
        )

    decoded = decode(
        [
            *report(10, tx, 0),
            result(1, 9 * 10**17, executed=False, success=False, bits=1 << 13),
            result(2, 7 * 10**17, executed=True, success=False, bits=1 << 17),
            liquidation(10, tx, 3),
            result(4, 5 * 10**17, executed=True, success=True),
            result(5, 4 * 10**17, executed=True, success=True),
            result(6, 10**19, executed=True, success=False, control=other_control),
        ]
    )
    rejected = decoded.solver_results[0]
    assert (rejected.executed, rejected.success, rejected.result) == (False, False, 1 << 13)
    r = rules("atlas")
    matches = r.attribute(decoded.liquidations, decoded.oracle_updates, book(r))
    payments = r.atlas_payments(
        decoded.liquidations, matches, decoded.oracle_updates, decoded.solver_results, book(r)
    )
    assert sorted(p.amount for p in payments) == [4 * 10**17, 5 * 10**17]
    (auction,) = r.auctions(decoded.solver_results).values()
    assert auction.bids == 4 and auction.best_losing == (None, 9 * 10**17)
    assert r.sold(decoded.oracle_updates, matches, payments, book(r)) == {(tx, 0): True}
