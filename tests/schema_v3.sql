-- schema.sql at version 3 (commit 9c6905e) followed by the rollup tables and triggers that
-- indexer/store/rollups.py generated then, kept as the starting point of the upgrade test in
-- tests/test_schema.py.
-- aave-svr-indexer schema: the tables at the current version (SCHEMA_VERSION in
-- indexer/store/migrate.py, which also holds the steps that upgrade an older database).
-- Applied by `aave-indexer migrate`: idempotent (IF NOT EXISTS) and recorded in
-- schema_version. Addresses and hashes are lowercase 0x-hex text.
-- Amounts are exact: uint256 as NUMERIC(78,0); prices are AaveOracle answers (USD, 8 decimals)
-- kept raw; USD values are NUMERIC computed from raw amount, price and decimals, never floats.

CREATE TABLE IF NOT EXISTS schema_version (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- One row per configured chain: what the indexer knows of the chain's head and finality.
CREATE TABLE IF NOT EXISTS chain_status (
    chain_id        integer PRIMARY KEY,
    name            text NOT NULL,
    head_block      bigint,
    finalized_block bigint,
    indexed_block   bigint,
    last_error      text,
    halted          boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Where each (chain, stream) has been indexed up to, inclusive. Moved in the same
-- transaction as the rows it covers (invariant I1).
CREATE TABLE IF NOT EXISTS checkpoints (
    chain_id     integer NOT NULL,
    stream       text    NOT NULL,
    block_number bigint  NOT NULL,
    block_hash   text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, stream)
);

-- Recent unfinalized headers, for reorg detection while tailing.
CREATE TABLE IF NOT EXISTS blocks (
    chain_id     integer NOT NULL,
    block_number bigint  NOT NULL,
    block_hash   text    NOT NULL,
    parent_hash  text    NOT NULL,
    block_time   timestamptz NOT NULL,
    PRIMARY KEY (chain_id, block_number)
);

CREATE TABLE IF NOT EXISTS assets (
    chain_id integer NOT NULL,
    address  text    NOT NULL,
    symbol   text    NOT NULL,
    decimals integer NOT NULL,
    PRIMARY KEY (chain_id, address)
);

-- The deployment block of a pool whose first block the configuration does not give, found
-- on-chain once (a binary search over eth_getCode) and kept here.
CREATE TABLE IF NOT EXISTS pool_deployments (
    chain_id     integer NOT NULL,
    pool         text    NOT NULL,
    block_number bigint  NOT NULL,
    PRIMARY KEY (chain_id, pool)
);

CREATE TABLE IF NOT EXISTS liquidations (
    chain_id                     integer       NOT NULL,
    block_number                 bigint        NOT NULL,
    block_hash                   text          NOT NULL,
    block_time                   timestamptz   NOT NULL,
    tx_hash                      text          NOT NULL,
    tx_index                     integer       NOT NULL,
    log_index                    integer       NOT NULL,
    pool                         text          NOT NULL,
    market                       text          NOT NULL,   -- the pool's market: core, prime, ...
    collateral_asset             text          NOT NULL,
    debt_asset                   text          NOT NULL,
    user_address                 text          NOT NULL,
    liquidator                   text          NOT NULL,
    debt_to_cover                numeric(78,0) NOT NULL,
    liquidated_collateral_amount numeric(78,0) NOT NULL,
    receive_atoken               boolean       NOT NULL,
    collateral_price             numeric(78,0),          -- USD, 8 decimals, at block_number
    debt_price                   numeric(78,0),
    collateral_usd               numeric,
    debt_usd                     numeric,
    protocol_fee_amount          numeric(78,0),          -- collateral aToken units to treasury
    is_svr                       boolean       NOT NULL DEFAULT false,
    svr_aggregator               text,
    svr_round_id                 bigint,
    svr_oracle_tx_hash           text,
    svr_recaptured_usd           numeric,                -- this liquidation's share
    svr_aave_usd                 numeric,
    svr_chainlink_usd            numeric,
    svr_bid_count                integer,                -- Atlas: the metacall's bids
    svr_best_losing_bid_usd      numeric,                -- Atlas: its best losing bid
    PRIMARY KEY (chain_id, tx_hash, log_index)
);
CREATE INDEX IF NOT EXISTS liquidations_chain_block ON liquidations (chain_id, block_number);
CREATE INDEX IF NOT EXISTS liquidations_time ON liquidations (block_time DESC, chain_id, tx_hash, log_index);
CREATE INDEX IF NOT EXISTS liquidations_chain_time ON liquidations (chain_id, block_time DESC, tx_hash, log_index);
CREATE INDEX IF NOT EXISTS liquidations_user ON liquidations (user_address, block_time DESC);
CREATE INDEX IF NOT EXISTS liquidations_liquidator ON liquidations (liquidator, block_time DESC);
CREATE INDEX IF NOT EXISTS liquidations_debt_usd
    ON liquidations ((coalesce(debt_usd, -1)) DESC, chain_id, tx_hash, log_index);

-- DualAggregator events. kind: new_transmission | answer_updated | new_round |
-- secondary_round_id_updated | primary_feed_unlocked. route, the way its report came in:
-- secondary (the SVR route: SecondaryRoundIdUpdated, then NewTransmission, NewRound,
-- AnswerUpdated in one transaction), catch_up (a SecondaryRoundIdUpdated with no report
-- after it), primary (the public route; PrimaryFeedUnlocked). The report's transmitter,
-- observationsTimestamp, epochAndRound and configDigest on new_transmission rows. sold, on
-- a new SVR report of an aggregator behind an Aave source: whether it was sold (a
-- liquidation attributed to it, Ethereum; a winning bid in its metacall, Atlas).
CREATE TABLE IF NOT EXISTS svr_oracle_updates (
    chain_id     integer     NOT NULL,
    block_number bigint      NOT NULL,
    block_hash   text        NOT NULL,
    block_time   timestamptz NOT NULL,
    tx_hash      text        NOT NULL,
    tx_index     integer     NOT NULL,
    log_index    integer     NOT NULL,
    aggregator   text        NOT NULL,
    kind         text        NOT NULL,
    route        text,
    round_id     bigint,
    answer       numeric(78,0),
    transmitter  text,
    observations_timestamp bigint,
    epoch_and_round        bigint,
    config_digest          text,
    sold         boolean,
    PRIMARY KEY (chain_id, tx_hash, log_index)
);
CREATE INDEX IF NOT EXISTS svr_oracle_updates_chain_block ON svr_oracle_updates (chain_id, block_number);
-- The public twin of an SVR round (how far the SVR update led it).
CREATE INDEX IF NOT EXISTS svr_oracle_updates_unlocked
    ON svr_oracle_updates (chain_id, aggregator, round_id) WHERE kind = 'primary_feed_unlocked';

-- Recaptured payments. source_index is the log index for log-borne payments (Atlas
-- SolverTxResult, ERC-20 Transfer) and -1 for a native transfer carried by the tx itself
-- (the MEV-Share builder refund on Ethereum).
CREATE TABLE IF NOT EXISTS svr_recaptures (
    chain_id          integer       NOT NULL,
    block_number      bigint        NOT NULL,
    block_hash        text          NOT NULL,
    block_time        timestamptz   NOT NULL,
    tx_hash           text          NOT NULL,
    source_index      integer       NOT NULL,
    recipient         text          NOT NULL,
    token             text,                                -- null: the native coin
    amount            numeric(78,0) NOT NULL,
    amount_usd        numeric,
    aggregator        text,
    market            text,                                -- its liquidations' market (the first's)
    liquidation_ids   text[]        NOT NULL,              -- "chainId:txHash:logIndex"
    aave_bps          integer       NOT NULL,
    aave_usd          numeric,
    chainlink_usd     numeric,
    split_rule        text          NOT NULL,
    PRIMARY KEY (chain_id, tx_hash, source_index)
);
CREATE INDEX IF NOT EXISTS svr_recaptures_chain_block ON svr_recaptures (chain_id, block_number);

