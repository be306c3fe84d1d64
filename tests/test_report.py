"""`aave-indexer report`: its figures equal a GROUP BY of the base rows, the README's queries
give the same figures, and bad input is one line with exit 2 (3: no database server)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from indexer import report
from tests.test_api_support import api_client, build_dataset, gql, seed

ROOT = Path(__file__).resolve().parents[1]
DS = build_dataset(n_per_chain=200, seed=11)

# The report's figures straight from the base rows; $1..$3: chain ids, from, to (or NULL).
LIQUIDATIONS_SQL = """
SELECT chain_id, market, count(*) AS liquidations,
       coalesce(sum(debt_usd), 0) AS debt_usd, coalesce(sum(collateral_usd), 0) AS collateral_usd,
       count(*) FILTER (WHERE is_svr) AS svr_liquidations,
       coalesce(sum(debt_usd) FILTER (WHERE is_svr), 0) AS svr_volume_usd
FROM liquidations
WHERE ($1::integer[] IS NULL OR chain_id = ANY($1)) AND ($2::timestamptz IS NULL OR
      block_time >= $2) AND ($3::timestamptz IS NULL OR block_time < $3)
GROUP BY GROUPING SETS ((chain_id, market), ())
"""
RECAPTURES_SQL = """
SELECT chain_id, market, coalesce(sum(amount_usd), 0) AS recaptured_usd,
       coalesce(sum(aave_usd), 0) AS aave_usd, coalesce(sum(chainlink_usd), 0) AS chainlink_usd
FROM svr_recaptures
WHERE ($1::integer[] IS NULL OR chain_id = ANY($1)) AND ($2::timestamptz IS NULL OR
      block_time >= $2) AND ($3::timestamptz IS NULL OR block_time < $3)
