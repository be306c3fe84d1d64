"""The rollups, described once, and all the SQL that makes, keeps and checks them (I3).

`ROLLUPS` says, per rollup table, what its keys and measures are, their types, and how each
is computed from a base row. Everything else is generated from it, once, at import:

- `ROLLUP_SQL`, which `migrate` applies after schema.sql:
  - the tables (CREATE IF NOT EXISTS: a changed layout needs a version step in migrate.py);
  - one statement-level trigger function per base table (its INSERT and its DELETE
    trigger share it; TG_OP gives the sign). Per statement and rollup it runs one GROUP BY
    upsert over the transition table `delta`, and on a DELETE (a reorg rollback) removes
    the rows it emptied, looking only at the keys the delta touched. UPDATEs of base rows
    are refused: they would bypass the rollups.
- `rebuild_sql`: rollups recomputed from the base rows, for migrations that change a
  rollup's layout.
- `DRIFT_CHECKS`: per rollup, the rows that differ from a GROUP BY of the base rows (zero,
  always); `aave-indexer verify` runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import asyncpg


class Col(NamedTuple):
    """A rollup column: its type, and the SQL computing it from base rows (an expression
    of one row for a key, an aggregate for a measure)."""

    type: str
    sql: str


@dataclass(frozen=True)
class Feed:
    """One base table's contribution to a rollup: the measures it feeds (the rollup's other
    measures get 0 from it), key expressions where they differ from the rollup's, and which
    of its rows count."""

    table: str
    measures: Mapping[str, Col]
    keys: Mapping[str, str] = field(default_factory=dict)
    where: str | None = None


@dataclass(frozen=True)
class Rollup:
    """A rollup table. The keys, in order, are its primary key; `fixed` key columns hold
    one value in every row (matched, never grouped by); `empty` names the counts that are
    all zero in a row holding nothing, which a DELETE then removes; `index`, the columns
    of its secondary index, if any (scans by period across chains)."""

    table: str
    keys: Mapping[str, Col]
    feeds: tuple[Feed, ...]
    empty: tuple[str, ...]
    fixed: Mapping[str, Col] = field(default_factory=dict)
    index: tuple[str, ...] = ()

    @property
    def key_columns(self) -> tuple[str, ...]:
        return (*self.fixed, *self.keys)

    @property
    def measures(self) -> dict[str, Col]:
        return {m: col for f in self.feeds for m, col in f.measures.items()}

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.key_columns, *self.measures)

    def key_exprs(self, feed: Feed) -> dict[str, str]:
        return {k: feed.keys.get(k, col.sql) for k, col in self.keys.items()}


CHAIN = {"chain_id": Col("integer", "chain_id")}
# The pool's market (core, prime, ...): a liquidation always has one; a recapture has its
# first liquidation's, and none when it belongs to no liquidation ('' in the key, as a
# primary key column cannot be null).
MARKET = {"market": Col("text", "market")}
DAY = {"bucket": Col("timestamptz", "date_trunc('day', block_time, 'UTC')")}
HOUR = {"bucket": Col("timestamptz", "date_trunc('hour', block_time, 'UTC')")}


def text(column: str) -> dict[str, Col]:
    """A key that is a text column of the base row as it is."""
    return {column: Col("text", column)}


# What every liquidation rollup keeps; the svr_* part lets a filter on svr be answered from
# any of them (svr: false is the total minus the SVR part).
LIQUIDATION_MEASURES = {
    "liquidation_count": Col("bigint", "count(*)"),
    "debt_usd": Col("numeric", "coalesce(sum(debt_usd), 0)"),
    "collateral_usd": Col("numeric", "coalesce(sum(collateral_usd), 0)"),
    "svr_count": Col("bigint", "count(*) FILTER (WHERE is_svr)"),
    "svr_debt_usd": Col("numeric", "coalesce(sum(debt_usd) FILTER (WHERE is_svr), 0)"),
    "svr_collateral_usd": Col("numeric", "coalesce(sum(collateral_usd) FILTER (WHERE is_svr), 0)"),
    # the economics (collateral seized = collateral_usd + protocol_fee_usd, summed)
    "bonus_usd": Col("numeric", "coalesce(sum(bonus_usd), 0)"),
    "protocol_fee_usd": Col("numeric", "coalesce(sum(protocol_fee_usd), 0)"),
    "svr_bonus_usd": Col("numeric", "coalesce(sum(bonus_usd) FILTER (WHERE is_svr), 0)"),
    "svr_protocol_fee_usd": Col(
        "numeric", "coalesce(sum(protocol_fee_usd) FILTER (WHERE is_svr), 0)"
    ),
}
LIQUIDATIONS = (Feed("liquidations", LIQUIDATION_MEASURES),)
LIQUIDATIONS_EMPTY = ("liquidation_count",)

ROLLUPS = (
    Rollup(
        "chain_rollup_hourly",
        {**CHAIN, **MARKET, **HOUR},
        LIQUIDATIONS,
        LIQUIDATIONS_EMPTY,
        index=("bucket",),
    ),
    Rollup("chain_rollup_daily", {**CHAIN, **MARKET, **DAY}, LIQUIDATIONS, LIQUIDATIONS_EMPTY),
    # Always by day: hours are kept per chain only, in chain_rollup_hourly.
    Rollup(
        "liquidation_rollup",
        {**CHAIN, **MARKET, **DAY, **text("collateral_asset"), **text("debt_asset")},
        LIQUIDATIONS,
        LIQUIDATIONS_EMPTY,
        fixed={"grain": Col("text", "'day'")},
        index=("grain", "bucket"),
    ),
    Rollup(
        "liquidator_rollup_daily",
        {**CHAIN, **MARKET, **DAY, **text("liquidator")},
        LIQUIDATIONS,
        LIQUIDATIONS_EMPTY,
        index=("bucket",),
    ),
    # SVR revenue: the liquidation side from liquidations (their market), the recapture side
    # from svr_recaptures ('' when a recapture has no aggregator, or no market), the unsold
    # reports from svr_oracle_updates ('' market).
    Rollup(
        "svr_revenue_rollup_daily",
        {**CHAIN, **MARKET, **DAY, **text("aggregator")},
        (
            Feed(
                "liquidations",
                {
                    "svr_liquidation_count": Col("bigint", "count(*)"),
                    "svr_liquidated_usd": Col("numeric", "coalesce(sum(debt_usd), 0)"),
                    # the liquidation bonus the auctions competed for (priced ones only)
                    "bonus_usd": Col("numeric", "coalesce(sum(collateral_usd - debt_usd), 0)"),
                },
                keys={"aggregator": "svr_aggregator"},
                where="is_svr AND svr_aggregator IS NOT NULL",
            ),
            Feed(
                "svr_recaptures",
                {
                    "recapture_count": Col("bigint", "count(*)"),
                    "recaptured_usd": Col("numeric", "coalesce(sum(amount_usd), 0)"),
                    "aave_usd": Col("numeric", "coalesce(sum(aave_usd), 0)"),
                    "chainlink_usd": Col("numeric", "coalesce(sum(chainlink_usd), 0)"),
                },
                keys={"market": "coalesce(market, '')", "aggregator": "coalesce(aggregator, '')"},
            ),
            # New SVR reports nobody bought (no market: a feed may serve several).
            Feed(
                "svr_oracle_updates",
                {"unsold_updates": Col("bigint", "count(*)")},
                keys={"market": "''"},
                where="sold = false",
            ),
        ),
        empty=("svr_liquidation_count", "recapture_count", "unsold_updates"),
        index=("bucket",),
    ),
)
BY_TABLE = {r.table: r for r in ROLLUPS}
BASE_TABLES = tuple(dict.fromkeys(f.table for r in ROLLUPS for f in r.feeds))


def _check(rollup: Rollup) -> None:
    """Refuse at import a spec the generated SQL would get wrong."""
    fed = [m for f in rollup.feeds for m in f.measures]
    if len(set(fed)) != len(fed):
        raise ValueError(f"{rollup.table}: a measure is fed twice")
    if not set(rollup.empty) <= set(fed):
        raise ValueError(f"{rollup.table}: empty names a column that is not a measure")
    for feed in rollup.feeds:
        if not set(feed.keys) <= set(rollup.keys):
            raise ValueError(f"{rollup.table}: {feed.table} overrides an unknown key")


for _rollup in ROLLUPS:
    _check(_rollup)


def _positions(first: int, n: int) -> str:
    return ", ".join(str(i) for i in range(first, first + n))


def _as(expr: str, name: str) -> str:
    return expr if expr == name else f"{expr} AS {name}"


def _grouped(rollup: Rollup, feed: Feed, fixed: bool) -> str:
    """SELECT the rollup's keys and this feed's measures by GROUP BY over its base table."""
    head = [_as(v.sql, k) for k, v in rollup.fixed.items()] if fixed else []
    cols = [
        *head,
        *(_as(v, k) for k, v in rollup.key_exprs(feed).items()),
        *(_as(v.sql, k) for k, v in feed.measures.items()),
    ]
    where = f" WHERE {feed.where}" if feed.where else ""
    return (
        f"SELECT {', '.join(cols)}\n  FROM {feed.table}{where}"
        f" GROUP BY {_positions(len(head) + 1, len(rollup.keys))}"
    )


def _base(rollup: Rollup) -> str:
    """SELECT the rollup's rows as GROUP BY over the base rows computes them."""
    if len(rollup.feeds) == 1:
        return _grouped(rollup, rollup.feeds[0], fixed=True)
    using = ", ".join(rollup.keys)
    parts = [f"({_grouped(rollup, f, fixed=False)}) f{i}" for i, f in enumerate(rollup.feeds)]
    measures = [
        f"coalesce(f{i}.{m}, 0) AS {m}" for i, f in enumerate(rollup.feeds) for m in f.measures
    ]
    cols = [*(_as(v.sql, k) for k, v in rollup.fixed.items()), *rollup.keys, *measures]
    return f"SELECT {', '.join(cols)}\nFROM " + "\n  FULL JOIN ".join(
        [parts[0], *(f"{p} USING ({using})" for p in parts[1:])]
    )


