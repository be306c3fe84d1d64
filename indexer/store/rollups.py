"""How aggregates are kept equal to the base rows, and the check that they are (I3).

The rollups are maintained by statement-level triggers in schema.sql: every INSERT into, and
every DELETE from (a reorg rollback), liquidations and svr_recaptures folds the affected rows
into the rollup tables in the same transaction; UPDATEs of base rows are refused. The queries
here recompute the rollups with GROUP BY and count the rows that differ: zero, always.
`aave-indexer verify` runs them.
"""

from __future__ import annotations

import asyncpg

# The measures every liquidation rollup keeps, as a GROUP BY over `liquidations` computes them.
_MEASURES = """count(*) AS n, coalesce(sum(debt_usd), 0) AS d,
         coalesce(sum(collateral_usd), 0) AS c, count(*) FILTER (WHERE is_svr) AS s,
         coalesce(sum(debt_usd) FILTER (WHERE is_svr), 0) AS sd,
         coalesce(sum(collateral_usd) FILTER (WHERE is_svr), 0) AS sc"""

_DIFFERS = """base.n IS DISTINCT FROM r.liquidation_count OR base.d IS DISTINCT FROM r.debt_usd
   OR base.c IS DISTINCT FROM r.collateral_usd OR base.s IS DISTINCT FROM r.svr_count
   OR base.sd IS DISTINCT FROM r.svr_debt_usd OR base.sc IS DISTINCT FROM r.svr_collateral_usd"""


def _liquidation_drift(table: str, keys: str, key_exprs: str) -> str:
    """Rows of `table` (keyed by `keys`) that differ from GROUP BY `key_exprs` over the rows."""
    n = len(keys.split(","))
    return f"""
WITH base AS (
  SELECT {key_exprs}, {_MEASURES}
  FROM liquidations GROUP BY {", ".join(str(i) for i in range(1, n + 1))})
SELECT count(*) FROM base FULL JOIN {table} r USING ({keys})
WHERE {_DIFFERS}
"""


CHAIN_ROLLUP_HOURLY_DRIFT = _liquidation_drift(
    "chain_rollup_hourly",
    "chain_id, bucket",
    "chain_id, date_trunc('hour', block_time, 'UTC') AS bucket",
)

CHAIN_ROLLUP_DAILY_DRIFT = _liquidation_drift(
    "chain_rollup_daily",
    "chain_id, bucket",
    "chain_id, date_trunc('day', block_time, 'UTC') AS bucket",
)

LIQUIDATION_ROLLUP_DRIFT = _liquidation_drift(
    "liquidation_rollup",
    "grain, chain_id, bucket, collateral_asset, debt_asset",
    "'day' AS grain, chain_id, date_trunc('day', block_time, 'UTC') AS bucket, "
    "collateral_asset, debt_asset",
)

LIQUIDATOR_ROLLUP_DRIFT = _liquidation_drift(
    "liquidator_rollup_daily",
    "chain_id, bucket, liquidator",
    "chain_id, date_trunc('day', block_time, 'UTC') AS bucket, liquidator",
)

SVR_REVENUE_ROLLUP_DRIFT = """
WITH liq AS (
  SELECT chain_id, date_trunc('day', block_time, 'UTC') AS bucket, svr_aggregator AS aggregator,
         count(*) AS n, coalesce(sum(debt_usd), 0) AS usd
  FROM liquidations WHERE is_svr AND svr_aggregator IS NOT NULL GROUP BY 1, 2, 3),
rec AS (
  SELECT chain_id, date_trunc('day', block_time, 'UTC') AS bucket,
         coalesce(aggregator, '') AS aggregator, count(*) AS n,
         coalesce(sum(amount_usd), 0) AS usd, coalesce(sum(aave_usd), 0) AS aave,
         coalesce(sum(chainlink_usd), 0) AS link
  FROM svr_recaptures GROUP BY 1, 2, 3),
base AS (
  SELECT chain_id, bucket, aggregator, coalesce(liq.n, 0) AS ln, coalesce(liq.usd, 0) AS lu,
         coalesce(rec.n, 0) AS rn, coalesce(rec.usd, 0) AS ru, coalesce(rec.aave, 0) AS ra,
         coalesce(rec.link, 0) AS rl
  FROM liq FULL JOIN rec USING (chain_id, bucket, aggregator))
SELECT count(*) FROM base FULL JOIN svr_revenue_rollup_daily r USING (chain_id, bucket, aggregator)
WHERE base.ln IS DISTINCT FROM r.svr_liquidation_count
   OR base.lu IS DISTINCT FROM r.svr_liquidated_usd
   OR base.rn IS DISTINCT FROM r.recapture_count OR base.ru IS DISTINCT FROM r.recaptured_usd
   OR base.ra IS DISTINCT FROM r.aave_usd OR base.rl IS DISTINCT FROM r.chainlink_usd
"""

DRIFT_CHECKS = {
    "chain_rollup_hourly": CHAIN_ROLLUP_HOURLY_DRIFT,
    "chain_rollup_daily": CHAIN_ROLLUP_DAILY_DRIFT,
    "liquidation_rollup": LIQUIDATION_ROLLUP_DRIFT,
    "liquidator_rollup_daily": LIQUIDATOR_ROLLUP_DRIFT,
    "svr_revenue_rollup_daily": SVR_REVENUE_ROLLUP_DRIFT,
}


async def rollup_drift(conn: asyncpg.Connection) -> dict[str, int]:
    """Rows that differ between each rollup table and a GROUP BY of the base rows."""
    return {name: int(await conn.fetchval(sql)) for name, sql in DRIFT_CHECKS.items()}
