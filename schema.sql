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
    collateral_price             numeric(78,0),          -- USD, 8 decimals, see price_basis
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
    -- The economics, in USD at block_number: bonus = collateral_usd - debt_usd (what the
    -- liquidator made), the protocol fee priced as collateral, collateral seized = the
    -- liquidator's collateral plus the fee. closed_fully: the borrower owed nothing more of
    -- the debt asset after the call (null when unknown).
    bonus_usd                    numeric,
    protocol_fee_usd             numeric,
    collateral_seized_usd        numeric,
    closed_fully                 boolean,
    -- What the two prices are as of (docs/SVR.md, "The price the liquidation saw"): 'block'
    -- the end of its block, 'position' its place in the block (the block replayed up to
    -- it), 'block_unsure' the end of its block although an indexed feed of its assets
    -- changed after it there (the replay was not possible). Null for rows from before.
    price_basis                  text,
    PRIMARY KEY (chain_id, tx_hash, log_index)
);

-- Bulk loading (indexer/store/bulk.py): a chain far behind backfills liquidations without
-- the secondary indexes below, which are rebuilt when the last such chain's backfill ends.
-- bulk_load: one row per chain loading so (live while a session owns the chain);
-- bulk_load_indexes: the definitions of the indexes dropped, saved with the drop.
CREATE TABLE IF NOT EXISTS bulk_load (
    chain_id   integer     PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS bulk_load_indexes (
    name       text PRIMARY KEY,
    definition text NOT NULL
);

-- The secondary indexes: made here unless a bulk load holds them off (it rebuilds them).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM bulk_load) THEN
        CREATE INDEX IF NOT EXISTS liquidations_chain_block ON liquidations (chain_id, block_number);
        CREATE INDEX IF NOT EXISTS liquidations_time ON liquidations (block_time DESC, chain_id, tx_hash, log_index);
        CREATE INDEX IF NOT EXISTS liquidations_chain_time ON liquidations (chain_id, block_time DESC, tx_hash, log_index);
        CREATE INDEX IF NOT EXISTS liquidations_user ON liquidations (user_address, block_time DESC);
        CREATE INDEX IF NOT EXISTS liquidations_liquidator ON liquidations (liquidator, block_time DESC);
        CREATE INDEX IF NOT EXISTS liquidations_debt_usd
            ON liquidations ((coalesce(debt_usd, -1)) DESC, chain_id, tx_hash, log_index);
    END IF;
END $$;

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
-- The last answer of a feed before a position (blocks since the price update).
CREATE INDEX IF NOT EXISTS svr_oracle_updates_answers
    ON svr_oracle_updates (chain_id, aggregator, block_number DESC, log_index DESC)
    WHERE kind = 'answer_updated';
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