def _drift(rollup: Rollup) -> str:
    differs = "\n   OR ".join(f"base.{m} IS DISTINCT FROM r.{m}" for m in rollup.measures)
    return (
        f"WITH base AS (\n{_base(rollup)})\n"
        f"SELECT count(*) FROM base FULL JOIN {rollup.table} r"
        f" USING ({', '.join(rollup.key_columns)})\nWHERE {differs}"
    )


_LIST = ",\n           "


def _upsert(rollup: Rollup, feed: Feed) -> str:
    """Fold the statement's rows into the rollup, with the sign of the operation."""
    values = [
        *(v.sql for v in rollup.fixed.values()),
        *rollup.key_exprs(feed).values(),
        *(
            f"tg_sign * ({feed.measures[m].sql})" if m in feed.measures else "0"
            for m in rollup.measures
        ),
    ]
    where = f" WHERE {feed.where}" if feed.where else ""
    adds = ",\n        ".join(f"{m} = r.{m} + EXCLUDED.{m}" for m in feed.measures)
    return (
        f"    INSERT INTO {rollup.table} AS r ({', '.join(rollup.columns)})\n"
        f"    SELECT {_LIST.join(values)}\n"
        f"    FROM delta{where}\n"
        f"    GROUP BY {_positions(len(rollup.fixed) + 1, len(rollup.keys))}\n"
        f"    ON CONFLICT ({', '.join(rollup.key_columns)}) DO UPDATE SET\n"
        f"        {adds};"
    )


