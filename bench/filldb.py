"""Fill a migrated database with N synthetic liquidations, fast, in SQL (generate_series).

The spread is meant to look like production: five chains (Polygon most rows; a fifth of
Ethereum's in its Prime market, the rest in the chains' Core markets), a year of time, ten
assets per chain, a few hundred liquidators, ~3% SVR liquidations (on Ethereum, Arbitrum
and Base) each with its recapture. Rows go in with the rollup triggers on, in
chunks (each INSERT's statement trigger folds its chunk into the rollups, so they equal
the base rows); the liquidations indexes are dropped while loading and built afterwards,
which is much faster than maintaining them row by row. Deterministic (setseed).
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

CHUNK = 1_000_000
YEAR_END = "2026-02-06T00:00:00Z"

SETUP = """
INSERT INTO chain_status (chain_id, name, head_block, finalized_block, indexed_block)
VALUES (1, 'ethereum', 24380000, 24379936, 24380000),
       (137, 'polygon', 82300000, 82299744, 82300000),
       (43114, 'avalanche', 77100000, 77099999, 77100000),
       (42161, 'arbitrum', 428000000, 427999000, 428000000),
       (8453, 'base', 41600000, 41599900, 41600000)
ON CONFLICT (chain_id) DO NOTHING;
INSERT INTO assets (chain_id, address, symbol, decimals)
SELECT c, '0x' || lpad(to_hex(c * 100 + k), 40, '0'),
       (ARRAY['WETH','WBTC','USDC','USDT','DAI','LINK','wstETH','AAVE','GHO','weETH'])[k + 1],
       (ARRAY[18, 8, 6, 6, 18, 18, 18, 18, 18, 18])[k + 1]
FROM unnest(ARRAY[1, 137, 43114, 42161, 8453]) AS c, generate_series(0, 9) AS k
ON CONFLICT DO NOTHING;
"""

# One chunk of rows [$1, $2): everything derived from the row number i and random().
INSERT_CHUNK = """
WITH base AS (
    SELECT i,
           CASE WHEN i % 100 < 40 THEN 137 WHEN i % 100 < 60 THEN 1
                WHEN i % 100 < 74 THEN 43114 WHEN i % 100 < 87 THEN 42161 ELSE 8453 END
               AS chain_id,
           $3::timestamptz - random() * interval '365 days' AS block_time,
           (power(random(), 3) * 10)::int % 10 AS coll,
           (power(random(), 2) * 9)::int % 9 AS debt_k,
           random() AS r,
           (power(random(), 2) * 300)::int AS bot,
           (random() * 1e21)::numeric(78, 0) AS debt_amount
    FROM generate_series($1::bigint, $2::bigint - 1) AS g(i)
), aged AS (
    SELECT b.*, extract(epoch FROM $3::timestamptz - b.block_time) AS age FROM base b
), rows AS (
    SELECT b.*,
           (CASE chain_id WHEN 1 THEN 24380000 - age / 12 WHEN 42161 THEN 428000000 - age * 4
                WHEN 137 THEN 82300000 - age / 2 WHEN 43114 THEN 77100000 - age / 2
                ELSE 41600000 - age / 2 END)::bigint
               AS block_number,
           chain_id IN (1, 42161, 8453) AND r < 0.06 AS svr,
           (debt_amount / 1e14)::numeric(30, 2) AS debt_usd,
           chain_id = 1 AND i % 10 >= 8 AS prime
    FROM aged b
)
INSERT INTO liquidations (
    chain_id, block_number, block_hash, block_time, tx_hash, tx_index, log_index, pool,
    market, collateral_asset, debt_asset, user_address, liquidator, debt_to_cover,
    liquidated_collateral_amount, receive_atoken, collateral_price, debt_price,
    collateral_usd, debt_usd, protocol_fee_amount, is_svr, svr_aggregator, svr_round_id,
    svr_oracle_tx_hash, svr_recaptured_usd, svr_aave_usd, svr_chainlink_usd, bonus_usd,
    protocol_fee_usd, collateral_seized_usd, closed_fully)
