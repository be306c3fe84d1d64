"""Which liquidations are priced as of their position: only those whose block changes an
indexed feed of their assets (or their asset's source) after them; and the replay's layout."""

from __future__ import annotations

from indexer.config import AggregatorConfig
from indexer.decode.events import Liquidation, LogPosition, OracleUpdate, SourceUpdate
from indexer.enrich.position import Marked, PositionPrices, marked
from indexer.enrich.sources import SourceBook

POOL, ORACLE = "0x" + "a0" * 20, "0x" + "0a" * 20
WETH, USDC, WBTC = "0x" + "e1" * 20, "0x" + "c1" * 20, "0x" + "b1" * 20
FEED, OTHER_FEED = "0x" + "f1" * 20, "0x" + "f2" * 20
BOOK = SourceBook([AggregatorConfig(address=FEED, assets=[WETH])])
MARKETS, ORACLES = {POOL: "core"}, {POOL: ORACLE}


def pos(tx: int, log: int, address: str, block: int = 100) -> LogPosition:
    return LogPosition(block, "0xb", f"0xt{tx}", tx, log, address)


def liq(tx: int, log: int, collateral: str = WETH, debt: str = USDC) -> Liquidation:
    return Liquidation(pos(tx, log, POOL), collateral, debt, "0xu", 1, 1, "0xl", False)


def update(tx: int, log: int, kind: str = "answer_updated", feed: str = FEED) -> OracleUpdate:
    return OracleUpdate(pos(tx, log, feed), kind, "secondary", 1, 1)


def keys(found: list[Marked]) -> list[tuple[int, int]]:
    return [(m.liq.pos.tx_index, m.liq.pos.log_index) for m in found]


def test_only_a_later_change_of_an_indexed_feed_of_its_assets_marks() -> None:
    liqs = [liq(1, 10), liq(3, 30), liq(3, 31, WBTC, USDC)]
    # The usual block: the update precedes the back-run. Nothing is marked.
    assert marked(liqs, [update(0, 2)], [], BOOK, MARKETS, ORACLES) == []
    # A later update of the feed marks the liquidations before it, of its assets only.
    later = [update(0, 2), update(2, 20)]
    assert keys(marked(liqs, later, [], BOOK, MARKETS, ORACLES)) == [(1, 10)]
    # A PrimaryFeedUnlocked changes no reader's view; another block or feed is not this one.
    quiet = [
        update(2, 20, "primary_feed_unlocked"),
        update(2, 21, feed=OTHER_FEED),
        OracleUpdate(pos(2, 22, FEED, block=101), "answer_updated", "primary", 1, 1),
    ]
    assert marked(liqs, quiet, [], BOOK, MARKETS, ORACLES) == []
    # A catch-up changes the SVR view too.
    catch_up = [update(4, 40, "secondary_round_id_updated")]
    assert keys(marked(liqs, catch_up, [], BOOK, MARKETS, ORACLES)) == [(1, 10), (3, 30)]
    # A new source of one of its assets in its market's oracle, later in the block.
    switch = [SourceUpdate(pos(4, 41, ORACLE), WBTC, "0xs")]
    assert keys(marked(liqs, [], switch, BOOK, MARKETS, ORACLES)) == [(3, 31)]


def test_own_transaction_replayed_unless_the_change_is_inside_it() -> None:
    """Atlas: the update, the liquidation and (here) a later update in one transaction."""
    found = marked([liq(1, 10)], [update(1, 5), update(2, 20)], [], BOOK, MARKETS, ORACLES)
    assert [(m.through_own_tx, m.updated_before_in_tx) for m in found] == [(True, True)]
    found = marked([liq(1, 10)], [update(1, 15)], [], BOOK, MARKETS, ORACLES)
    assert [(m.through_own_tx, m.updated_before_in_tx) for m in found] == [(False, False)]
    found = marked([liq(1, 10)], [update(1, 5), update(1, 15)], [], BOOK, MARKETS, ORACLES)
    assert [(m.through_own_tx, m.updated_before_in_tx) for m in found] == [(False, True)]


def test_one_replay_per_block_reads_each_liquidation_in_place() -> None:
    """Transactions 0..k are replayed once, each liquidation's two reads at its place."""
    marks = marked(
        [liq(3, 30), liq(1, 10), liq(1, 11)], [update(5, 50)], [], BOOK, MARKETS, ORACLES
    )
    layout = PositionPrices._layout(marks)
    assert [(m.liq.pos.log_index, upto) for m, upto in layout] == [(10, 2), (11, 2), (30, 4)]
    block = {
        "number": "0x64",
        "timestamp": "0x10",
        "miner": "0x" + "99" * 20,
        "transactions": [
            {"from": f"0x{i:040x}", "to": POOL, "input": "0x", "gas": "0x1"} for i in range(6)
        ],
    }
    params = PositionPrices(None)._simulation(block, marks)  # type: ignore[arg-type]
    calls = params[0]["blockStateCalls"][0]["calls"]
    assert params[1] == "0x63" and params[0]["validation"] is False
    assert params[0]["blockStateCalls"][0]["blockOverrides"]["time"] == "0x10"
    # tx0, tx1, reads of 10, reads of 11, tx2, tx3, reads of 30
    assert [c["to"] for c in calls] == [POOL] * 2 + [ORACLE] * 4 + [POOL] * 2 + [ORACLE] * 2
