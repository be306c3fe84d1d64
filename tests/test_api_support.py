"""Synthetic but realistic data and an HTTP client for the API tests (no tests here).

The data set: five chains over twelve days, several liquidations per block and per
transaction (so sort keys tie), some without prices (null USD), Ethereum's liquidations
spread over three markets (core, prime, etherfi) and the other chains' in core, SVR
liquidations on Ethereum, Arbitrum and Base with recaptures split 65/35 (a few of them
belonging to no liquidation, so of no market), assets with and without metadata, and
chain_status rows whose finalized block leaves the newest rows unfinalized.
"""

from __future__ import annotations

import decimal
import hashlib
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from typing import Any

import asyncpg
import httpx

from api.app import create_app

T0 = datetime(2026, 1, 25, tzinfo=UTC)
DAYS = 12
CHAIN_IDS = (1, 137, 43114, 42161, 8453)
CHAIN_NAMES = {1: "ethereum", 137: "polygon", 43114: "avalanche", 42161: "arbitrum", 8453: "base"}
CHAIN_ENUM = {1: "ETHEREUM", 137: "POLYGON", 43114: "AVALANCHE", 42161: "ARBITRUM", 8453: "BASE"}
ENUM_CHAIN = {v: k for k, v in CHAIN_ENUM.items()}
HIGH = decimal.Context(prec=200)  # exact sums of NUMERIC values
SVR_CHAINS = (1, 42161, 8453)
# symbol, decimals, price (USD, 8 decimals)
TOKENS = [
    ("WETH", 18, 2_900_00000000),
    ("USDC", 6, 1_00000000),
    ("WBTC", 8, 97_000_00000000),
    ("LINK", 18, 18_50000000),
    ("AAVE", 18, 260_00000000),
    ("NOMETA", 18, 3_00000000),  # never written to `assets`
]

LIQUIDATION_COLUMNS = [
    "chain_id", "block_number", "block_hash", "block_time", "tx_hash", "tx_index",
    "log_index", "pool", "market", "collateral_asset", "debt_asset", "user_address", "liquidator",
    "debt_to_cover", "liquidated_collateral_amount", "receive_atoken", "collateral_price",
    "debt_price", "collateral_usd", "debt_usd", "protocol_fee_amount", "is_svr",
    "svr_aggregator", "svr_round_id", "svr_oracle_tx_hash", "svr_recaptured_usd",
    "svr_aave_usd", "svr_chainlink_usd", "bonus_usd", "protocol_fee_usd",
    "collateral_seized_usd", "closed_fully",
]  # fmt: skip
RECAPTURE_COLUMNS = [
    "chain_id", "block_number", "block_hash", "block_time", "tx_hash", "source_index",
    "recipient", "token", "amount", "amount_usd", "aggregator", "market", "liquidation_ids",
    "aave_bps", "aave_usd", "chainlink_usd", "split_rule",
]  # fmt: skip


EXACT = Context(prec=160)


def h(*parts: object, n: int = 64) -> str:
    return "0x" + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:n]


def addr(*parts: object) -> str:
    return h(*parts, n=40)


def token_address(chain_id: int, symbol: str) -> str:
    return addr("token", chain_id, symbol)


# Ethereum's markets, as often as they are picked (from a hash, not the random stream, so
# the rest of the data set is as it was before markets).
ETHEREUM_MARKETS = ("core", "core", "core", "prime", "prime", "etherfi")
MARKETS = ("core", "etherfi", "prime")


def market_of(chain_id: int, tx: str, log_index: int) -> str:
    if chain_id != 1:
        return "core"
    return ETHEREUM_MARKETS[int(h("market", tx, log_index)[2:10], 16) % len(ETHEREUM_MARKETS)]


def aggregators(chain_id: int) -> list[str]:
    return [addr("svr-agg", chain_id, k) for k in range(2)]


@dataclass
class Dataset:
    liquidations: list[dict[str, Any]] = field(default_factory=list)
    recaptures: list[dict[str, Any]] = field(default_factory=list)
    assets: list[tuple[int, str, str, int]] = field(default_factory=list)
    status: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # head, final, idx
    liquidators: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)

    def finalized(self, row: dict[str, Any]) -> bool:
        return row["block_number"] <= self.status[row["chain_id"]][1]


