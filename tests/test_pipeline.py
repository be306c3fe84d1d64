"""The indexer end to end on the real five-chain devnet: after a backfill the database
equals the manifest the scenario took from the receipts, exactly."""

from __future__ import annotations

import asyncio
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from indexer.config import Config, load_config
from indexer.devnet.market import BY_SYMBOL, LIQUIDATION_PROTOCOL_FEE_BPS
from indexer.pipeline import ChainIndexer
from indexer.store.rollups import (
    LIQUIDATION_ROLLUP_DRIFT,
    SVR_REVENUE_ROLLUP_DRIFT,
    rollup_drift,
)
from tests.conftest import drop_database, make_database

ROLLUPS_MATCH = LIQUIDATION_ROLLUP_DRIFT
SVR_ROLLUP_MATCH = SVR_REVENUE_ROLLUP_DRIFT


async def backfill_all(config: Config, dsn: str) -> None:
    async def one(name: str) -> None:
        ix = ChainIndexer(config.chains[name], dsn)
        try:
            await ix.open()
            await ix.backfill()
        finally:
            await ix.close()

    await asyncio.gather(*(one(name) for name in config.chains))


@pytest.fixture(scope="module")
def indexed(devnet: tuple[Path, dict[str, Any]], pg_template: str) -> Any:
    workdir, manifest = devnet
    config = load_config(workdir / ".devnet" / "devnet.toml")
    dsn = make_database(pg_template)
    asyncio.run(backfill_all(config, dsn))
    yield dsn, manifest, config
    drop_database(dsn)


def usd(amount: str, price: str, decimals: int) -> Decimal:
    """price x amount, computed here independently of the indexer, exactly."""
    with localcontext(prec=200):
        return Decimal(int(amount) * int(price)) / Decimal(10) ** (decimals + 8)


async def test_every_liquidation_matches_the_manifest(indexed: Any) -> None:
    dsn, manifest, _ = indexed
    conn = await asyncpg.connect(dsn)
    try:
        rows = {
            f"{r['chain_id']}:{r['tx_hash']}:{r['log_index']}": r
            for r in await conn.fetch("SELECT * FROM liquidations")
        }
        expected_total = sum(len(c["liquidations"]) for c in manifest["chains"].values())
        assert len(rows) == expected_total > 0
        closures = [
            liq["closed_fully"] for c in manifest["chains"].values() for liq in c["liquidations"]
        ]
        assert True in closures and False in closures  # both cases are exercised
        for chain in manifest["chains"].values():
            assets = chain["assets"]
            for liq in chain["liquidations"]:
                row = rows[liq["id"]]
                assert row["block_number"] == liq["block_number"]
                assert row["block_hash"] == liq["block_hash"]
                assert row["market"] == liq["market"]
                assert row["user_address"] == liq["user"]
                assert row["liquidator"] == liq["liquidator"]
                assert row["collateral_asset"] == liq["collateral_asset"]
                assert row["debt_asset"] == liq["debt_asset"]
                assert row["debt_to_cover"] == Decimal(liq["debt_to_cover"])
                assert row["liquidated_collateral_amount"] == Decimal(
                    liq["liquidated_collateral_amount"]
                )
                assert row["receive_atoken"] == liq["receive_atoken"]
                assert int(row["block_time"].timestamp()) == liq["block_time"]
                assert row["collateral_price"] == Decimal(liq["collateral_price"])
                assert row["debt_price"] == Decimal(liq["debt_price"])
                c_dec = assets[liq["collateral_asset"]]["decimals"]
                d_dec = assets[liq["debt_asset"]]["decimals"]
                assert row["debt_usd"] == usd(liq["debt_to_cover"], liq["debt_price"], d_dec)
                assert row["collateral_usd"] == usd(
                    liq["liquidated_collateral_amount"], liq["collateral_price"], c_dec
                )
                assert row["protocol_fee_amount"] == Decimal(liq["protocol_fee_amount"])
                fee_usd = usd(liq["protocol_fee_amount"], liq["collateral_price"], c_dec)
                assert row["protocol_fee_usd"] == fee_usd
                with localcontext(prec=200):
                    assert row["bonus_usd"] == row["collateral_usd"] - row["debt_usd"]
                    assert row["collateral_seized_usd"] == row["collateral_usd"] + fee_usd
                assert row["closed_fully"] == liq["closed_fully"], liq["id"]
                assert row["is_svr"] == bool(liq["svr"]), liq["id"]
                if liq["svr"]:
                    assert row["svr_aggregator"] == liq["svr_aggregator"]
                    assert row["svr_round_id"] == liq["svr_round_id"]
                    assert row["svr_oracle_tx_hash"] == liq["svr_oracle_tx_hash"]
    finally:
        await conn.close()


