"""The five API benchmark queries, as GraphQL requests and as the SQL the API runs for them
(built with api.queries, so the SQL is exactly the API's).

  list   liquidations(first: 50) on one chain in a 7-day window (one of 50 windows)
  market the same on Ethereum for its Prime market (a fifth of its rows), filtered on the
         time index, as no index leads with the market
  paging 20 pages of 50 through a 30-day window on one chain, with cursors
  chain  liquidationStats grouped by CHAIN
  day    liquidationStats grouped by DAY over a year
  svr    svrRevenue grouped by CHAIN
  liquidators  liquidators(first: 50) by debt repaid over a 30-day window (whole days)
  concentration  liquidatorConcentration over the same window
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from api import queries as q
from api.enums import LiquidationOrder, LiquidatorOrder, StatsDimension, SvrRevenueDimension
from indexer.networks import CHAIN_IDS

QUERIES = ("list", "market", "paging", "chain", "day", "svr", "liquidators", "concentration")
PAGES = 20
PAGE = 50
YEAR_END = datetime(2026, 2, 6, tzinfo=UTC)
YEAR_START = YEAR_END - timedelta(days=365)
# Chain enum name -> id; in this order, which the random windows depend on.
CHAINS = {
    name.upper(): CHAIN_IDS[name]
    for name in ("polygon", "ethereum", "avalanche", "arbitrum", "base")
}

MARKET = "prime"  # bench.filldb puts a fifth of Ethereum's rows there
NODE = "id chainId blockNumber blockTime txHash user liquidator debtToCover debtUsd collateralUsd"
LIST = (
    "query($f: LiquidationFilter, $after: String) { liquidations(first: 50, filter: $f, "
    "after: $after) { edges { cursor node { " + NODE + " } } pageInfo { hasNextPage endCursor } } }"
)
CHAIN = "{ liquidationStats(groupBy: [CHAIN]) { chainId count debtUsd collateralUsd svrCount } }"
DAY = (
    "query($f: LiquidationFilter) { liquidationStats(groupBy: [DAY], filter: $f) "
    "{ period count debtUsd svrCount } }"
)
SVR = (
    "{ svrRevenue(groupBy: [CHAIN]) { chainId svrLiquidationCount recapturedUsd aaveUsd "
    "chainlinkUsd } }"
)

LIQUIDATORS = (
    "query($f: LiquidationFilter) { liquidators(filter: $f, first: 50) "
    "{ edges { node { address count debtUsd bonusUsd chains firstSeen lastSeen } } } }"
)
CONCENTRATION = (
    "query($f: LiquidationFilter) { liquidatorConcentration(filter: $f) "
    "{ uniqueLiquidators count debtUsd top5Share herfindahl } }"
)


def _days(rng: random.Random) -> tuple[datetime, datetime]:
    """A 30-day window of whole days in the year (one of 11)."""
    start = YEAR_START + timedelta(days=rng.randrange(0, 335, 30))
    return start, start + timedelta(days=30)


def _window(rng: random.Random, days: int) -> tuple[str, datetime, datetime]:
    chain = rng.choice(list(CHAINS))
    start = YEAR_START + timedelta(days=rng.randrange(0, 365 - days, 7))
    return chain, start, start + timedelta(days=days)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def graphql_request(name: str, rng: random.Random, cursor: str | None = None) -> dict[str, Any]:
    if name in ("list", "paging", "market"):
        chain, start, end = _window(rng, 30 if name == "paging" else 7)
        flt: dict[str, Any] = {"chains": [chain], "timeFrom": _iso(start), "timeTo": _iso(end)}
        if name == "market":
            flt.update(chains=["ETHEREUM"], markets=[MARKET])
        return {"query": LIST, "variables": {"f": flt, "after": cursor}}
    if name == "chain":
        return {"query": CHAIN}
    if name == "day":
        flt = {"timeFrom": _iso(YEAR_START), "timeTo": _iso(YEAR_END)}
        return {"query": DAY, "variables": {"f": flt}}
    if name == "svr":
        return {"query": SVR}
    if name in ("liquidators", "concentration"):
        start, end = _days(rng)
        flt = {"timeFrom": _iso(start), "timeTo": _iso(end)}
        return {"query": LIQUIDATORS if name == "liquidators" else CONCENTRATION,
                "variables": {"f": flt}}  # fmt: skip
    raise ValueError(f"unknown query {name!r}; known: {', '.join(QUERIES)}")


def sql_request(name: str, rng: random.Random, after: Any = None) -> q.Sql:
    """The API's SQL for the same request; `after` is the last row of the previous page."""
    if name in ("list", "paging", "market"):
        chain, start, end = _window(rng, 30 if name == "paging" else 7)
        where = q.LiquidationWhere(chain_ids=(CHAINS[chain],), time_from=start, time_to=end)
        if name == "market":
            where = q.LiquidationWhere(
                chain_ids=(CHAINS["ETHEREUM"],), markets=(MARKET,), time_from=start, time_to=end
            )
        position = None
        if after is not None:
            position = q.KeysetPosition(
                after["sort_key"], after["chain_id"], after["tx_hash"], after["log_index"]
            )
        return q.liquidations_page(where, LiquidationOrder.BLOCK_TIME_DESC, PAGE + 1, position)
    if name in ("chain", "day"):
        dims = frozenset({StatsDimension.CHAIN if name == "chain" else StatsDimension.DAY})
        where = (
            q.LiquidationWhere()
            if name == "chain"
            else q.LiquidationWhere(time_from=YEAR_START, time_to=YEAR_END)
        )
        return q.liquidation_stats(where, dims, q.stats_source(where, dims))
    if name == "svr":
        return q.svr_revenue(q.SvrWhere(), frozenset({SvrRevenueDimension.CHAIN}))
    if name in ("liquidators", "concentration"):
        start, end = _days(rng)
        where = q.LiquidationWhere(time_from=start, time_to=end)
        if name == "liquidators":
            return q.liquidators_page(where, LiquidatorOrder.DEBT_USD, PAGE + 1, None)[0]
        return q.liquidator_concentration(where)[0]
    raise ValueError(f"unknown query {name!r}; known: {', '.join(QUERIES)}")