def build_dataset(n_per_chain: int = 500, seed: int = 7) -> Dataset:
    rnd = random.Random(seed)
    ds = Dataset()
    ds.liquidators = [addr("liquidator", k) for k in range(8)]
    ds.users = [addr("user", k) for k in range(300)]
    for chain_id in CHAIN_IDS:
        for symbol, decimals, _ in TOKENS:
            if symbol != "NOMETA":
                ds.assets.append((chain_id, token_address(chain_id, symbol), symbol, decimals))
        block = 1_000_000 * (CHAIN_IDS.index(chain_id) + 1)
        made = 0
        t = T0 + timedelta(seconds=rnd.randrange(3600))
        while made < n_per_chain:
            # bursts: sometimes many liquidations close together, sometimes long gaps
            t += timedelta(seconds=rnd.choice([0, 2, 12, 60, 600, 3600, 5 * 3600]))
            if t >= T0 + timedelta(days=DAYS):
                t = T0 + timedelta(seconds=rnd.randrange(DAYS * 86400))
            block += rnd.randrange(1, 50)
            for tx_index in range(rnd.choice([1, 1, 1, 2, 3])):
                tx = h("tx", chain_id, block, tx_index)
                for log_index in range(rnd.choice([1, 1, 2, 4])):
                    if made >= n_per_chain:
                        break
                    made += 1
                    ds.liquidations.append(
                        _liquidation(rnd, ds, chain_id, block, t, tx, tx_index, 3 * log_index + 1)
                    )
        head = block + 100
        ds.status[chain_id] = (head, block - 40, head - 3)
    _recaptures(ds)
    return ds


def _usd(amount: int, price: int, decimals: int) -> Decimal:
    return Decimal(amount) * Decimal(price) / Decimal(10) ** decimals / Decimal(10) ** 8