def percent_mul(value: int, percentage: int) -> int:
    """Aave's PercentageMath.percentMul: half up, in bps."""
    return (value * percentage + 5_000) // 10_000


def percent_div(value: int, percentage: int, ceil: bool = False) -> int:
    """PercentageMath.percentDiv (half up), or percentDivCeil (V3.6's capped case)."""
    if ceil:
        return -(-value * 10_000 // percentage)
    return (value * 10_000 + percentage // 2) // percentage


Rules = tuple[tuple[int, int], int, int, bool]  # decimals, bonus, fee bps, V3.6


def event_agrees(liq: dict[str, Any], prices: tuple[int, int], rules: Rules) -> bool:
    """Whether a LiquidationCall's own amounts follow from these two prices, as the Pool
    computes them (LiquidationLogic._calculateAvailableCollateralToLiquidate), exactly:
    the collateral taken (the liquidator's plus the treasury's fee) is debtToCover's worth
    times the bonus, or, when the borrower had less (all of it taken), debtToCover is what
    that collateral was worth over the bonus (V3.6 rounds that up); and the fee is its
    share of the bonus part."""
    collateral_price, debt_price = prices
    decimals, bonus, fee_bps, v36 = rules
    cu, du = 10 ** decimals[0], 10 ** decimals[1]
    dtc, fee = int(liq["debt_to_cover"]), int(liq["protocol_fee_amount"])
    taken = int(liq["liquidated_collateral_amount"]) + fee
    if fee != percent_mul(taken - percent_div(taken, bonus), fee_bps):
        return False
    most = percent_mul(debt_price * dtc * cu // (collateral_price * du), bonus)
    if most == taken:
        return True
    worth = collateral_price * taken * du // (debt_price * cu)
    return dtc == percent_div(worth, bonus, ceil=v36)


async def test_every_event_agrees_with_its_stored_prices(indexed: Any) -> None:
    """Every liquidation's own amounts (debtToCover, collateral, fee) follow, to Aave's
    rounding, from the two prices stored for it: the price the Pool used. Where the end of
    the block answers other prices (a feed's view changed after the liquidation there), the
    row is priced as of its position, and the end-of-block prices fail the same check."""
    dsn, manifest, _ = indexed
    conn = await asyncpg.connect(dsn)
    try:
        rows = {
            f"{r['chain_id']}:{r['tx_hash']}:{r['log_index']}": r
            for r in await conn.fetch("SELECT * FROM liquidations")
        }
    finally:
        await conn.close()
    checked = differing = 0
    for chain in manifest["chains"].values():
        assets = chain["assets"]
        for liq in chain["liquidations"]:
            row = rows[liq["id"]]
            c, d = assets[liq["collateral_asset"]], assets[liq["debt_asset"]]
            rules: Rules = (
                (c["decimals"], d["decimals"]),
                BY_SYMBOL[c["symbol"]].liquidation_bonus,
                LIQUIDATION_PROTOCOL_FEE_BPS,
                liq["market"] == "v36",
            )
            stored = (int(row["collateral_price"]), int(row["debt_price"]))
            assert event_agrees(liq, stored, rules), liq["id"]
            checked += 1
            at_end = (
                int(liq["collateral_price_at_block_end"]),
                int(liq["debt_price_at_block_end"]),
            )
            if at_end != stored:
                differing += 1
                assert row["price_basis"] == "position", liq["id"]
                assert not event_agrees(liq, at_end, rules), liq["id"]
            else:
                assert row["price_basis"] in ("block", "position"), liq["id"]
    position = sum(r["price_basis"] == "position" for r in rows.values())
    print(
        f"\n{checked} liquidations: {differing} priced differently at the end of their block "
        f"than at their position; {position} priced by replaying their block"
    )
    assert checked == len(rows) and differing > 0
    assert not any(r["price_basis"] == "block_unsure" for r in rows.values())


SOURCE_FIELDS = (
    "market",
    "oracle",
    "asset",
    "source",
    "aggregator",
    "is_svr",
    "type_and_version",
    "block_number",
    "block_hash",
    "tx_hash",
    "log_index",
)


async def test_asset_sources_are_the_oracles_history(indexed: Any) -> None:
    """With a configuration that lists pools and oracles only, the sources found on-chain
    (and what stands behind each) are exactly the manifest's: the constructors' and every
    switch, in both Ethereum markets; and the aggregators read are those behind them."""
    dsn, manifest, config = indexed
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT * FROM asset_sources")
        indexed_updates = await conn.fetch(
            "SELECT DISTINCT chain_id, aggregator FROM svr_oracle_updates"
        )
    finally:
        await conn.close()
    assert not any(chain.svr.aggregators for chain in config.chains.values())
    for name, chain in manifest["chains"].items():
        cid = chain["chain_id"]
        got = sorted(tuple(r[f] for f in SOURCE_FIELDS) for r in rows if r["chain_id"] == cid)
        want = sorted(tuple(e[f] for f in SOURCE_FIELDS) for e in chain["sources"])
        svr_model = config.chains[name].svr.model
        assert got == (want if svr_model != "none" else []), name
        behind = {e["aggregator"] for e in chain["sources"] if e["is_svr"]}
        read = {r["aggregator"] for r in indexed_updates if r["chain_id"] == cid}
        assert read <= behind, name
        assert {u["aggregator"] for u in chain["oracle_updates"]} == read, name
    ethereum = manifest["chains"]["ethereum"]
    assert {e["market"] for e in ethereum["sources"]} == {"core", "prime", "v36"}
    assert {e["market"] for e in ethereum["liquidations"]} == {"core", "prime", "v36"}


async def test_every_recapture_matches_the_manifest(indexed: Any) -> None:
    dsn, manifest, config = indexed
    conn = await asyncpg.connect(dsn)
    try:
        rows = {
            (r["chain_id"], r["tx_hash"], r["source_index"]): r
            for r in await conn.fetch("SELECT * FROM svr_recaptures")
        }
        expected = [
            (chain["chain_id"], rec, name)
            for name, chain in manifest["chains"].items()
            for rec in chain["recaptures"]
        ]
        assert len(rows) == len(expected)
        svr_chains = {name for _, _, name in expected}
        assert {"ethereum", "arbitrum", "base"} <= svr_chains
        for chain_id, rec, name in expected:
            row = rows[(chain_id, rec["tx_hash"], rec["source_index"])]
            assert row["amount"] == Decimal(rec["amount"])
            assert row["token"] == rec["token"]
            assert sorted(row["liquidation_ids"]) == sorted(rec["liquidation_ids"])
            assert row["aggregator"] == rec["aggregator"]
            rule = config.chains[name].svr.split_at(row["block_time"])
            assert row["aave_bps"] == rule.aave_bps
            assert row["aave_usd"] + row["chainlink_usd"] == row["amount_usd"]
            assert row["aave_usd"] == row["amount_usd"] * rule.aave_bps / 10000
        # The schedule changes inside the scenario: both rules are used.
        assert len({r["aave_bps"] for r in rows.values()}) >= 2
        # Each SVR liquidation carries its equal share of every recapture it belongs to.
        parts: dict[str, list[Decimal]] = {}
        for row in rows.values():
            for liq_id in row["liquidation_ids"]:
                n = len(row["liquidation_ids"])
                parts.setdefault(liq_id, []).append(
                    row["amount_usd"]
                    if n == 1
                    else (row["amount_usd"] / n).quantize(Decimal("1e-18"))
                )
        liqs = {
            f"{r['chain_id']}:{r['tx_hash']}:{r['log_index']}": r["svr_recaptured_usd"]
            for r in await conn.fetch("SELECT * FROM liquidations WHERE is_svr")
        }
        assert parts and set(parts) <= set(liqs)
        for liq_id, shares in parts.items():
            assert liqs[liq_id] == sum(shares, Decimal(0)), liq_id
    finally:
        await conn.close()


async def test_oracle_updates_and_rollups(indexed: Any) -> None:
    dsn, manifest, _ = indexed
    conn = await asyncpg.connect(dsn)
    try:
        fields = (
            "kind",
            "route",
            "transmitter",
            "observations_timestamp",
            "epoch_and_round",
            "config_digest",
            "sold",
        )
        stored = {
            (r["chain_id"], r["tx_hash"], r["log_index"]): tuple(r[f] for f in fields)
            for r in await conn.fetch("SELECT * FROM svr_oracle_updates")
        }
        expected = {
            (chain["chain_id"], u["tx_hash"], u["log_index"]): tuple(u[f] for f in fields)
            for chain in manifest["chains"].values()
            for u in chain["oracle_updates"]
        }
        assert stored.keys() == expected.keys()
        wrong = {k: (stored[k], expected[k]) for k in stored if stored[k] != expected[k]}
        assert not wrong, list(wrong.items())[:3]
        routes = {v[1] for v in expected.values()}
        assert {"secondary", "catch_up", "primary"} <= routes
        assert {True, False} <= {v[-1] for v in expected.values()}  # sold and unsold reports
        drift = await rollup_drift(conn)
        assert set(drift) == {
            "chain_rollup_daily",
            "chain_rollup_hourly",
            "liquidation_rollup",
            "liquidator_rollup_daily",
            "svr_revenue_rollup_daily",
        }
        assert set(drift.values()) == {0}, drift
        per_chain = dict(
            await conn.fetch(
                "SELECT chain_id, sum(liquidation_count) FROM liquidation_rollup "
                "WHERE grain = 'day' GROUP BY 1"
            )
        )
        assert per_chain == {
            c["chain_id"]: len(c["liquidations"]) for c in manifest["chains"].values()
        }
    finally:
        await conn.close()


async def test_backfill_again_changes_nothing(indexed: Any) -> None:
    dsn, _, config = indexed
    conn = await asyncpg.connect(dsn)
    try:
        before = await conn.fetchval("SELECT count(*) FROM liquidations")
        # Rewind one chain's checkpoint as a crash between commit and exit would not, but a
        # careless operator might: the replay inserts nothing twice.
        await conn.execute("UPDATE checkpoints SET block_number = block_number - 50")
        await backfill_all(config, dsn)
        assert await conn.fetchval("SELECT count(*) FROM liquidations") == before
        assert await conn.fetchval(ROLLUPS_MATCH) == 0
    finally:
        await conn.close()


async def test_one_writer_per_chain(indexed: Any) -> None:
    dsn, _, config = indexed
    chain = next(iter(config.chains.values()))
    first = ChainIndexer(chain, dsn)
    second = ChainIndexer(chain, dsn)
    await first.open()
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(second.open(), timeout=3)
    finally:
        await second.close()
        await first.close()
    # The owner is gone: a standby takes over.
    standby = ChainIndexer(chain, dsn)
    try:
        await asyncio.wait_for(standby.open(), timeout=10)
        assert await standby.checkpoint() >= chain.first_block
    finally:
        await standby.close()


async def test_api_over_the_indexed_devnet(indexed: Any) -> None:
    """The GraphQL answers for the devnet equal the manifest: per-chain counts, SVR counts,
    recaptured value and its split, and a full cursor walk of one chain."""
    from tests.test_api_support import api_client, gql

    dsn, manifest, _ = indexed
    conn = await asyncpg.connect(dsn)
    try:
        recaptured = {
            r["chain_id"]: (r["usd"], r["aave"], r["link"])
            for r in await conn.fetch(
                "SELECT chain_id, sum(amount_usd) AS usd, sum(aave_usd) AS aave, "
                "sum(chainlink_usd) AS link FROM svr_recaptures GROUP BY 1"
            )
        }
    finally:
        await conn.close()
    names = {1: "ETHEREUM", 137: "POLYGON", 43114: "AVALANCHE", 42161: "ARBITRUM", 8453: "BASE"}
    async with api_client(dsn) as client:
        body = await gql(
            client,
            "{ liquidationStats(groupBy: [CHAIN]) { chain count svrCount }"
            "  svrRevenue(groupBy: [CHAIN]) { chain svrLiquidationCount recapturedUsd aaveUsd"
            "  chainlinkUsd } }",
        )
        assert "errors" not in body, body
        stats = {row["chain"]: row for row in body["data"]["liquidationStats"]}
        for chain in manifest["chains"].values():
            row = stats[names[chain["chain_id"]]]
            assert row["count"] == len(chain["liquidations"])
            assert row["svrCount"] == sum(1 for liq in chain["liquidations"] if liq["svr"])
        revenue = {row["chain"]: row for row in body["data"]["svrRevenue"]}
        assert set(revenue) == {"ETHEREUM", "ARBITRUM", "BASE"}
        for chain_id, (usd_total, aave, link) in recaptured.items():
            row = revenue[names[chain_id]]
            assert Decimal(row["recapturedUsd"]) == usd_total
            assert Decimal(row["aaveUsd"]) == aave and Decimal(row["chainlinkUsd"]) == link
            assert Decimal(row["aaveUsd"]) + Decimal(row["chainlinkUsd"]) == usd_total

        # unsold reports per chain, and each SVR liquidation's lead over its public twin
        unsold = {row["chain"]: row["unsoldUpdates"] for row in (await gql(
            client, "{ svrRevenue(groupBy: [CHAIN]) { chain unsoldUpdates } }"
        ))["data"]["svrRevenue"]}  # fmt: skip
        for chain in manifest["chains"].values():
            if names[chain["chain_id"]] in unsold:
                assert unsold[names[chain["chain_id"]]] == sum(
                    1 for u in chain["oracle_updates"] if u["sold"] is False
                )
        body = await gql(
            client,
            "{ liquidations(first: 1000, filter: {svr: true}) { edges { node {"
            " id blockNumber svr { aggregator roundId leadBlocks } } } } }",
        )
        assert "errors" not in body, body
        twins = {
            (chain["chain_id"], u["aggregator"], u["round_id"]): u["block_number"]
            for chain in manifest["chains"].values()
            for u in sorted(chain["oracle_updates"], key=lambda u: -u["block_number"])
            if u["kind"] == "primary_feed_unlocked"
        }
        leads = 0
        for edge in body["data"]["liquidations"]["edges"]:
            node = edge["node"]
            chain_id = int(node["id"].split(":")[0])
            key = (chain_id, node["svr"]["aggregator"].lower(), int(node["svr"]["roundId"]))
            want = twins[key] - node["blockNumber"] if key in twins else None
            assert node["svr"]["leadBlocks"] == want, node["id"]
            leads += want is not None
        assert leads > 0

        seen: list[str] = []
        after = None
        while True:
            page = await gql(
                client,
                "query($after: String) { liquidations(filter: {chains: [POLYGON]}, first: 37,"
                " after: $after) { edges { node { id finalized } } pageInfo { hasNextPage"
                " endCursor } } }",
                {"after": after},
            )
            assert "errors" not in page, page
            data = page["data"]["liquidations"]
            seen += [edge["node"]["id"] for edge in data["edges"]]
            assert all(edge["node"]["finalized"] for edge in data["edges"])
            if not data["pageInfo"]["hasNextPage"]:
                break
            after = data["pageInfo"]["endCursor"]
        expected = {liq["id"] for liq in manifest["chains"]["polygon"]["liquidations"]}
        assert len(seen) == len(set(seen)) and set(seen) == expected


async def test_a_switch_met_while_tailing_reads_the_range_again(
    devnet: tuple[Path, dict[str, Any]], pg_template: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Backfilled only up to just before an asset switches to an SVR feed (so that feed's
    DualAggregator is not read yet), then tailed: the range with the AssetSourceUpdated is
    read again with the new aggregator, and the SVR liquidations after the switch are found
    as in a full backfill."""
    workdir, manifest = devnet
    config = load_config(workdir / ".devnet" / "devnet.toml")
    entry = manifest["chains"]["ethereum"]
    constructor = min(e["block_number"] for e in entry["sources"])
    switches = [e for e in entry["sources"] if e["is_svr"] and e["block_number"] > constructor]
    assert switches, "the devnet switches an asset to an SVR feed part-way"
    switch = min(switches, key=lambda e: e["block_number"])
    new_feed = switch["aggregator"]
    earlier = {e["aggregator"] for e in entry["sources"] if e["is_svr"] and e is not switch}
    earlier -= {e["aggregator"] for e in switches if e["block_number"] > switch["block_number"]}
    dsn = await asyncio.to_thread(make_database, pg_template)
    ix = ChainIndexer(config.chains["ethereum"], dsn)
    try:
        await ix.open()
        await ix.backfill(to_block=switch["block_number"] - 1)
        assert new_feed not in earlier  # a feed no source used before the switch
        assert new_feed not in ix.aggregators
        head = int(await ix.client.call("eth_blockNumber"), 16)
        for _ in range(1000):
            if await ix.checkpoint() >= head:
                break
            await ix.tail_once()
        assert await ix.checkpoint() == head
        assert new_feed in ix.aggregators
        assert any("became sources" in r.getMessage() for r in caplog.records)
        conn = await asyncpg.connect(dsn)
        try:
            svr = await conn.fetch(
                "SELECT tx_hash, log_index, svr_aggregator FROM liquidations WHERE is_svr"
            )
            sources = await conn.fetchval("SELECT count(*) FROM asset_sources")
        finally:
            await conn.close()
        want = {
            (e["tx_hash"], e["log_index"], e["svr_aggregator"])
            for e in entry["liquidations"]
            if e["svr"]
        }
        assert {(r["tx_hash"], r["log_index"], r["svr_aggregator"]) for r in svr} == want
        assert any(a == new_feed for _, _, a in want)
        assert sources == len(entry["sources"])
    finally:
        await ix.close()
        await asyncio.to_thread(drop_database, dsn)


async def test_atlas_auction_depth_matches_the_metacalls(indexed: Any) -> None:
    """Each Atlas SVR liquidation keeps its metacall's number of bids (Aave's DAppControl)
    and whether a bid lost; Ethereum's bids are not on chain."""
    dsn, manifest, _ = indexed
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT chain_id, tx_hash, svr_bid_count, svr_best_losing_bid_usd"
            " FROM liquidations WHERE is_svr"
        )
    finally:
        await conn.close()
    by_chain = {c["chain_id"]: c for c in manifest["chains"].values()}
    losers = 0
    for r in rows:
        chain = by_chain[r["chain_id"]]
        if chain["svr"]["model"] != "atlas":
            assert r["svr_bid_count"] is None and r["svr_best_losing_bid_usd"] is None
            continue
        control = chain["svr"]["dapp_control"]
        (metacall,) = [
            m
            for m in chain["metacalls"]
            if m["tx_hash"] == r["tx_hash"] and m["dapp_control"] == control
        ]
        assert r["svr_bid_count"] == len(metacall["bids"])
        lost = [b for b in metacall["bids"] if not b["success"]]
        assert (r["svr_best_losing_bid_usd"] is not None) == bool(lost)
        losers += bool(lost)
    assert losers > 0


def _blocks_since_update(chain: dict[str, Any], liq: dict[str, Any]) -> int | None:
    """From the manifest alone: the feeds in force behind the liquidation's two assets in
    its market (the last source set before it), and the last AnswerUpdated of those before
    it in block and log order."""
    at = (liq["block_number"], liq["log_index"])
    feeds = set()
    for asset in (liq["collateral_asset"], liq["debt_asset"]):
        before = [
            s
            for s in chain["sources"]
            if s["market"] == liq["market"]
            and s["asset"] == asset
            and (s["block_number"], s["log_index"]) < at
        ]
        if before:
            last = max(before, key=lambda s: (s["block_number"], s["log_index"]))
            if last["aggregator"]:
                feeds.add(last["aggregator"])
    updates = [
        u["block_number"]
        for u in chain["oracle_updates"]
        if u["kind"] == "answer_updated"
        and u["aggregator"] in feeds
        and (u["block_number"], u["log_index"]) < at
    ]
    return liq["block_number"] - max(updates) if updates else None


async def test_blocks_since_price_update_follow_the_feeds(indexed: Any) -> None:
    """blocksSincePriceUpdate of every liquidation equals what the manifest's sources and
    oracle updates give; an SVR back-run is 0 blocks after its update."""
    from tests.test_api_support import api_client, gql

    dsn, manifest, _ = indexed
    query = (
        "query($f: LiquidationFilter, $after: String) { liquidations(filter: $f, first: 500,"
        " after: $after) { edges { node { id blocksSincePriceUpdate svr { roundId } } }"
        " pageInfo { hasNextPage endCursor } } }"
    )
    async with api_client(dsn) as client:
        for chain in manifest["chains"].values():
            got: dict[str, Any] = {}
            after = None
            while True:
                body = await gql(client, query, {"f": {"chainIds": [chain["chain_id"]]},
                                                 "after": after})  # fmt: skip
                assert not body.get("errors"), body
                page = body["data"]["liquidations"]
                for edge in page["edges"]:
                    got[edge["node"]["id"]] = edge["node"]
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
            want = {liq["id"]: _blocks_since_update(chain, liq) for liq in chain["liquidations"]}
            assert {i: n["blocksSincePriceUpdate"] for i, n in got.items()} == want
            svr = [liq for liq in chain["liquidations"] if liq["svr"]]
            assert all(got[liq["id"]]["blocksSincePriceUpdate"] == 0 for liq in svr)
            if chain["oracle_updates"]:
                assert any(v is not None and v > 0 for v in want.values())