def _delete_emptied(rollup: Rollup, feed: Feed) -> str:
    """Remove the rows the statement emptied, looking only at the keys it touched."""
    touched = ", ".join(_as(v, k) for k, v in rollup.key_exprs(feed).items())
    where = f" WHERE {feed.where}" if feed.where else ""
    match = [
        *(f"r.{k} = {v.sql}" for k, v in rollup.fixed.items()),
        *(f"r.{k} = t.{k}" for k in rollup.keys),
        *(f"r.{m} = 0" for m in rollup.empty),
    ]
    return (
        f"        DELETE FROM {rollup.table} r\n"
        f"        USING (SELECT DISTINCT {touched} FROM delta{where}) t\n"
        f"        WHERE {' AND '.join(match)};"
    )


def _trigger_function(base: str) -> str:
    fed = [(r, f) for r in ROLLUPS for f in r.feeds if f.table == base]
    upserts = "\n\n".join(_upsert(r, f) for r, f in fed)
    deletes = "\n".join(_delete_emptied(r, f) for r, f in fed)
    return f"""CREATE OR REPLACE FUNCTION {base}_rollup() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tg_sign integer := CASE WHEN TG_OP = 'DELETE' THEN -1 ELSE 1 END;
BEGIN
{upserts}

    IF tg_sign < 0 THEN  -- only a delete can empty a row
{deletes}
    END IF;
    RETURN NULL;
END $$;
"""