def _liquidation(
    rnd: random.Random,
    ds: Dataset,
    chain_id: int,
    block: int,
    t: datetime,
    tx: str,
    tx_index: int,
    log_index: int,
) -> dict[str, Any]:
    c_sym, c_dec, c_price = rnd.choice(TOKENS)
    d_sym, d_dec, d_price = rnd.choice([tok for tok in TOKENS if tok[0] != c_sym])
    debt_whole = Decimal(rnd.choice([50, 100, 1000, 2500, 10_000, 250_000])) / Decimal(d_price)
    debt = int(debt_whole * Decimal(10) ** d_dec * Decimal(10) ** 8) or 1
    collateral = int(
        Decimal(debt)
        * d_price
        * Decimal(10) ** c_dec
        * Decimal("1.05")
        / (Decimal(10) ** d_dec * c_price)
    )
    priced = rnd.random() > 0.04
    is_svr = chain_id in SVR_CHAINS and rnd.random() < 0.3
    market = market_of(chain_id, tx, log_index)
    row: dict[str, Any] = {
        "chain_id": chain_id,
        "block_number": block,
        "block_hash": h("block", chain_id, block),
        "block_time": t,
        "tx_hash": tx,
        "tx_index": tx_index,
        "log_index": log_index,
        "pool": addr("pool", chain_id, market),
        "market": market,
        "collateral_asset": token_address(chain_id, c_sym),
        "debt_asset": token_address(chain_id, d_sym),
        "user_address": rnd.choice(ds.users),
        "liquidator": rnd.choice(ds.liquidators),
        "debt_to_cover": Decimal(debt),
        "liquidated_collateral_amount": Decimal(collateral),
        "receive_atoken": rnd.random() < 0.2,
        "collateral_price": Decimal(c_price) if priced else None,
        "debt_price": Decimal(d_price) if priced else None,
        "collateral_usd": _usd(collateral, c_price, c_dec) if priced else None,
        "debt_usd": _usd(debt, d_price, d_dec) if priced else None,
        "protocol_fee_amount": Decimal(collateral // 200) if rnd.random() < 0.8 else None,
        "is_svr": is_svr,
        "svr_aggregator": None,
        "svr_round_id": None,
        "svr_oracle_tx_hash": None,
        "svr_recaptured_usd": None,
        "svr_aave_usd": None,
        "svr_chainlink_usd": None,
    }
    fee = row["protocol_fee_amount"]
    fee_usd = _usd(int(fee), c_price, c_dec) if priced and fee is not None else None
    closure = int(h("closed", tx, log_index)[2:4], 16) % 3  # not from rnd: the rest stays
    row.update(
        bonus_usd=EXACT.subtract(row["collateral_usd"], row["debt_usd"]) if priced else None,
        protocol_fee_usd=fee_usd,
        collateral_seized_usd=EXACT.add(row["collateral_usd"], fee_usd or 0) if priced else None,
        closed_fully=None if closure == 2 else closure == 1,
    )
    if is_svr:
        recaptured = (row["debt_usd"] or Decimal(0)) * Decimal("0.0237")
        aave = recaptured * Decimal("0.65")
        row.update(
            svr_aggregator=rnd.choice(aggregators(chain_id)),
            svr_round_id=rnd.randrange(1, 2**32),
            svr_oracle_tx_hash=h("oracle", chain_id, block),
            svr_recaptured_usd=recaptured,
            svr_aave_usd=aave,
            svr_chainlink_usd=recaptured - aave,
        )
    return row


def _recaptures(ds: Dataset) -> None:
    by_tx: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in ds.liquidations:
        if row["is_svr"]:
            by_tx.setdefault((row["chain_id"], row["tx_hash"]), []).append(row)
    for k, ((chain_id, tx), rows) in enumerate(sorted(by_tx.items())):
        first = rows[0]
        usd = sum((r["svr_recaptured_usd"] for r in rows), Decimal(0))
        aave = usd * Decimal("0.65")
        ds.recaptures.append(
            {
                "chain_id": chain_id,
                "block_number": first["block_number"],
                "block_hash": first["block_hash"],
                "block_time": first["block_time"],
                "tx_hash": tx,
                "source_index": -1 if chain_id == 1 else first["log_index"] + 1,
                "recipient": addr("refund", chain_id),
                "token": None,
                "amount": Decimal(10**15 + k),
                "amount_usd": usd,
                # a few recaptures are not tied to an aggregator ('' in the rollup)
                "aggregator": None if k % 17 == 0 else first["svr_aggregator"],
                "market": first["market"],
                "liquidation_ids": [f"{chain_id}:{r['tx_hash']}:{r['log_index']}" for r in rows],
                "aave_bps": 6500,
                "aave_usd": aave,
                "chainlink_usd": usd - aave,
                "split_rule": "aave-launch-65-35",
            }
        )
    # a payment to an SVR recipient in a transaction without a liquidation: no market
    for chain_id in SVR_CHAINS:
        last = max(
            (r for r in ds.liquidations if r["chain_id"] == chain_id),
            key=lambda r: r["block_number"],
        )
        usd = Decimal("12.5")
        ds.recaptures.append(
            {
                "chain_id": chain_id,
                "block_number": last["block_number"],
                "block_hash": last["block_hash"],
                "block_time": last["block_time"],
                "tx_hash": h("lone", chain_id),
                "source_index": 0,
                "recipient": addr("refund", chain_id),
                "token": None,
                "amount": Decimal(10**15),
                "amount_usd": usd,
                "aggregator": aggregators(chain_id)[0],
                "market": None,
                "liquidation_ids": [],
                "aave_bps": 6500,
                "aave_usd": usd * Decimal("0.65"),
                "chainlink_usd": usd - usd * Decimal("0.65"),
                "split_rule": "aave-launch-65-35",
            }
        )


async def seed(dsn: str, ds: Dataset) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "liquidations",
            records=[tuple(r[c] for c in LIQUIDATION_COLUMNS) for r in ds.liquidations],
            columns=LIQUIDATION_COLUMNS,
        )
        await conn.copy_records_to_table(
            "svr_recaptures",
            records=[tuple(r[c] for c in RECAPTURE_COLUMNS) for r in ds.recaptures],
            columns=RECAPTURE_COLUMNS,
        )
        await conn.copy_records_to_table(
            "assets", records=ds.assets, columns=["chain_id", "address", "symbol", "decimals"]
        )
        await conn.executemany(
            "INSERT INTO chain_status (chain_id, name, head_block, finalized_block,"
            " indexed_block) VALUES ($1, $2, $3, $4, $5)",
            [(c, CHAIN_NAMES[c], *ds.status[c]) for c in CHAIN_IDS],
        )
    finally:
        await conn.close()