-- Every AssetSourceUpdated(asset, source) of a market's AaveOracle (its constructor's too),
-- with what was found behind the source at that block: the aggregator (through proxies'
-- aggregator() and CAPO adapters' base feeds) and whether it is an SVR DualAggregator
-- (typeAndVersion). A source is in force from its event until the asset's next one.
CREATE TABLE IF NOT EXISTS asset_sources (
    chain_id         integer NOT NULL,
    market           text    NOT NULL,
    oracle           text    NOT NULL,
    block_number     bigint  NOT NULL,
    block_hash       text    NOT NULL,
    tx_hash          text    NOT NULL,
    log_index        integer NOT NULL,
    asset            text    NOT NULL,
    source           text    NOT NULL,
    aggregator       text,                   -- null: nothing answered behind the source
    is_svr           boolean NOT NULL,
    type_and_version text,                   -- the aggregator's typeAndVersion(), if any
    PRIMARY KEY (chain_id, market, tx_hash, log_index)
);
CREATE INDEX IF NOT EXISTS asset_sources_chain_block ON asset_sources (chain_id, block_number);

-- Each source's window: from the block of its AssetSourceUpdated to the block in which the
-- asset's next source took over (null while it is in force). svrFeeds reads the SVR ones.
CREATE OR REPLACE VIEW asset_source_windows AS
SELECT chain_id, market, oracle, asset, source, aggregator, is_svr, type_and_version,
       block_number AS from_block, log_index AS from_log_index,
       lead(block_number) OVER w AS to_block, lead(log_index) OVER w AS to_log_index
FROM asset_sources
WINDOW w AS (PARTITION BY chain_id, market, asset ORDER BY block_number, log_index);

-- The rollup tables (chain_rollup_hourly, chain_rollup_daily, liquidation_rollup,
-- liquidator_rollup_daily, svr_revenue_rollup_daily) and the statement-level triggers that
-- keep them equal to GROUP BY over the base rows (invariant I3), refusing UPDATEs of base
-- rows, are generated from the rollup spec in indexer/store/rollups.py; migrate applies
-- them right after this file.

-- The API's read-only role (invariant I7). Created without a password; operators set one
-- or map it in pg_hba. Grants are re-applied on every migrate.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aave_indexer_reader') THEN
        CREATE ROLE aave_indexer_reader LOGIN;
    END IF;
END $$;
GRANT USAGE ON SCHEMA public TO aave_indexer_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO aave_indexer_reader;
ALTER ROLE aave_indexer_reader SET default_transaction_read_only = on;
ALTER ROLE aave_indexer_reader SET statement_timeout = '5s';
CREATE TABLE IF NOT EXISTS chain_rollup_hourly (
    chain_id           integer NOT NULL,
    market             text NOT NULL,
    bucket             timestamptz NOT NULL,
    liquidation_count  bigint NOT NULL,
    debt_usd           numeric NOT NULL,
    collateral_usd     numeric NOT NULL,
    svr_count          bigint NOT NULL,
    svr_debt_usd       numeric NOT NULL,
    svr_collateral_usd numeric NOT NULL,
    PRIMARY KEY (chain_id, market, bucket)
);
CREATE INDEX IF NOT EXISTS chain_rollup_hourly_bucket ON chain_rollup_hourly (bucket);

CREATE TABLE IF NOT EXISTS chain_rollup_daily (
    chain_id           integer NOT NULL,
    market             text NOT NULL,
    bucket             timestamptz NOT NULL,
    liquidation_count  bigint NOT NULL,
    debt_usd           numeric NOT NULL,
    collateral_usd     numeric NOT NULL,
    svr_count          bigint NOT NULL,
    svr_debt_usd       numeric NOT NULL,
    svr_collateral_usd numeric NOT NULL,
    PRIMARY KEY (chain_id, market, bucket)
);

CREATE TABLE IF NOT EXISTS liquidation_rollup (
    grain              text NOT NULL DEFAULT 'day' CHECK (grain = 'day'),
    chain_id           integer NOT NULL,
    market             text NOT NULL,
    bucket             timestamptz NOT NULL,
    collateral_asset   text NOT NULL,
    debt_asset         text NOT NULL,
    liquidation_count  bigint NOT NULL,
    debt_usd           numeric NOT NULL,
    collateral_usd     numeric NOT NULL,
    svr_count          bigint NOT NULL,
    svr_debt_usd       numeric NOT NULL,
    svr_collateral_usd numeric NOT NULL,
    PRIMARY KEY (grain, chain_id, market, bucket, collateral_asset, debt_asset)
);
CREATE INDEX IF NOT EXISTS liquidation_rollup_bucket ON liquidation_rollup (grain, bucket);

CREATE TABLE IF NOT EXISTS liquidator_rollup_daily (
    chain_id           integer NOT NULL,
    market             text NOT NULL,
    bucket             timestamptz NOT NULL,
    liquidator         text NOT NULL,
    liquidation_count  bigint NOT NULL,
    debt_usd           numeric NOT NULL,
    collateral_usd     numeric NOT NULL,
    svr_count          bigint NOT NULL,
    svr_debt_usd       numeric NOT NULL,
    svr_collateral_usd numeric NOT NULL,
    PRIMARY KEY (chain_id, market, bucket, liquidator)
);
CREATE INDEX IF NOT EXISTS liquidator_rollup_daily_bucket ON liquidator_rollup_daily (bucket);

CREATE TABLE IF NOT EXISTS svr_revenue_rollup_daily (
    chain_id              integer NOT NULL,
    market                text NOT NULL,
    bucket                timestamptz NOT NULL,
    aggregator            text NOT NULL,
    svr_liquidation_count bigint NOT NULL,
    svr_liquidated_usd    numeric NOT NULL,
    bonus_usd             numeric NOT NULL,
    recapture_count       bigint NOT NULL,
    recaptured_usd        numeric NOT NULL,
    aave_usd              numeric NOT NULL,
    chainlink_usd         numeric NOT NULL,
    unsold_updates        bigint NOT NULL,
    PRIMARY KEY (chain_id, market, bucket, aggregator)
);
CREATE INDEX IF NOT EXISTS svr_revenue_rollup_daily_bucket ON svr_revenue_rollup_daily (bucket);

GRANT SELECT ON chain_rollup_hourly, chain_rollup_daily, liquidation_rollup, liquidator_rollup_daily, svr_revenue_rollup_daily TO aave_indexer_reader;

CREATE OR REPLACE FUNCTION refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are insert/delete only (rollups depend on it)', TG_TABLE_NAME;
END $$;

CREATE OR REPLACE FUNCTION liquidations_rollup() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tg_sign integer := CASE WHEN TG_OP = 'DELETE' THEN -1 ELSE 1 END;
BEGIN
    INSERT INTO chain_rollup_hourly AS r (chain_id, market, bucket, liquidation_count, debt_usd, collateral_usd, svr_count, svr_debt_usd, svr_collateral_usd)
    SELECT chain_id,
           market,
           date_trunc('hour', block_time, 'UTC'),
           tg_sign * (count(*)),
           tg_sign * (coalesce(sum(debt_usd), 0)),
           tg_sign * (coalesce(sum(collateral_usd), 0)),
           tg_sign * (count(*) FILTER (WHERE is_svr)),
           tg_sign * (coalesce(sum(debt_usd) FILTER (WHERE is_svr), 0)),
           tg_sign * (coalesce(sum(collateral_usd) FILTER (WHERE is_svr), 0))
    FROM delta
    GROUP BY 1, 2, 3
    ON CONFLICT (chain_id, market, bucket) DO UPDATE SET
        liquidation_count = r.liquidation_count + EXCLUDED.liquidation_count,
        debt_usd = r.debt_usd + EXCLUDED.debt_usd,
        collateral_usd = r.collateral_usd + EXCLUDED.collateral_usd,
        svr_count = r.svr_count + EXCLUDED.svr_count,
        svr_debt_usd = r.svr_debt_usd + EXCLUDED.svr_debt_usd,
        svr_collateral_usd = r.svr_collateral_usd + EXCLUDED.svr_collateral_usd;

    INSERT INTO chain_rollup_daily AS r (chain_id, market, bucket, liquidation_count, debt_usd, collateral_usd, svr_count, svr_debt_usd, svr_collateral_usd)
    SELECT chain_id,
           market,
           date_trunc('day', block_time, 'UTC'),
           tg_sign * (count(*)),
           tg_sign * (coalesce(sum(debt_usd), 0)),
           tg_sign * (coalesce(sum(collateral_usd), 0)),
           tg_sign * (count(*) FILTER (WHERE is_svr)),
           tg_sign * (coalesce(sum(debt_usd) FILTER (WHERE is_svr), 0)),
           tg_sign * (coalesce(sum(collateral_usd) FILTER (WHERE is_svr), 0))
    FROM delta
    GROUP BY 1, 2, 3
    ON CONFLICT (chain_id, market, bucket) DO UPDATE SET
        liquidation_count = r.liquidation_count + EXCLUDED.liquidation_count,
        debt_usd = r.debt_usd + EXCLUDED.debt_usd,
        collateral_usd = r.collateral_usd + EXCLUDED.collateral_usd,
        svr_count = r.svr_count + EXCLUDED.svr_count,
        svr_debt_usd = r.svr_debt_usd + EXCLUDED.svr_debt_usd,
        svr_collateral_usd = r.svr_collateral_usd + EXCLUDED.svr_collateral_usd;

    INSERT INTO liquidation_rollup AS r (grain, chain_id, market, bucket, collateral_asset, debt_asset, liquidation_count, debt_usd, collateral_usd, svr_count, svr_debt_usd, svr_collateral_usd)
    SELECT 'day',
           chain_id,
           market,
           date_trunc('day', block_time, 'UTC'),
           collateral_asset,
           debt_asset,
           tg_sign * (count(*)),
           tg_sign * (coalesce(sum(debt_usd), 0)),
           tg_sign * (coalesce(sum(collateral_usd), 0)),
           tg_sign * (count(*) FILTER (WHERE is_svr)),
           tg_sign * (coalesce(sum(debt_usd) FILTER (WHERE is_svr), 0)),
           tg_sign * (coalesce(sum(collateral_usd) FILTER (WHERE is_svr), 0))
    FROM delta
    GROUP BY 2, 3, 4, 5, 6
    ON CONFLICT (grain, chain_id, market, bucket, collateral_asset, debt_asset) DO UPDATE SET
        liquidation_count = r.liquidation_count + EXCLUDED.liquidation_count,
        debt_usd = r.debt_usd + EXCLUDED.debt_usd,
        collateral_usd = r.collateral_usd + EXCLUDED.collateral_usd,
        svr_count = r.svr_count + EXCLUDED.svr_count,
        svr_debt_usd = r.svr_debt_usd + EXCLUDED.svr_debt_usd,
        svr_collateral_usd = r.svr_collateral_usd + EXCLUDED.svr_collateral_usd;

    INSERT INTO liquidator_rollup_daily AS r (chain_id, market, bucket, liquidator, liquidation_count, debt_usd, collateral_usd, svr_count, svr_debt_usd, svr_collateral_usd)
    SELECT chain_id,
           market,
           date_trunc('day', block_time, 'UTC'),
           liquidator,
           tg_sign * (count(*)),
           tg_sign * (coalesce(sum(debt_usd), 0)),
           tg_sign * (coalesce(sum(collateral_usd), 0)),
           tg_sign * (count(*) FILTER (WHERE is_svr)),
           tg_sign * (coalesce(sum(debt_usd) FILTER (WHERE is_svr), 0)),
           tg_sign * (coalesce(sum(collateral_usd) FILTER (WHERE is_svr), 0))
    FROM delta
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (chain_id, market, bucket, liquidator) DO UPDATE SET
        liquidation_count = r.liquidation_count + EXCLUDED.liquidation_count,
        debt_usd = r.debt_usd + EXCLUDED.debt_usd,
        collateral_usd = r.collateral_usd + EXCLUDED.collateral_usd,
        svr_count = r.svr_count + EXCLUDED.svr_count,
        svr_debt_usd = r.svr_debt_usd + EXCLUDED.svr_debt_usd,
        svr_collateral_usd = r.svr_collateral_usd + EXCLUDED.svr_collateral_usd;

    INSERT INTO svr_revenue_rollup_daily AS r (chain_id, market, bucket, aggregator, svr_liquidation_count, svr_liquidated_usd, bonus_usd, recapture_count, recaptured_usd, aave_usd, chainlink_usd, unsold_updates)
    SELECT chain_id,
           market,
           date_trunc('day', block_time, 'UTC'),
           svr_aggregator,
           tg_sign * (count(*)),
           tg_sign * (coalesce(sum(debt_usd), 0)),
           tg_sign * (coalesce(sum(collateral_usd - debt_usd), 0)),
           0,
           0,
           0,
           0,
           0
    FROM delta WHERE is_svr AND svr_aggregator IS NOT NULL
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (chain_id, market, bucket, aggregator) DO UPDATE SET
        svr_liquidation_count = r.svr_liquidation_count + EXCLUDED.svr_liquidation_count,
        svr_liquidated_usd = r.svr_liquidated_usd + EXCLUDED.svr_liquidated_usd,
        bonus_usd = r.bonus_usd + EXCLUDED.bonus_usd;

    IF tg_sign < 0 THEN  -- only a delete can empty a row
        DELETE FROM chain_rollup_hourly r
        USING (SELECT DISTINCT chain_id, market, date_trunc('hour', block_time, 'UTC') AS bucket FROM delta) t
        WHERE r.chain_id = t.chain_id AND r.market = t.market AND r.bucket = t.bucket AND r.liquidation_count = 0;
        DELETE FROM chain_rollup_daily r
        USING (SELECT DISTINCT chain_id, market, date_trunc('day', block_time, 'UTC') AS bucket FROM delta) t
        WHERE r.chain_id = t.chain_id AND r.market = t.market AND r.bucket = t.bucket AND r.liquidation_count = 0;
        DELETE FROM liquidation_rollup r
        USING (SELECT DISTINCT chain_id, market, date_trunc('day', block_time, 'UTC') AS bucket, collateral_asset, debt_asset FROM delta) t
        WHERE r.grain = 'day' AND r.chain_id = t.chain_id AND r.market = t.market AND r.bucket = t.bucket AND r.collateral_asset = t.collateral_asset AND r.debt_asset = t.debt_asset AND r.liquidation_count = 0;
        DELETE FROM liquidator_rollup_daily r
        USING (SELECT DISTINCT chain_id, market, date_trunc('day', block_time, 'UTC') AS bucket, liquidator FROM delta) t
        WHERE r.chain_id = t.chain_id AND r.market = t.market AND r.bucket = t.bucket AND r.liquidator = t.liquidator AND r.liquidation_count = 0;
        DELETE FROM svr_revenue_rollup_daily r
        USING (SELECT DISTINCT chain_id, market, date_trunc('day', block_time, 'UTC') AS bucket, svr_aggregator AS aggregator FROM delta WHERE is_svr AND svr_aggregator IS NOT NULL) t
        WHERE r.chain_id = t.chain_id AND r.market = t.market AND r.bucket = t.bucket AND r.aggregator = t.aggregator AND r.svr_liquidation_count = 0 AND r.recapture_count = 0 AND r.unsold_updates = 0;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS liquidations_no_update ON liquidations;
CREATE TRIGGER liquidations_no_update BEFORE UPDATE ON liquidations
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_update();
DROP TRIGGER IF EXISTS liquidations_rollup_ins ON liquidations;
CREATE TRIGGER liquidations_rollup_ins AFTER INSERT ON liquidations
    REFERENCING NEW TABLE AS delta FOR EACH STATEMENT EXECUTE FUNCTION liquidations_rollup();
DROP TRIGGER IF EXISTS liquidations_rollup_del ON liquidations;
CREATE TRIGGER liquidations_rollup_del AFTER DELETE ON liquidations
    REFERENCING OLD TABLE AS delta FOR EACH STATEMENT EXECUTE FUNCTION liquidations_rollup();

CREATE OR REPLACE FUNCTION svr_recaptures_rollup() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tg_sign integer := CASE WHEN TG_OP = 'DELETE' THEN -1 ELSE 1 END;
BEGIN
    INSERT INTO svr_revenue_rollup_daily AS r (chain_id, market, bucket, aggregator, svr_liquidation_count, svr_liquidated_usd, bonus_usd, recapture_count, recaptured_usd, aave_usd, chainlink_usd, unsold_updates)
    SELECT chain_id,
           coalesce(market, ''),
           date_trunc('day', block_time, 'UTC'),
           coalesce(aggregator, ''),
           0,
           0,
           0,
           tg_sign * (count(*)),
           tg_sign * (coalesce(sum(amount_usd), 0)),
           tg_sign * (coalesce(sum(aave_usd), 0)),
           tg_sign * (coalesce(sum(chainlink_usd), 0)),
           0
    FROM delta
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (chain_id, market, bucket, aggregator) DO UPDATE SET
        recapture_count = r.recapture_count + EXCLUDED.recapture_count,
        recaptured_usd = r.recaptured_usd + EXCLUDED.recaptured_usd,
        aave_usd = r.aave_usd + EXCLUDED.aave_usd,
        chainlink_usd = r.chainlink_usd + EXCLUDED.chainlink_usd;

    IF tg_sign < 0 THEN  -- only a delete can empty a row
        DELETE FROM svr_revenue_rollup_daily r
        USING (SELECT DISTINCT chain_id, coalesce(market, '') AS market, date_trunc('day', block_time, 'UTC') AS bucket, coalesce(aggregator, '') AS aggregator FROM delta) t
        WHERE r.chain_id = t.chain_id AND r.market = t.market AND r.bucket = t.bucket AND r.aggregator = t.aggregator AND r.svr_liquidation_count = 0 AND r.recapture_count = 0 AND r.unsold_updates = 0;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS svr_recaptures_no_update ON svr_recaptures;
CREATE TRIGGER svr_recaptures_no_update BEFORE UPDATE ON svr_recaptures
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_update();
DROP TRIGGER IF EXISTS svr_recaptures_rollup_ins ON svr_recaptures;
CREATE TRIGGER svr_recaptures_rollup_ins AFTER INSERT ON svr_recaptures
    REFERENCING NEW TABLE AS delta FOR EACH STATEMENT EXECUTE FUNCTION svr_recaptures_rollup();
DROP TRIGGER IF EXISTS svr_recaptures_rollup_del ON svr_recaptures;
CREATE TRIGGER svr_recaptures_rollup_del AFTER DELETE ON svr_recaptures
    REFERENCING OLD TABLE AS delta FOR EACH STATEMENT EXECUTE FUNCTION svr_recaptures_rollup();

CREATE OR REPLACE FUNCTION svr_oracle_updates_rollup() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tg_sign integer := CASE WHEN TG_OP = 'DELETE' THEN -1 ELSE 1 END;
BEGIN
    INSERT INTO svr_revenue_rollup_daily AS r (chain_id, market, bucket, aggregator, svr_liquidation_count, svr_liquidated_usd, bonus_usd, recapture_count, recaptured_usd, aave_usd, chainlink_usd, unsold_updates)
    SELECT chain_id,
           '',
           date_trunc('day', block_time, 'UTC'),
           aggregator,
           0,
           0,
           0,
           0,
           0,
           0,
           0,
           tg_sign * (count(*))
    FROM delta WHERE sold = false
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (chain_id, market, bucket, aggregator) DO UPDATE SET
        unsold_updates = r.unsold_updates + EXCLUDED.unsold_updates;

    IF tg_sign < 0 THEN  -- only a delete can empty a row
        DELETE FROM svr_revenue_rollup_daily r
        USING (SELECT DISTINCT chain_id, '' AS market, date_trunc('day', block_time, 'UTC') AS bucket, aggregator FROM delta WHERE sold = false) t
        WHERE r.chain_id = t.chain_id AND r.market = t.market AND r.bucket = t.bucket AND r.aggregator = t.aggregator AND r.svr_liquidation_count = 0 AND r.recapture_count = 0 AND r.unsold_updates = 0;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS svr_oracle_updates_no_update ON svr_oracle_updates;
CREATE TRIGGER svr_oracle_updates_no_update BEFORE UPDATE ON svr_oracle_updates
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_update();
DROP TRIGGER IF EXISTS svr_oracle_updates_rollup_ins ON svr_oracle_updates;
CREATE TRIGGER svr_oracle_updates_rollup_ins AFTER INSERT ON svr_oracle_updates
    REFERENCING NEW TABLE AS delta FOR EACH STATEMENT EXECUTE FUNCTION svr_oracle_updates_rollup();
DROP TRIGGER IF EXISTS svr_oracle_updates_rollup_del ON svr_oracle_updates;
CREATE TRIGGER svr_oracle_updates_rollup_del AFTER DELETE ON svr_oracle_updates
    REFERENCING OLD TABLE AS delta FOR EACH STATEMENT EXECUTE FUNCTION svr_oracle_updates_rollup();

INSERT INTO schema_version (version) VALUES (3) ON CONFLICT DO NOTHING;