def _triggers(base: str) -> str:
    ddl = [f"DROP TRIGGER IF EXISTS {base}_no_update ON {base};"]
    ddl.append(
        f"CREATE TRIGGER {base}_no_update BEFORE UPDATE ON {base}\n"
        "    FOR EACH STATEMENT EXECUTE FUNCTION refuse_update();"
    )
    for suffix, event, transition in (("ins", "INSERT", "NEW"), ("del", "DELETE", "OLD")):
        ddl.append(f"DROP TRIGGER IF EXISTS {base}_rollup_{suffix} ON {base};")
        ddl.append(
            f"CREATE TRIGGER {base}_rollup_{suffix} AFTER {event} ON {base}\n"
            f"    REFERENCING {transition} TABLE AS delta FOR EACH STATEMENT"
            f" EXECUTE FUNCTION {base}_rollup();"
        )
    return "\n".join(ddl) + "\n"


def _table(rollup: Rollup) -> str:
    """The table as the spec lays it out; a fixed key is its own default and CHECK, so no
    other value can enter."""
    fixed = {
        k: f"{c.type} NOT NULL DEFAULT {c.sql} CHECK ({k} = {c.sql})"
        for k, c in rollup.fixed.items()
    }
    plain = {k: f"{c.type} NOT NULL" for k, c in {**rollup.keys, **rollup.measures}.items()}
    width = max(map(len, rollup.columns))
    lines = [f"    {k:<{width}} {decl}," for k, decl in {**fixed, **plain}.items()]
    ddl = (
        f"CREATE TABLE IF NOT EXISTS {rollup.table} (\n" + "\n".join(lines) + "\n"
        f"    PRIMARY KEY ({', '.join(rollup.key_columns)})\n);\n"
    )
    if rollup.index:
        ddl += (
            f"CREATE INDEX IF NOT EXISTS {rollup.table}_bucket"
            f" ON {rollup.table} ({', '.join(rollup.index)});\n"
        )
    return ddl


_REFUSE_UPDATE = """CREATE OR REPLACE FUNCTION refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are insert/delete only (rollups depend on it)', TG_TABLE_NAME;
END $$;
"""

# The reader role is made by schema.sql, whose grant on all tables runs before these exist.
TABLE_SQL = "\n".join(
    [
        *(_table(r) for r in ROLLUPS),
        f"GRANT SELECT ON {', '.join(BY_TABLE)} TO aave_indexer_reader;\n",
    ]
)
TRIGGER_SQL = "\n".join(
    [_REFUSE_UPDATE, *(_trigger_function(b) + "\n" + _triggers(b) for b in BASE_TABLES)]
)
ROLLUP_SQL = TABLE_SQL + "\n" + TRIGGER_SQL

_REBUILD = {
    r.table: f"INSERT INTO {r.table} ({', '.join(r.columns)})\n{_base(r)};" for r in ROLLUPS
}


def _lock_bases(tables: tuple[str, ...]) -> str:
    """Hold off the writers of the base tables that feed these rollups (SHARE: reads go on)."""
    bases = dict.fromkeys(f.table for t in tables for f in BY_TABLE[t].feeds)
    return f"LOCK TABLE {', '.join(bases)} IN SHARE MODE;"


def drop_sql(*tables: str) -> str:
    """Drop these rollups ahead of ROLLUP_SQL, which then makes them in their new layout."""
    return f"{_lock_bases(tables)}\nDROP TABLE IF EXISTS {', '.join(tables)};"


def rebuild_sql(*tables: str) -> str:
    """Recompute these rollups from the base rows, holding off their writers meanwhile (so
    the result is exact)."""
    return "\n".join(
        [_lock_bases(tables), f"TRUNCATE {', '.join(tables)};", *(_REBUILD[t] for t in tables)]
    )


DRIFT_CHECKS = {r.table: _drift(r) for r in ROLLUPS}
LIQUIDATION_ROLLUP_DRIFT = DRIFT_CHECKS["liquidation_rollup"]
SVR_REVENUE_ROLLUP_DRIFT = DRIFT_CHECKS["svr_revenue_rollup_daily"]


async def rollup_drift(conn: asyncpg.Connection) -> dict[str, int]:
    """Rows that differ between each rollup table and a GROUP BY of the base rows."""
    return {name: int(await conn.fetchval(sql)) for name, sql in DRIFT_CHECKS.items()}