@asynccontextmanager
async def api_client(dsn: str, **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to a freshly created app (lifespan run around it)."""
    app = create_app(dsn, **kwargs)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST a query; the transport must always answer 200 with a JSON body here."""
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def messages(body: dict[str, Any]) -> list[str]:
    return [e["message"] for e in body.get("errors") or []]


# --------------------------------------------------------------------------------------
# Python oracle
# --------------------------------------------------------------------------------------


def rid(row: dict[str, Any]) -> str:
    return f"{row['chain_id']}:{row['tx_hash']}:{row['log_index']}"


def parse_time(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def matches(ds: Dataset, row: dict[str, Any], f: dict[str, Any]) -> bool:
    """The documented filter semantics, implemented independently of the API."""
    f = {k: v for k, v in (f or {}).items() if v is not None}  # null: no condition
    if "chains" in f or "chainIds" in f:
        ids = {ENUM_CHAIN[c] for c in f.get("chains") or []} | set(f.get("chainIds") or [])
        if row["chain_id"] not in ids:
            return False
    if "markets" in f:
        markets = f["markets"]  # GraphQL reads a lone string as a list of one
        if row["market"] not in ([markets] if isinstance(markets, str) else markets):
            return False
    for key, column in (
        ("user", "user_address"),
        ("liquidator", "liquidator"),
        ("collateralAsset", "collateral_asset"),
        ("debtAsset", "debt_asset"),
        ("txHash", "tx_hash"),
    ):
        if key in f and row[column] != f[key].lower():
            return False
    if "svr" in f and row["is_svr"] != f["svr"]:
        return False
    if "finalized" in f and ds.finalized(row) != f["finalized"]:
        return False
    if "timeFrom" in f and row["block_time"] < parse_time(f["timeFrom"]):
        return False
    if "timeTo" in f and row["block_time"] >= parse_time(f["timeTo"]):
        return False
    if "blockFrom" in f and row["block_number"] < f["blockFrom"]:
        return False
    if "blockTo" in f and row["block_number"] > f["blockTo"]:
        return False
    for key, column in (("minDebtUsd", "debt_usd"), ("minCollateralUsd", "collateral_usd")):
        if key in f and (row[column] is None or row[column] < Decimal(str(f[key]))):
            return False
    return True


def expected_ids(ds: Dataset, f: dict[str, Any], order: str = "BLOCK_TIME_DESC") -> list[str]:
    rows = [r for r in ds.liquidations if matches(ds, r, f)]
    return [rid(r) for r in sort_rows(rows, order)]


def sort_rows(rows: list[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    def tiebreak(r: dict[str, Any]) -> tuple[int, str, int]:
        return (r["chain_id"], r["tx_hash"], r["log_index"])

    if order.startswith("BLOCK_TIME"):
        # DESC: newest first, ties ascending; ASC is the exact reverse
        out = sorted(sorted(rows, key=tiebreak), key=lambda r: r["block_time"], reverse=True)
    else:
        out = sorted(
            sorted(rows, key=tiebreak),
            key=lambda r: r["debt_usd"] if r["debt_usd"] is not None else Decimal(-1),
            reverse=True,
        )
    return out if order.endswith("DESC") else out[::-1]


def trunc(t: datetime, unit: str) -> datetime:
    t = t.astimezone(UTC)
    if unit == "HOUR":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "DAY":
        return day
    if unit == "WEEK":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


StatsKey = tuple[Any, ...]


# count, debt, collateral, SVR count, SVR debt, bonus, protocol fee, collateral seized
StatsTotals = tuple[int, Decimal, Decimal, int, Decimal, Decimal, Decimal, Decimal]
NO_TOTALS: StatsTotals = (
    0,
    Decimal(0),
    Decimal(0),
    0,
    Decimal(0),
    Decimal(0),
    Decimal(0),
    Decimal(0),
)


def expected_stats(ds: Dataset, f: dict[str, Any], dims: list[str]) -> dict[StatsKey, StatsTotals]:
    d = set(dims)
    if d & {"COLLATERAL_ASSET", "DEBT_ASSET"}:
        d.add("CHAIN")
    unit = next((u for u in ("HOUR", "DAY", "WEEK", "MONTH") if u in d), None)
    acc: dict[StatsKey, list[Any]] = defaultdict(lambda: list(NO_TOTALS))
    for r in ds.liquidations:
        if not matches(ds, r, f):
            continue
        key = (
            r["chain_id"] if "CHAIN" in d else None,
            trunc(r["block_time"], unit) if unit else None,
            r["collateral_asset"] if "COLLATERAL_ASSET" in d else None,
            r["debt_asset"] if "DEBT_ASSET" in d else None,
            r["liquidator"] if "LIQUIDATOR" in d else None,
            r["market"] if "MARKET" in d else None,
        )
        a = acc[key]
        a[0] += 1
        a[1] = HIGH.add(a[1], r["debt_usd"] or 0)
        a[2] = HIGH.add(a[2], r["collateral_usd"] or 0)
        if r["is_svr"]:
            a[3] += 1
            a[4] = HIGH.add(a[4], r["debt_usd"] or 0)
        a[5] = HIGH.add(a[5], r["bonus_usd"] or 0)
        a[6] = HIGH.add(a[6], r["protocol_fee_usd"] or 0)
        a[7] = HIGH.add(a[7], r["collateral_seized_usd"] or 0)
    return {k: (v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]) for k, v in acc.items()}


STATS_Q = """
query($f: LiquidationFilter, $g: [StatsDimension!]) {
  liquidationStats(filter: $f, groupBy: $g) {
    source chain chainId market period liquidator count debtUsd collateralUsd svrCount
    svrDebtUsd bonusUsd protocolFeeUsd collateralSeizedUsd
    collateralAsset { address symbol } debtAsset { address symbol }
  }
}"""


def stats_by_key(
    rows: list[dict[str, Any]],
) -> dict[StatsKey, StatsTotals]:
    out = {}
    for r in rows:
        key = (
            r["chainId"],
            parse_time(r["period"]) if r["period"] else None,
            r["collateralAsset"]["address"].lower() if r["collateralAsset"] else None,
            r["debtAsset"]["address"].lower() if r["debtAsset"] else None,
            r["liquidator"].lower() if r["liquidator"] else None,
            r.get("market"),
        )
        assert key not in out, f"duplicate group {key}"
        out[key] = (
            r["count"],
            Decimal(r["debtUsd"]),
            Decimal(r["collateralUsd"]),
            r["svrCount"],
            Decimal(r["svrDebtUsd"]),
            Decimal(r["bonusUsd"]),
            Decimal(r["protocolFeeUsd"]),
            Decimal(r["collateralSeizedUsd"]),
        )
    return out


async def stats(
    client: httpx.AsyncClient, f: dict[str, Any] | None, dims: list[str]
) -> dict[str, Any]:
    """The rows, and the one table they all say they came from."""
    body = await gql(client, STATS_Q, {"f": f, "g": dims})
    assert not body.get("errors"), body
    rows: list[dict[str, Any]] = body["data"]["liquidationStats"]
    sources = {r["source"] for r in rows}
    assert len(sources) <= 1, sources
    return {"rows": rows, "source": sources.pop() if sources else None}


PAGE_Q = """
query($f: LiquidationFilter, $first: Int!, $after: String, $o: LiquidationOrder!) {
  liquidations(filter: $f, first: $first, after: $after, orderBy: $o) {
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def walk(
    client: httpx.AsyncClient, f: dict[str, Any] | None, order: str, page: int
) -> list[str]:
    ids: list[str] = []
    after = None
    for _ in range(10_000):
        body = await gql(client, PAGE_Q, {"f": f, "first": page, "after": after, "o": order})
        assert not body.get("errors"), body
        conn = body["data"]["liquidations"]
        assert len(conn["edges"]) <= page
        assert conn["pageInfo"]["hasPreviousPage"] == (after is not None)
        ids += [e["node"]["id"] for e in conn["edges"]]
        if conn["edges"]:
            assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
            assert conn["pageInfo"]["startCursor"] == conn["edges"][0]["cursor"]
        if not conn["pageInfo"]["hasNextPage"]:
            return ids
        after = conn["pageInfo"]["endCursor"]
    raise AssertionError("pagination did not end")