GROUP BY GROUPING SETS ((chain_id, market), ())
"""
TOTAL = ("total",)
FIELDS = set(report.Figures.__dataclass_fields__)


async def expected(
    dsn: str, chain_ids: tuple[int, ...] | None, start: date | None, end: date | None
) -> dict[tuple[Any, ...], report.Figures]:
    """(chain id, market) -> figures, and TOTAL -> the totals (zero when nothing matched)."""
    bounds = [datetime.combine(d, datetime.min.time(), UTC) if d else None for d in (start, end)]
    args = (list(chain_ids) if chain_ids is not None else None, *bounds)
    conn = await asyncpg.connect(dsn)
    try:
        liquidations = await conn.fetch(LIQUIDATIONS_SQL, *args)
        recaptures = await conn.fetch(RECAPTURES_SQL, *args)
    finally:
        await conn.close()
    parts: dict[tuple[Any, ...], dict[str, Any]] = {TOTAL: {}}
    for r in [*liquidations, *recaptures]:
        # the grouping set () is the row whose chain_id is null (no row has a null chain)
        key = TOTAL if r["chain_id"] is None else (r["chain_id"], r["market"])
        parts.setdefault(key, {}).update({k: v for k, v in r.items() if k in FIELDS})
    return {k: report.Figures(**v) for k, v in parts.items()}


def got(result: report.Report) -> dict[tuple[Any, ...], report.Figures]:
    rows: dict[tuple[Any, ...], report.Figures] = {
        (r.chain_id, r.market): r.figures for r in result.rows
    }
    assert len(rows) == len(result.rows), "a (chain, market) twice"
    return {**rows, TOTAL: result.total}


@pytest.fixture(scope="module")
async def dsn(db_dsn: str) -> AsyncIterator[str]:
    await seed(db_dsn, DS)
    yield db_dsn


CASES: list[tuple[tuple[int, ...] | None, date | None, date | None]] = [
    (None, None, None),
    ((1,), None, None),
    ((1, 8453), date(2026, 1, 28), date(2026, 2, 2)),
    (None, date(2026, 1, 30), None),
    ((42161, 137), None, date(2026, 1, 27)),
    ((1,), date(2030, 1, 1), None),  # nothing: no rows, a total of zeros
]


@pytest.mark.parametrize(("chain_ids", "start", "end"), CASES)
async def test_report_equals_group_by_of_the_base_rows(
    dsn: str, chain_ids: tuple[int, ...] | None, start: date | None, end: date | None
) -> None:
    result = await report.collect(dsn, chain_ids, start, end)
    assert got(result) == await expected(dsn, chain_ids, start, end)
    keys = [(r.chain_id, r.market is None, r.market or "") for r in result.rows]
    assert keys == sorted(keys), "rows by chain id, then market, the market-less last"


async def test_report_has_several_markets_and_market_less_recaptures(dsn: str) -> None:
    result = await report.collect(dsn, (1,))
    assert [r.market for r in result.rows] == ["core", "etherfi", "prime", None]
    lone = result.rows[-1].figures
    assert lone.liquidations == 0 and lone.recaptured_usd == Decimal("12.5")
    total = result.total
    assert total.recaptured_usd == sum((r.figures.recaptured_usd for r in result.rows), Decimal(0))
    assert total.aave_usd + total.chainlink_usd == total.recaptured_usd


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AAVE_INDEXER_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "indexer.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


async def test_json_has_exact_decimal_strings(dsn: str) -> None:
    run = cli("--database-url", dsn, "report", "--json", "--chain", "ethereum", "--chain", "base",
              "--from", "2026-01-26", "--to", "2026-02-03")  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    want = await expected(dsn, (1, 8453), date(2026, 1, 26), date(2026, 2, 3))
    assert (out["from"], out["to"], out["chains"]) == ("2026-01-26", "2026-02-03",
                                                       ["ethereum", "base"])  # fmt: skip

    def exact(f: report.Figures) -> dict[str, Any]:
        return {k: format(v, "f") if isinstance(v, Decimal) else v for k, v in vars(f).items()}

    rows = {(r.pop("chain_id"), r.pop("market")): r for r in out["rows"]}
    assert {k: {x: y for x, y in v.items() if x != "chain"} for k, v in rows.items()} == {
        k: exact(f) for k, f in want.items() if k != TOTAL
    }
    assert {r["chain"] for r in rows.values()} == {"ethereum", "base"}
    assert out["total"] == exact(want[TOTAL])
    assert isinstance(out["total"]["debt_usd"], str) and "e" not in out["total"]["debt_usd"]
    assert out["graphql"]["query"] == report.REPORT_QUERY.strip()
    assert out["graphql"]["variables"]["f"] == {
        "chainIds": [1, 8453],
        "timeFrom": "2026-01-26T00:00:00Z",
        "timeTo": "2026-02-03T00:00:00Z",
    }


async def test_table_shows_every_row_and_the_total(dsn: str) -> None:
    run = cli("--database-url", dsn, "report")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "Aave V3 liquidations and SVR revenue, all time, all chains"
    header = lines[2].split()
    assert header[:3] == ["chain", "market", "liquidations"] and header[-2:] == ["Chainlink",
                                                                               "share"]  # fmt: skip
    want = await expected(dsn, None, None, None)
    total = next(line for line in lines if line.startswith("total")).split()
    t = want[TOTAL]
    assert total[1:4] == [f"{t.liquidations:,}", f"{t.debt_usd:,.2f}", f"{t.collateral_usd:,.2f}"]
    assert total[-1] == f"{t.chainlink_usd:,.2f}"
    body = [
        line.split() for line in lines[4:] if re.match(r"^[a-z]+ +(core|prime|etherfi|-) ", line)
    ]
    assert {(b[0], b[1]) for b in body} == {
        (report.chain_name(k[0], {}), k[1] or "-") for k in want if k != TOTAL
    }
    assert lines[-1] == "market -: recaptures that belong to no liquidation"


def _figure_queries() -> list[str]:
    """The GraphQL blocks of the README's "Reproducing the published figures" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Reproducing the published figures", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```graphql\n(.*?)```", section, re.S)