SELECT chain_id, block_number, '0x' || md5('b' || chain_id || ':' || block_number)
           || md5('h' || block_number),
       block_time, '0x' || md5('t' || i) || md5('x' || i), (i % 200)::int, (i % 7)::int,
       CASE WHEN prime THEN '0x4e033931ad43597d96d6bcc25c280717730b58b1'
            WHEN chain_id = 1 THEN '0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2'
            ELSE '0x794a61358d6845594f94dc1db02a252b5b4814ad' END,
       CASE WHEN prime THEN 'prime' ELSE 'core' END,
       '0x' || lpad(to_hex(chain_id * 100 + coll), 40, '0'),
       '0x' || lpad(to_hex(chain_id * 100 + (coll + 1 + debt_k % 9) % 10), 40, '0'),
       '0x' || substr(md5('u' || (i % 1000003)), 1, 20) || substr(md5('v' || i % 1000003), 1, 20),
       '0x' || substr(md5('l' || bot), 1, 20) || substr(md5('m' || bot), 1, 20),
       debt_amount, (debt_amount * 1.05)::numeric(78, 0), r < 0.3,
       300000000000, 100000000, debt_usd * 1.05, debt_usd,
       (debt_amount / 200)::numeric(78, 0),
       svr,
       CASE WHEN svr THEN '0x' || lpad(to_hex(chain_id * 1000 + coll % 3), 40, '0') END,
       CASE WHEN svr THEN i END,
       CASE WHEN svr THEN '0x' || md5('o' || i) || md5('p' || i) END,
       CASE WHEN svr THEN debt_usd * 0.02 END,
       CASE WHEN svr THEN debt_usd * 0.013 END,
       CASE WHEN svr THEN debt_usd * 0.007 END,
       debt_usd * 0.05, debt_usd * 0.005, debt_usd * 1.055, r < 0.4
FROM rows
"""

INSERT_RECAPTURES = """
INSERT INTO svr_recaptures (
    chain_id, block_number, block_hash, block_time, tx_hash, source_index, recipient, token,
    amount, amount_usd, aggregator, market, liquidation_ids, aave_bps, aave_usd,
    chainlink_usd, split_rule)
SELECT chain_id, block_number, block_hash, block_time, tx_hash, log_index + 1,
       '0x' || lpad(to_hex(chain_id), 40, '0'), NULL, (debt_to_cover / 50)::numeric(78, 0),
       svr_recaptured_usd, svr_aggregator, market,
       ARRAY[chain_id || ':' || tx_hash || ':' || log_index], 6500,
       svr_aave_usd, svr_chainlink_usd, 'from 2025-03-29: 6500 bps'
FROM liquidations WHERE is_svr AND block_time >= $1::timestamptz AND block_time < $2::timestamptz
ON CONFLICT DO NOTHING
"""

PKEY = "liquidations_pkey"
ADD_PKEY = (
    f"ALTER TABLE liquidations ADD CONSTRAINT {PKEY} PRIMARY KEY (chain_id, tx_hash, log_index)"
)
INDEXES = """
SELECT indexname, indexdef FROM pg_indexes
WHERE tablename = 'liquidations' AND schemaname = 'public'
"""


async def fill(dsn: str, start: int, stop: int) -> dict[str, Any]:
    """Add rows [start, stop), spread at random over the year before YEAR_END (so filling
    0..1M then 1M..10M gives the same spread as 0..10M at once)."""
    t0 = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'; SET work_mem = '256MB'")
        await conn.execute(SETUP)
        await conn.execute("SELECT setseed($1)", (start % 1000) / 1000)
        indexes = await conn.fetch(INDEXES)
        for row in indexes:
            if row["indexname"] == PKEY:
                await conn.execute(f"ALTER TABLE liquidations DROP CONSTRAINT {PKEY}")
            else:
                await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        for lo in range(start, stop, CHUNK):
            hi = min(stop, lo + CHUNK)
            await conn.execute(INSERT_CHUNK, lo, hi, _end())
        await conn.execute(INSERT_RECAPTURES, _start_of_year(), _end())
        for row in indexes:
            if row["indexname"] == PKEY:
                await conn.execute(ADD_PKEY)
            else:
                await conn.execute(row["indexdef"])
        await conn.execute("VACUUM ANALYZE")
        rows = int(await conn.fetchval("SELECT count(*) FROM liquidations"))
    finally:
        await conn.close()
    return {"rows": rows, "seconds": round(time.perf_counter() - t0, 1)}


def _end() -> Any:
    from datetime import datetime

    return datetime.fromisoformat(YEAR_END)


def _start_of_year() -> Any:
    from datetime import timedelta

    return _end() - timedelta(days=400)