-- DeficitCreated (kind 'created': a liquidation left `user_address` with debt and no
-- collateral; `amount` of `asset` was booked as the reserve's deficit) and DeficitCovered
-- ('covered': `caller`, the Umbrella, covered `amount`) of V3.3+ pools. A deficit created
-- belongs to the LiquidationCall of its user that follows it in the same transaction
-- (liquidation_log_index). price / usd: the pool's AaveOracle at the block.
CREATE TABLE IF NOT EXISTS deficits (
    chain_id              integer       NOT NULL,
    block_number          bigint        NOT NULL,
    block_hash            text          NOT NULL,
    block_time            timestamptz   NOT NULL,
    tx_hash               text          NOT NULL,
    tx_index              integer       NOT NULL,
    log_index             integer       NOT NULL,
    pool                  text          NOT NULL,
    market                text          NOT NULL,
    kind                  text          NOT NULL CHECK (kind IN ('created', 'covered')),
    user_address          text,                    -- created only
    asset                 text          NOT NULL,
    amount                numeric(78,0) NOT NULL,
    caller                text,                    -- covered only
    price                 numeric(78,0),           -- USD, 8 decimals, at block_number
    usd                   numeric,
    liquidation_log_index integer,                 -- created: its liquidation in tx_hash
    PRIMARY KEY (chain_id, tx_hash, log_index)
);
CREATE INDEX IF NOT EXISTS deficits_chain_block ON deficits (chain_id, block_number);
CREATE INDEX IF NOT EXISTS deficits_time ON deficits (block_time DESC, chain_id, tx_hash, log_index);

-- Each source's window: from the block of its AssetSourceUpdated to the block in which the
-- asset's next source took over (null while it is in force). svrFeeds reads the SVR ones.
CREATE OR REPLACE VIEW asset_source_windows AS
SELECT chain_id, market, oracle, asset, source, aggregator, is_svr, type_and_version,
       block_number AS from_block, log_index AS from_log_index,
       lead(block_number) OVER w AS to_block, lead(log_index) OVER w AS to_log_index
FROM asset_sources
WINDOW w AS (PARTITION BY chain_id, market, asset ORDER BY block_number, log_index);

-- Live push (the API's GraphQL subscriptions, api/live.py). Statement-level AFTER triggers
-- announce what a statement inserted or deleted: one pg_notify on channel `aave_live` per
-- statement (and chain), which PostgreSQL delivers at commit only, so never for rows that
-- were rolled back. The payload is a few numbers as JSON, never rows (a payload holds at
-- most 8000 bytes): {"kind", "chain", "lo", "hi", "n", "xid"}, the block range (for
-- retractions, the id range) and count of the rows, and the id of the (sub)transaction
-- that wrote them (the xmin of one row it wrote, one primary-key lookup). The API reads
-- exactly those rows, by range and xmin, once for all its subscribers. No per-row work.
--
-- A DELETE of liquidations (a reorg rollback) copies the deleted rows' identities and the
-- columns a subscription filter reads into liquidation_retractions: the rows are gone by
-- the time the API reads, and a rollback may delete more keys than a payload could carry
-- (about 90). Rows older than a day are pruned by the same trigger; the API reads them
-- within milliseconds of the commit.
CREATE TABLE IF NOT EXISTS liquidation_retractions (
    id               bigserial   PRIMARY KEY,
    retracted_at     timestamptz NOT NULL DEFAULT now(),
    chain_id         integer     NOT NULL,
    tx_hash          text        NOT NULL,
    log_index        integer     NOT NULL,
    block_number     bigint      NOT NULL,
    block_hash       text        NOT NULL,
    block_time       timestamptz NOT NULL,
    market           text        NOT NULL,
    collateral_asset text        NOT NULL,
    debt_asset       text        NOT NULL,
    user_address     text        NOT NULL,
    liquidator       text        NOT NULL,
    is_svr           boolean     NOT NULL,
    debt_usd         numeric,
    collateral_usd   numeric
);

CREATE OR REPLACE FUNCTION live_liquidations_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    d record;
    k record;
    xid text;
BEGIN
    FOR d IN SELECT chain_id, min(block_number) AS lo, max(block_number) AS hi, count(*) AS n
             FROM delta GROUP BY chain_id
    LOOP
        SELECT x.tx_hash, x.log_index INTO k FROM delta x WHERE x.chain_id = d.chain_id LIMIT 1;
        SELECT l.xmin::text INTO xid FROM liquidations l
        WHERE l.chain_id = d.chain_id AND l.tx_hash = k.tx_hash
          AND l.log_index = k.log_index;
        PERFORM pg_notify('aave_live', json_build_object(
            'kind', 'liquidations', 'chain', d.chain_id, 'lo', d.lo, 'hi', d.hi, 'n', d.n,
            'xid', xid)::text);
    END LOOP;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION live_recaptures_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    d record;
    k record;
    xid text;
BEGIN
    FOR d IN SELECT chain_id, min(block_number) AS lo, max(block_number) AS hi, count(*) AS n
             FROM delta GROUP BY chain_id
    LOOP
        SELECT x.tx_hash, x.source_index INTO k FROM delta x WHERE x.chain_id = d.chain_id LIMIT 1;
        SELECT r.xmin::text INTO xid FROM svr_recaptures r
        WHERE r.chain_id = d.chain_id AND r.tx_hash = k.tx_hash
          AND r.source_index = k.source_index;
        PERFORM pg_notify('aave_live', json_build_object(
            'kind', 'svr_recaptures', 'chain', d.chain_id, 'lo', d.lo, 'hi', d.hi, 'n', d.n,
            'xid', xid)::text);
    END LOOP;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION live_liquidations_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    lo bigint;
    hi bigint;
    n bigint;
    xid text;
BEGIN
    DELETE FROM liquidation_retractions WHERE retracted_at < now() - interval '1 day';
    WITH kept AS (
        INSERT INTO liquidation_retractions (
            chain_id, tx_hash, log_index, block_number, block_hash, block_time, market,
            collateral_asset, debt_asset, user_address, liquidator, is_svr, debt_usd,
            collateral_usd)
        SELECT chain_id, tx_hash, log_index, block_number, block_hash, block_time, market,
               collateral_asset, debt_asset, user_address, liquidator, is_svr, debt_usd,
               collateral_usd
        FROM delta
        RETURNING id, xmin
    )
    SELECT min(id), max(id), count(*), min(xmin::text) INTO lo, hi, n, xid FROM kept;
    IF n > 0 THEN
        PERFORM pg_notify('aave_live', json_build_object(
            'kind', 'liquidation_retractions', 'lo', lo, 'hi', hi, 'n', n, 'xid', xid)::text);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS liquidations_live_ins ON liquidations;
CREATE TRIGGER liquidations_live_ins AFTER INSERT ON liquidations
    REFERENCING NEW TABLE AS delta FOR EACH STATEMENT
    EXECUTE FUNCTION live_liquidations_inserted();
DROP TRIGGER IF EXISTS svr_recaptures_live_ins ON svr_recaptures;
CREATE TRIGGER svr_recaptures_live_ins AFTER INSERT ON svr_recaptures
    REFERENCING NEW TABLE AS delta FOR EACH STATEMENT
    EXECUTE FUNCTION live_recaptures_inserted();
DROP TRIGGER IF EXISTS liquidations_live_del ON liquidations;
CREATE TRIGGER liquidations_live_del AFTER DELETE ON liquidations
    REFERENCING OLD TABLE AS delta FOR EACH STATEMENT
    EXECUTE FUNCTION live_liquidations_deleted();

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