async def test_readme_queries_give_the_report_figures(dsn: str) -> None:
    """Each figure of `report` is one of the README's queries, run against the API."""
    queries = _figure_queries()
    assert len(queries) == 2
    result = await report.collect(dsn)
    by_market = {(r.chain_id, r.market): r.figures for r in result.rows}
    async with api_client(dsn) as client:
        answers: dict[str, Any] = {}
        for query in queries:
            body = await gql(client, query)
            assert not body.get("errors"), body
            answers.update(body["data"])
    fields = {
        "count": "liquidations",
        "debtUsd": "debt_usd",
        "collateralUsd": "collateral_usd",
        "svrCount": "svr_liquidations",
        "svrDebtUsd": "svr_volume_usd",
        "recapturedUsd": "recaptured_usd",
        "aaveUsd": "aave_usd",
        "chainlinkUsd": "chainlink_usd",
    }
    covered, totals = set(), 0
    for rows in answers.values():
        for row in rows:
            figures = by_market[(row["chainId"], row["market"])] if "market" in row else None
            for name, value in row.items():
                if name in fields:
                    want = getattr(figures or result.total, fields[name])
                    assert type(want)(value) == want, (row, name)
            if figures is None:
                totals += 1
            else:
                covered.add((row["chainId"], row["market"]))
    assert covered == set(by_market) and totals == 2  # every row's figures, and the totals


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--from", "yesterday"], "argument --from: not a date (YYYY-MM-DD)"),
        (["report", "--to", "2026-02-30"], "argument --to: not a date (YYYY-MM-DD)"),
        (["report", "--from", "2026-02-01", "--to", "2026-01-01"], "--to must be after --from"),
        (["report", "--from", "2026-02-01", "--to", "2026-02-01"], "--to must be after --from"),
        (["report", "--chain", "solana"], "unknown chain 'solana'"),
        (["report", "--json", "extra"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    run = cli("--database-url", "postgresql://postgres@127.0.0.1:1/none", *args)
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr


async def test_no_database_is_one_line(db_dsn: str) -> None:
    base = db_dsn.rpartition("/")[0]
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        await conn.execute('DROP DATABASE IF EXISTS "aave_idx_report_empty"')
        await conn.execute('CREATE DATABASE "aave_idx_report_empty"')
    finally:
        await conn.close()
    try:
        for dsn, code, message in (
            (f"{base}/aave_idx_report_none", 2, 'database "aave_idx_report_none" does not exist'),
            (f"{base}/aave_idx_report_empty", 2, "no schema yet; run `aave-indexer migrate`"),
            ("postgresql://postgres@127.0.0.1:1/none", 3, "cannot reach the database"),
        ):
            run = cli("--database-url", dsn, "report")
            assert run.returncode == code, run.stderr
            assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
            assert "Traceback" not in run.stderr and run.stdout == ""
    finally:
        conn = await asyncpg.connect(f"{base}/postgres")
        try:
            await conn.execute('DROP DATABASE IF EXISTS "aave_idx_report_empty" WITH (FORCE)')
        finally:
            await conn.close()


def test_help() -> None:
    run = cli("report", "--help")
    assert run.returncode == 0 and "--from" in run.stdout and "exclusive" in run.stdout


async def test_the_report_reads_through_the_api(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its numbers come from the API's queries (a change there shows here)."""
    from api import queries

    calls: list[str] = []
    for name in ("liquidation_stats", "svr_revenue"):
        original = getattr(queries, name)

        def spy(*args: Any, _original: Any = original, _name: str = name) -> Any:
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(queries, name, spy)
    await report.collect(dsn)
    assert sorted(calls) == ["liquidation_stats"] * 2 + ["svr_revenue"] * 2


def test_variables_are_midnights() -> None:
    assert report.variables(None, date(2026, 2, 1), None) == {
        "f": {"timeFrom": "2026-02-01T00:00:00Z"},
        "s": {"timeFrom": "2026-02-01T00:00:00Z"},
    }
