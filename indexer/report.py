"""`aave-indexer report`: the published figures, per chain and market, with a total.

Every figure is read through the GraphQL API's own schema (api.schema), executed in process
over the database, so each one is a GraphQL query anyone can run against a served API
(README, "Reproducing the published figures"): the liquidation figures are
`liquidationStats` grouped by CHAIN and MARKET (the total row: without groupBy), the SVR
revenue figures `svrRevenue` grouped the same way. Both answer from the rollups.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import asyncpg

from indexer.config import mask_url
from indexer.networks import CHAIN_NAMES
from indexer.store.migrate import SCHEMA_VERSION, database_version

EXIT_USAGE, EXIT_FAILED, EXIT_UNREACHABLE = 2, 1, 3

# One document, four root fields; $f and $s hold the same chainIds, timeFrom and timeTo.
REPORT_QUERY = """
query Report($f: LiquidationFilter, $s: SvrRevenueFilter) {
  markets: liquidationStats(filter: $f, groupBy: [CHAIN, MARKET]) {
    chainId market count debtUsd collateralUsd svrCount svrDebtUsd
  }
  total: liquidationStats(filter: $f) {
    count debtUsd collateralUsd svrCount svrDebtUsd
  }
  svrMarkets: svrRevenue(filter: $s, groupBy: [CHAIN, MARKET]) {
    chainId market recapturedUsd aaveUsd chainlinkUsd
  }
  svrTotal: svrRevenue(filter: $s) {
    recapturedUsd aaveUsd chainlinkUsd
  }
}
"""

# A report reads a few thousand rollup rows at most; a long history still gets time.
STATEMENT_TIMEOUT_MS = 60_000


class ReportError(Exception):
    """One line for the user, with the exit code the CLI returns."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def parse_date(value: str) -> date:
    """A UTC day, YYYY-MM-DD (for argparse: a bad one is a usage error)."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


@dataclass(frozen=True)
class Figures:
    """The figures of one row. svr_volume_usd is the debt USD of the SVR liquidations;
    aave_usd and chainlink_usd are the two shares of recaptured_usd."""

    liquidations: int = 0
    debt_usd: Decimal = Decimal(0)
    collateral_usd: Decimal = Decimal(0)
    svr_liquidations: int = 0
    svr_volume_usd: Decimal = Decimal(0)
    recaptured_usd: Decimal = Decimal(0)
    aave_usd: Decimal = Decimal(0)
    chainlink_usd: Decimal = Decimal(0)


@dataclass(frozen=True)
class Row:
    chain_id: int
    market: str | None  # None: recaptures that belong to no liquidation
    figures: Figures


@dataclass(frozen=True)
class Report:
    time_from: date | None
    time_to: date | None
    chain_ids: tuple[int, ...] | None
    rows: list[Row]
    total: Figures


def variables(
    chain_ids: tuple[int, ...] | None, time_from: date | None, time_to: date | None
) -> dict[str, Any]:
    """The GraphQL variables of REPORT_QUERY: UTC midnights, as svrRevenue wants them."""
    f: dict[str, Any] = {}
    if chain_ids is not None:
        f["chainIds"] = list(chain_ids)
    if time_from is not None:
        f["timeFrom"] = _midnight(time_from)
    if time_to is not None:
        f["timeTo"] = _midnight(time_to)
    return {"f": f, "s": f}


def _midnight(day: date) -> str:
    return datetime.combine(day, time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _liquidation_figures(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "liquidations": r["count"],
        "debt_usd": Decimal(r["debtUsd"]),
        "collateral_usd": Decimal(r["collateralUsd"]),
        "svr_liquidations": r["svrCount"],
        "svr_volume_usd": Decimal(r["svrDebtUsd"]),
    }


def _svr_figures(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "recaptured_usd": Decimal(r["recapturedUsd"]),
        "aave_usd": Decimal(r["aaveUsd"]),
        "chainlink_usd": Decimal(r["chainlinkUsd"]),
    }


def assemble(
    data: Mapping[str, Any],
    chain_ids: tuple[int, ...] | None,
    time_from: date | None,
    time_to: date | None,
) -> Report:
    """The report from the answer to REPORT_QUERY: a (chain, market) found by either side
    is a row (the other side's figures zero)."""
    parts: dict[tuple[int, str | None], dict[str, Any]] = {}
    for r in data["markets"]:
        parts.setdefault((r["chainId"], r["market"]), {}).update(_liquidation_figures(r))
    for r in data["svrMarkets"]:
        parts.setdefault((r["chainId"], r["market"]), {}).update(_svr_figures(r))
    rows = [
        Row(chain_id, market, Figures(**values))
        for (chain_id, market), values in sorted(
            parts.items(), key=lambda kv: (kv[0][0], kv[0][1] is None, kv[0][1] or "")
        )
    ]
    (total,), (svr_total,) = data["total"], data["svrTotal"]
    figures = Figures(**_liquidation_figures(total), **_svr_figures(svr_total))
    return Report(time_from, time_to, chain_ids, rows, figures)


async def _check_database(dsn: str) -> None:
    """Refuse, with one line, a database that is not there or not at this release's schema
    (rather than let a query fail inside the API with a traceback in the log)."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except asyncpg.InvalidCatalogNameError as exc:
        raise ReportError(f"no database at {mask_url(dsn)}: {exc}") from None
    except asyncpg.ClientConfigurationError as exc:
        raise ReportError(f"database URL {mask_url(dsn)}: {exc}") from None
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise ReportError(
            f"cannot reach the database at {mask_url(dsn)}: {exc}", EXIT_UNREACHABLE
        ) from None
    try:
        version = await database_version(conn)
    finally:
        await conn.close()
    if version == 0:
        raise ReportError("the database has no schema yet; run `aave-indexer migrate`")
    if version != SCHEMA_VERSION:
        raise ReportError(
            f"the database schema is at version {version}, this release reads version "
            f"{SCHEMA_VERSION}; run `aave-indexer migrate` (with this release)"
        )


async def collect(
    dsn: str,
    chain_ids: tuple[int, ...] | None = None,
    time_from: date | None = None,
    time_to: date | None = None,
) -> Report:
    """Run REPORT_QUERY against the API schema over the database at `dsn`; `time_to` is
    exclusive."""
    from api.context import ApiContext
    from api.db import Database
    from api.schema import schema

    await _check_database(dsn)
    db = Database(dsn, statement_timeout_ms=STATEMENT_TIMEOUT_MS, pool_min=1, pool_max=2)
    try:
        result = await schema.execute(
            REPORT_QUERY,
            variable_values=variables(chain_ids, time_from, time_to),
            context_value=ApiContext(db=db, cursor_key=b"report"),
        )
    finally:
        await db.close()
    if result.errors or result.data is None:
        error = result.errors[0] if result.errors else None
        code = (error.extensions or {}).get("code") if error else None
        raise ReportError(
            f"the report's query failed: {error.message if error else 'no data'}",
            EXIT_UNREACHABLE if code == "UNAVAILABLE" else EXIT_FAILED,
        )
    return assemble(result.data, chain_ids, time_from, time_to)


# -- output -------------------------------------------------------------------------------


def chain_name(chain_id: int, names: Mapping[int, str]) -> str:
    """The configuration's name of the chain, else the known one, else its id."""
    return names.get(chain_id) or CHAIN_NAMES.get(chain_id) or str(chain_id)


def _exact(figures: Figures) -> dict[str, int | str]:
    """Counts as numbers, USD as exact decimal strings (never floats)."""
    out: dict[str, int | str] = {}
    for f in fields(figures):
        value = getattr(figures, f.name)
        out[f.name] = format(value, "f") if isinstance(value, Decimal) else value
    return out


def to_json(report: Report, names: Mapping[int, str]) -> dict[str, Any]:
    """The report as JSON-ready values, with the GraphQL document and variables it ran."""
    return {
        "from": report.time_from.isoformat() if report.time_from else None,
        "to": report.time_to.isoformat() if report.time_to else None,
        "chains": (
            [chain_name(c, names) for c in report.chain_ids]
            if report.chain_ids is not None
            else None
        ),
        "rows": [
            {"chain": chain_name(r.chain_id, names), "chain_id": r.chain_id, "market": r.market}
            | _exact(r.figures)
            for r in report.rows
        ],
        "total": _exact(report.total),
        "graphql": {
            "query": REPORT_QUERY.strip(),
            "variables": variables(report.chain_ids, report.time_from, report.time_to),
        },
    }


COLUMNS = (
    "chain",
    "market",
    "liquidations",
    "debt USD",
    "collateral USD",
    "SVR liq.",
    "SVR volume USD",
    "recaptured USD",
    "Aave share",
    "Chainlink share",
)


def _cells(figures: Figures) -> list[str]:
    f = figures
    usd = (f.debt_usd, f.collateral_usd)
    svr = (f.svr_volume_usd, f.recaptured_usd, f.aave_usd, f.chainlink_usd)
    return [
        f"{f.liquidations:,}",
        *(f"{v:,.2f}" for v in usd),
        f"{f.svr_liquidations:,}",
        *(f"{v:,.2f}" for v in svr),
    ]


def render(report: Report, names: Mapping[int, str]) -> str:
    """A plain-text table (USD rounded to cents; --json has the exact values)."""
    start, end = report.time_from, report.time_to
    if start and end:
        period = f"{start.isoformat()} to {end.isoformat()} (exclusive)"
    elif start or end:
        period = f"from {start.isoformat()}" if start else f"until {end} (exclusive)"
    else:
        period = "all time"
    scope = (
        ", ".join(chain_name(c, names) for c in report.chain_ids)
        if report.chain_ids is not None
        else "all chains"
    )
    body = [
        [chain_name(r.chain_id, names), r.market or "-", *_cells(r.figures)] for r in report.rows
    ]
    total = ["total", "", *_cells(report.total)]
    widths = [max(len(row[i]) for row in [list(COLUMNS), *body, total]) for i in range(10)]

    def line(cells: list[str]) -> str:
        padded = (
            c.ljust(w) if i < 2 else c.rjust(w)  # names left, figures right
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [f"Aave V3 liquidations and SVR revenue, {period}, {scope}", ""]
    out += [line(list(COLUMNS)), rule, *(line(r) for r in body), rule, line(total)]
    if any(r.market is None for r in report.rows):
        out += ["", "market -: recaptures that belong to no liquidation"]
    return "\n".join(out)
