"""Bad debt: the V3.6 market of the devnet emits DeficitCreated / DeficitCovered as the
facts file says, the manifest holds exactly the chain's deficit events, and the indexer
stores exactly the manifest's."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from eth_utils import keccak

from indexer.config import load_config
from indexer.devnet import artifacts as art
from indexer.devnet import origin
from indexer.devnet.market import UMBRELLA
from indexer.devnet.rpc import Rpc
from indexer.pipeline import ChainIndexer
from indexer.records import Batch, DeficitRow
from indexer.store import rollback, writer
from tests.conftest import drop_database, make_database
from tests.test_api_support import api_client, gql

# The signatures in the facts file ("Aave V3 deficit events (v3.3+)"), with their indexing.
FACTS = {
    "DeficitCreated": ("DeficitCreated(address,address,uint256)", [True, True, False]),
    "DeficitCovered": ("DeficitCovered(address,address,uint256)", [True, False, False]),
}
CREATED = "0x" + keccak(text=FACTS["DeficitCreated"][0]).hex()
COVERED = "0x" + keccak(text=FACTS["DeficitCovered"][0]).hex()
LIQUIDATION_CALL = "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286"
BALANCE_OF = "0x70a08231"


def test_deficit_events_of_the_v36_pool_are_the_facts() -> None:
    pool = origin.origin("PoolInstance")
    signatures = art.event_signatures(pool)
    for name, (signature, indexed) in FACTS.items():
        assert signatures[name] == signature
        (event,) = [e for e in pool.abi if e.get("type") == "event" and e["name"] == name]
        assert [i["indexed"] for i in event["inputs"]] == indexed, name
    assert art.event_topic(signatures["DeficitCreated"]) == CREATED
    assert art.event_topic(signatures["DeficitCovered"]) == COVERED
    assert art.event_topic(signatures["LiquidationCall"]) == LIQUIDATION_CALL
    # The same selectors as the 1.19.3 Pool for every call the scenario makes of any pool.
    old = art.aave("Pool")
    for fn in ("supply", "borrow", "liquidationCall", "getUserAccountData"):
        assert pool.function(fn).selector == old.function(fn).selector, fn
    # Under EIP-170 (24,576 bytes): no anvil flag needed.
    assert len(pool.deployed_bytecode) // 2 - 1 < 24_576


def test_v36_build_is_cached_by_its_input() -> None:
    first = origin.compile_origin()
    assert origin.compile_origin() is not first  # read back from the cache file
    assert set(first) == set(origin.PATHS)
    units = origin.sources()
    assert all(u.startswith(("@aave-dao/aave-v3-origin/", "@openzeppelin/")) for u in units)


@pytest.fixture(scope="module")
def eth(devnet: tuple[Path, dict[str, Any]]) -> Any:
    workdir, manifest = devnet
    chain = manifest["chains"]["ethereum"]
    state = orjson.loads((workdir / ".devnet/state/ethereum.json").read_bytes())
    rpc = Rpc(state_url(workdir))
    yield chain, state["deployment"], rpc
    rpc.close()


def state_url(workdir: Path) -> str:
    devnet = orjson.loads((workdir / ".devnet/devnet.json").read_bytes())
    return str(devnet["chains"]["ethereum"]["url"])


def test_v36_pool_code_is_the_compiled_pool(eth: Any) -> None:
    _, dep, rpc = eth
    market = dep["markets"]["v36"]
    assert market["package"] == "@aave-dao/aave-v3-origin 3.6.0"
    pool = origin.origin("PoolInstance")
    expected = bytes.fromhex(pool.linked_runtime(market["libraries"])[2:])
    actual = bytes.fromhex(rpc.call("eth_getCode", market["pool_impl"], "latest")[2:])
    assert len(actual) == len(expected)
    strategy = rpc.call(
        "eth_call",
        {"to": market["pool"], "data": pool.encode("RESERVE_INTEREST_RATE_STRATEGY")},
        "latest",
    )
    fillers = {bytes(12) + bytes.fromhex(market["provider"][2:]), bytes.fromhex(strategy[2:])}
    masked: set[int] = set()
    for start, length in origin.immutable_offsets("PoolInstance"):
        assert actual[start : start + length] in fillers
        masked.update(range(start, start + length))
    assert masked
    assert [
        i
        for i, (a, b) in enumerate(zip(actual, expected, strict=True))
        if a != b and i not in masked
    ] == []
    # The proxy points at it; the provider names the Umbrella.
    slot = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"
    impl = rpc.call("eth_getStorageAt", market["pool"], slot, "latest")
    assert "0x" + impl[-40:] == market["pool_impl"]
    umbrella = rpc.call(
        "eth_call",
        {
            "to": market["provider"],
            "data": origin.origin("PoolAddressesProvider").encode(
                "getAddress", b"UMBRELLA".ljust(32, b"\0")
            ),
        },
        "latest",
    )
    assert "0x" + umbrella[-40:] == UMBRELLA


def test_manifest_deficits_are_the_chain_logs(eth: Any) -> None:
    chain, _, rpc = eth
    pools = {m["pool"]: name for name, m in chain["markets"].items()}
    logs = rpc.call(
        "eth_getLogs",
        {
            "address": list(pools),
            "fromBlock": "0x0",
            "toBlock": "latest",
            "topics": [[CREATED, COVERED]],
        },
    )
    on_chain = {f"1:{log['transactionHash']}:{int(log['logIndex'], 16)}": log for log in logs}
    entries = chain["deficits"]
    assert [e["id"] for e in entries] == sorted(
        on_chain, key=lambda i: (int(on_chain[i]["blockNumber"], 16), int(i.rsplit(":", 1)[1]))
    )
    kinds = collections.Counter(e["kind"] for e in entries)
    assert kinds["created"] >= 2 and kinds["covered"] >= 2, kinds
    # Only the V3.6 pool books bad debt.
    assert {pools[log["address"].lower()] for log in logs} == {"v36"}
    liquidations = {e["id"]: e for e in chain["liquidations"]}
    v36 = chain["markets"]["v36"]
    for e in entries:
        log = on_chain[e["id"]]
        assert (e["block_number"], e["block_hash"]) == (
            int(log["blockNumber"], 16),
            log["blockHash"],
        )
        assert e["pool"] == v36["pool"] and e["market"] == "v36"
        assert (
            int(log["data"][2:66] if e["kind"] == "created" else log["data"][66:130], 16)
            == int(e["amount"])
            > 0
        )
        price = rpc.call(
            "eth_call",
            {"to": v36["oracle"], "data": "0xb3596f07" + "0" * 24 + e["asset"][2:]},
            hex(e["block_number"]),
        )
        assert int(price, 16) == int(e["price"]) > 0
        if e["kind"] == "created":
            assert e["caller"] is None and "0x" + log["topics"][1][-40:] == e["user"]
            assert "0x" + log["topics"][2][-40:] == e["asset"]
            liq = liquidations[e["liquidation_id"]]
            assert liq["tx_hash"] == e["tx_hash"] and liq["user"] == e["user"]
            assert liq["log_index"] > e["log_index"] and liq["market"] == "v36"
            # All the collateral went, and the debt left was written off.
            after = hex(e["block_number"])
            atoken = v36["assets"][liq["collateral_asset"]]["atoken"]
            vdebt = v36["assets"][e["asset"]]["variable_debt_token"]
            for token in (atoken, vdebt):
                data = BALANCE_OF + "0" * 24 + e["user"][2:]
                assert int(rpc.call("eth_call", {"to": token, "data": data}, after), 16) == 0
        else:
            assert e["user"] is None and e["liquidation_id"] is None
            assert e["caller"] == UMBRELLA
            assert "0x" + log["topics"][1][-40:] == e["asset"]
    # What is left on the books is what was created less what was covered.
    pool = origin.origin("PoolInstance")
    for asset in {e["asset"] for e in entries}:
        created = sum(
            int(e["amount"]) for e in entries if e["asset"] == asset and e["kind"] == "created"
        )
        covered = sum(
            int(e["amount"]) for e in entries if e["asset"] == asset and e["kind"] == "covered"
        )
        left = rpc.call(
            "eth_call",
            {"to": v36["pool"], "data": pool.encode("getReserveDeficit", asset)},
            "latest",
        )
        assert 0 < covered <= created
        assert int(left, 16) == created - covered
    # The first cover was partial: it left some deficit for the next one.
    first, second = [e for e in entries if e["kind"] == "covered"][:2]
    assert int(first["amount"]) < int(second["amount"])


# --- the indexer -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def indexed_eth(devnet: tuple[Path, dict[str, Any]], pg_template: str) -> Any:
    """Ethereum (the chain with the V3.6 market) backfilled into a fresh database."""
    workdir, manifest = devnet
    config = load_config(workdir / ".devnet" / "devnet.toml")

    async def backfill() -> None:
        ix = ChainIndexer(config.chains["ethereum"], dsn)
        try:
            await ix.open()
            await ix.backfill()
        finally:
            await ix.close()

    dsn = make_database(pg_template)
    asyncio.run(backfill())
    yield dsn, manifest["chains"]["ethereum"]
    drop_database(dsn)


def _usd(amount: str, price: str, decimals: int) -> Decimal:
    with localcontext(prec=200):
        return Decimal(int(amount) * int(price)) / Decimal(10) ** (decimals + 8)


async def test_every_deficit_matches_the_manifest(indexed_eth: Any) -> None:
    dsn, chain = indexed_eth
    conn = await asyncpg.connect(dsn)
    try:
        rows = {
            f"{r['chain_id']}:{r['tx_hash']}:{r['log_index']}": r
            for r in await conn.fetch("SELECT * FROM deficits")
        }
        linked = await conn.fetch(
            "SELECT d.log_index, l.user_address, l.market FROM deficits d JOIN liquidations l"
            " ON l.chain_id = d.chain_id AND l.tx_hash = d.tx_hash"
            " AND l.log_index = d.liquidation_log_index"
        )
    finally:
        await conn.close()
    entries = chain["deficits"]
    assert set(rows) == {e["id"] for e in entries} and len(entries) >= 4
    decimals = chain["assets"]
    for e in entries:
        row = rows[e["id"]]
        assert (row["block_number"], row["block_hash"], row["tx_index"]) == (
            e["block_number"],
            e["block_hash"],
            e["tx_index"],
        )
        assert int(row["block_time"].timestamp()) == e["block_time"]
        assert (row["pool"], row["market"], row["kind"]) == (e["pool"], e["market"], e["kind"])
        assert (row["user_address"], row["asset"], row["caller"]) == (
            e["user"],
            e["asset"],
            e["caller"],
        )
        assert row["amount"] == Decimal(e["amount"])
        assert row["price"] == Decimal(e["price"])
        assert row["usd"] == _usd(e["amount"], e["price"], decimals[e["asset"]]["decimals"])
        want = int(e["liquidation_id"].rsplit(":", 1)[1]) if e["liquidation_id"] else None
        assert row["liquidation_log_index"] == want
    created = [e for e in entries if e["kind"] == "created"]
    assert len(linked) == len(created)
    assert all(r["market"] == "v36" for r in linked)


DEFICITS_Q = """
query($f: DeficitFilter, $first: Int!, $after: String) {
  deficits(filter: $f, first: $first, after: $after) {
    edges { cursor node { id kind market user caller amount usd liquidationId
                          asset { address symbol } blockTime } }
    pageInfo { hasNextPage endCursor }
  }
}"""
STATS_Q = """
query($f: LiquidationFilter, $g: [StatsDimension!]) {
  liquidationStats(filter: $f, groupBy: $g) { market period count debtUsd deficitUsd source }
}"""


async def test_deficits_api_pages_and_totals(indexed_eth: Any) -> None:
    dsn, chain = indexed_eth
    entries = chain["deficits"]
    decimals = chain["assets"]
    newest_first = sorted(entries, key=lambda e: (-e["block_time"], e["id"]))
    async with api_client(dsn) as client:
        seen: list[dict[str, Any]] = []
        after = None
        while True:  # pages of 3: the keyset walk gives every row once, newest first
            body = await gql(client, DEFICITS_Q, {"first": 3, "after": after})
            assert "errors" not in body, body
            page = body["data"]["deficits"]
            seen += [edge["node"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert [n["id"] for n in seen] == [e["id"] for e in newest_first]
        by_id = {e["id"]: e for e in entries}
        for node in seen:
            e = by_id[node["id"]]
            assert node["kind"] == e["kind"].upper() and node["market"] == "v36"
            lower = [a.lower() if a else None for a in (node["user"], node["caller"])]
            assert lower == [e["user"], e["caller"]]
            assert int(node["amount"]) == int(e["amount"])
            assert node["liquidationId"] == e["liquidation_id"]
            assert node["asset"]["symbol"] == "USDC"
        # A filter, and a cursor of another filter refused.
        body = await gql(client, DEFICITS_Q, {"f": {"kind": "COVERED"}, "first": 50})
        covered = [edge["node"]["id"] for edge in body["data"]["deficits"]["edges"]]
        assert covered == [e["id"] for e in newest_first if e["kind"] == "covered"]
        body = await gql(client, DEFICITS_Q, {"f": {"kind": "CREATED"}, "first": 1, "after": after})
        assert "different filter" in body["errors"][0]["message"]

        created_usd = sum(
            (
                _usd(e["amount"], e["price"], decimals[e["asset"]]["decimals"])
                for e in entries
                if e["kind"] == "created"
            ),
            Decimal(0),
        )
        # Totals: from a rollup and from the base table (a user filter), by market.
        for f in (None, {"chains": ["ETHEREUM"], "minDebtUsd": "0"}):
            body = await gql(client, STATS_Q, {"f": f, "g": ["MARKET"]})
            assert "errors" not in body, body
            rows = {r["market"]: r for r in body["data"]["liquidationStats"]}
            assert Decimal(rows["v36"]["deficitUsd"]) == created_usd > 0
            assert all(Decimal(r["deficitUsd"]) == 0 for m, r in rows.items() if m != "v36")
        # By day, the days add up; without groupBy the one row has it all.
        body = await gql(client, STATS_Q, {"f": {"markets": ["v36"]}, "g": ["DAY"]})
        days = body["data"]["liquidationStats"]
        assert sum(Decimal(r["deficitUsd"]) for r in days) == created_usd
        per_day: dict[str, Decimal] = collections.defaultdict(Decimal)
        for e in entries:
            if e["kind"] == "created":
                day = dt.datetime.fromtimestamp(e["block_time"], dt.UTC).date().isoformat()
                per_day[day] += _usd(e["amount"], e["price"], decimals[e["asset"]]["decimals"])
        assert {
            r["period"][:10]: Decimal(r["deficitUsd"]) for r in days if Decimal(r["deficitUsd"])
        } == per_day
        body = await gql(client, STATS_Q, {"f": {"svr": True}})
        assert Decimal(body["data"]["liquidationStats"][0]["deficitUsd"]) == 0  # v36 has no SVR


def _deficit_row(block: int, log_index: int, kind: str) -> DeficitRow:
    return DeficitRow(
        chain_id=77,
        block_number=block,
        block_hash=f"0xh{block}",
        block_time=dt.datetime(2026, 2, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=12 * block),
        tx_hash=f"0x{block:064x}",
        tx_index=0,
        log_index=log_index,
        pool="0x" + "11" * 20,
        market="v36",
        kind=kind,
        user_address="0x" + "22" * 20 if kind == "created" else None,
        asset="0x" + "33" * 20,
        amount=10**30,
        caller="0x" + "44" * 20 if kind == "covered" else None,
        price=100_000_000,
        usd=Decimal("1000000000000000000000000.5"),
        liquidation_log_index=log_index + 1 if kind == "created" else None,
    )


async def test_deficits_are_written_once_and_rolled_back(db: asyncpg.Connection) -> None:
    """Replays change nothing; a rollback removes exactly the deficits above the ancestor."""
    await writer.prepare(db)
    first = Batch(77, 100, 104, deficits=[_deficit_row(101, 3, "created")])
    second = Batch(77, 105, 110, deficits=[_deficit_row(106, 0, "covered")])
    second.deficits.append(_deficit_row(108, 5, "created"))
    assert await writer.write_batch(db, first, "devnet") == 1
    assert await writer.write_batch(db, second, "devnet") == 2
    await db.execute("UPDATE checkpoints SET block_number = 104 WHERE chain_id = 77")
    assert await writer.write_batch(db, second, "devnet") == 0  # a replay
    stored = await db.fetchrow("SELECT * FROM deficits WHERE block_number = 101")
    assert stored["amount"] == Decimal(10**30) and stored["usd"] == Decimal(
        "1000000000000000000000000.5"
    )
    removed = await rollback.rollback(db, 77, 106, "0xh106")
    assert removed["deficits"] == 1
    left = await db.fetch("SELECT block_number, kind FROM deficits ORDER BY block_number")
    assert [(r["block_number"], r["kind"]) for r in left] == [(101, "created"), (106, "covered")]
