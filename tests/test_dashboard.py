"""The dashboard at `/` in a real headless Chromium (the npm package @sparticuz/chromium,
driven by Playwright over the DevTools protocol) against a devnet-indexed database: every
figure on the page equals the GraphQL answer it comes from, the filters change the URL and
the figures, a new liquidation shows without a reload, nothing is loaded from elsewhere and
the console stays clean. `make screenshots` writes the two screenshots in docs/ from here."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from api.dashboard import CHART_JS_URL, chart_js_path
from indexer.config import load_config
from tests.conftest import ROOT, drop_database, free_port, make_database
from tests.test_api_support import build_dataset, seed
from tests.test_pipeline import backfill_all

WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}
CHAIN_NAMES = {
    "ETHEREUM": "Ethereum",
    "POLYGON": "Polygon",
    "AVALANCHE": "Avalanche",
    "ARBITRUM": "Arbitrum",
    "BASE": "Base",
}
NONE = "\u2013"  # the page's dash for a value it does not have
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# -- the browser ---------------------------------------------------------------------------


def chromium_executable() -> str:
    """The Chromium build shipped in the npm package (unpacked to /tmp on first use)."""
    script = "require('@sparticuz/chromium').executablePath().then((p) => console.log(p))"
    try:
        out = subprocess.run(
            ["node", "-e", script], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
    except FileNotFoundError:
        pytest.fail("node is not installed: the dashboard test needs Node.js (README)")
    if out.returncode != 0:
        pytest.fail(f"@sparticuz/chromium is not installed (run `make install`): {out.stderr}")
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = await asyncio.to_thread(chromium_executable)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
            timeout=60_000,
        )
        try:
            yield chromium
        finally:
            await chromium.close()


class Tab:
    """A page and everything it said: console errors, page errors, every URL it loaded."""

    def __init__(self, page: Page, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        self.urls: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("request", lambda request: self.urls.append(request.url))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"console {message.type}: {message.text}")

    async def refreshes(self) -> int:
        return int(await self.page.evaluate("Number(document.body.dataset.refreshes || 0)"))

    async def settled(self, after: int) -> None:
        """Wait for a refresh later than `after` that rendered without error."""
        await self.page.wait_for_function(
            "(after) => Number(document.body.dataset.refreshes || 0) > after",
            arg=after,
            timeout=15_000,
        )
        assert await self.page.evaluate("document.body.dataset.state") == "ready", (
            await self.page.inner_text("#error")
        )

    def query(self) -> dict[str, str]:
        return dict(re.findall(r"[?&]([^=&]+)=([^&]*)", self.page.url))

    def check_clean(self) -> None:
        assert self.errors == []
        foreign = [u for u in self.urls if not u.startswith((self.base, "data:"))]
        assert foreign == [], "the page loaded something from elsewhere"


OpenTab = Callable[..., Awaitable[Tab]]


def _open_tab(browser: Browser, base: str) -> Any:
    """A factory of Tabs on `base`, each closed and checked clean at the end of the test."""
    tabs: list[tuple[Any, Tab]] = []

    async def open_tab(
        path: str = "/?poll=0", viewport: dict[str, int] = WIDE, wait: bool = True
    ) -> Tab:
        context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        tab = Tab(await context.new_page(), base)
        tabs.append((context, tab))
        await tab.page.goto(base + path)
        if wait:
            await tab.settled(0)
        return tab

    return open_tab, tabs


# -- the server and the data ---------------------------------------------------------------


class Server:
    """`api.server.run` in a subprocess: the dashboard as `aave-indexer serve` serves it."""

    def __init__(self, dsn: str, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        code = f"from api.server import run; run('127.0.0.1', {self.port}, {dsn!r}, [])"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=self._log, stderr=self._log
        )
        self.http = httpx.Client(base_url=self.base, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.http.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the API did not start: {log.read_text()}")
            time.sleep(0.1)

    def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        body = self.http.post("/graphql", json={"query": query, "variables": variables}).json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@pytest.fixture(scope="module")
def devnet_db(devnet: tuple[Path, dict[str, Any]], pg_template: str) -> Iterator[str]:
    workdir, _ = devnet
    dsn = make_database(pg_template)
    asyncio.run(backfill_all(load_config(workdir / ".devnet" / "devnet.toml"), dsn))
    yield dsn
    drop_database(dsn)


@pytest.fixture(scope="module")
def server(devnet_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(devnet_db, tmp_path_factory.mktemp("dashboard") / "api.log")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def synthetic_server(
    pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The API tests' data set: twelve days, three markets, SVR revenue on three chains and
    liquidations without a price, so that every part of the page has figures to check."""
    dsn = make_database(pg_template)
    asyncio.run(seed(dsn, build_dataset(n_per_chain=120, seed=5)))
    s = Server(dsn, tmp_path_factory.mktemp("dashboard-synthetic") / "api.log")
    yield s
    s.stop()
    drop_database(dsn)


@pytest.fixture
async def open_tab(browser: Browser, server: Server) -> AsyncIterator[OpenTab]:
    factory, tabs = _open_tab(browser, server.base)
    yield factory
    for context, tab in tabs:
        await context.close()
        tab.check_clean()


# -- what the API says, asked independently of the page --------------------------------------

EXPECTED_QUERY = """
query Expected($f: LiquidationFilter, $s: SvrRevenueFilter, $by: [StatsDimension!],
               $byChain: [StatsDimension!]) {
  byChain: liquidationStats(filter: $f, groupBy: [CHAIN]) {
    chain count debtUsd collateralUsd svrCount }
  total: liquidationStats(filter: $f) { count debtUsd collateralUsd svrCount }
  svrByChain: svrRevenue(filter: $s, groupBy: [CHAIN]) { chain recapturedUsd aaveUsd chainlinkUsd }
  svrTotal: svrRevenue(filter: $s) { recapturedUsd aaveUsd chainlinkUsd }
  svrDaily: svrRevenue(filter: $s, groupBy: [DAY, CHAIN]) {
    period chain recapturedUsd aaveUsd chainlinkUsd }
  series: liquidationStats(filter: $f, groupBy: $byChain) { period chain count }
  seriesTotal: liquidationStats(filter: $f, groupBy: $by) { period count debtUsd }
  top: liquidations(filter: $f, orderBy: DEBT_USD_DESC, first: 10) {
    edges { node { id debtUsd collateralUsd txHash svr { recapturedUsd } } } }
  liquidators: liquidationStats(filter: $f, groupBy: [LIQUIDATOR]) {
    liquidator count debtUsd collateralUsd svrCount }
  indexerStatus { chain lagBlocks }
}
"""


def expected(
    server: Server,
    *,
    chains: list[str] | None = None,
    markets: list[str] | None = None,
    days: tuple[str, str] | None = None,
    unit: str = "HOUR",
) -> dict[str, Any]:
    """The figures for these filters (`days`: first and last UTC day, both included), and
    under "bounds" the time range the page's charts must then span."""
    f: dict[str, Any] = {"chains": chains, "markets": markets}
    bounds = None
    if days:
        bounds = (utc_day(days[0]), utc_day(days[1]) + DAY)
        f.update(timeFrom=bounds[0].isoformat(), timeTo=bounds[1].isoformat())
    data = server.gql(EXPECTED_QUERY, f=f, s=f, by=[unit], byChain=[unit, "CHAIN"])
    return {**data, "bounds": bounds}


def utc_day(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def exact_usd(value: str | None) -> str:
    """The title the page must show: the API's digits, grouped, nothing rounded."""
    if value is None:
        return "no price"
    sign, digits = ("-", value[1:]) if value.startswith("-") else ("", value)
    whole, _, frac = digits.partition(".")
    return f"{sign}${int(whole):,}" + (f".{frac}" if frac else "")


SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def shown_usd(text: str) -> Decimal:
    """'$3.02B' -> 3020000000, '-$512.34' -> -512.34."""
    match = re.fullmatch(r"(-?)\$([0-9.]+)([KMBT]?)", text)
    assert match, f"not a USD figure: {text!r}"
    value = Decimal(match[2]) * SUFFIX[match[3]]
    return -value if match[1] else value


def assert_usd(cell: dict[str, str], value: str | None) -> None:
    """Exact on hover, and the shown figure is that value to three significant digits."""
    assert cell["title"] == exact_usd(value)
    if value is None:
        assert cell["text"] == NONE
        return
    exact = Decimal(value)
    shown = shown_usd(cell["text"])
    assert abs(shown - exact) <= abs(exact) * Decimal("0.005") + Decimal("0.005"), (cell, value)


def assert_count(cell: dict[str, str], value: int) -> None:
    assert cell["text"] == f"{value:,}" and cell["title"] == str(value)


ROWS_JS = """(selector) => [...document.querySelectorAll(selector)].map((tr) => ({
  attrs: {...tr.dataset},
  cells: Object.fromEntries([...tr.querySelectorAll('[data-field]')].map(
    (td) => [td.dataset.field, {text: td.textContent, title: td.title}]))
}))"""

CHART_JS = """(id) => {
  const chart = Chart.getChart(id);
  return {labels: chart.data.labels, datasets: chart.data.datasets.map((d) => ({
    label: d.label, chain: d.chain || null, part: d.part || null, usd: !!d.usd,
    exact: d.exact || null, data: d.data}))};
}"""


async def rows(page: Page, selector: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await page.evaluate(ROWS_JS, selector)
    return result


def period_range(
    periods: list[str], step: timedelta, bounds: tuple[datetime, datetime] | None
) -> list[datetime]:
    """Every period the chart must show: the filter's range, else the data's first to last."""
    times = sorted({datetime.fromisoformat(p) for p in periods})
    if bounds:
        start, end = bounds
    elif times:
        start, end = times[0], times[-1] + step
    else:
        return []
    out, t = [], start
    while t < end:
        out.append(t)
        t += step
    return out


def label(t: datetime, unit: str) -> str:
    return t.strftime("%m-%d %H:%M") if unit == "HOUR" else t.strftime("%Y-%m-%d")


async def check_figures(page: Page, want: dict[str, Any], unit: str = "HOUR") -> None:
    """Every figure of the page against the API's answer `want`."""
    # By chain, and the total row.
    svr = {r["chain"]: r for r in want["svrByChain"]}
    table = {
        r["attrs"]["chain"]: r["cells"] for r in await rows(page, "#chains-table tr[data-chain]")
    }
    assert set(table) == {r["chain"] for r in want["byChain"]} | set(svr) | {"TOTAL"}
    zero = {"recapturedUsd": "0", "aaveUsd": "0", "chainlinkUsd": "0"}
    for stats, split in [
        *((r, svr.get(r["chain"], zero)) for r in want["byChain"]),
        ({**want["total"][0], "chain": "TOTAL"}, want["svrTotal"][0]),
    ]:
        cells = table[stats["chain"]]
        assert_count(cells["count"], stats["count"])
        assert_count(cells["svrCount"], stats["svrCount"])
        assert_usd(cells["debtUsd"], stats["debtUsd"])
        assert_usd(cells["collateralUsd"], stats["collateralUsd"])
        for field in ("recapturedUsd", "aaveUsd", "chainlinkUsd"):
            assert_usd(cells[field], split[field])

    # The time series: every period from the first to the last, empty ones as zeros.
    step = HOUR if unit == "HOUR" else DAY
    chart = await page.evaluate(CHART_JS, "series-chart")
    times = period_range([r["period"] for r in want["seriesTotal"]], step, want["bounds"])
    assert chart["labels"] == [label(t, unit) for t in times]
    index = {t: i for i, t in enumerate(times)}
    bars = {d["chain"]: d["data"] for d in chart["datasets"] if not d["usd"]}
    assert set(bars) == {r["chain"] for r in want["series"]}
    expected_bars = {chain: [0] * len(times) for chain in bars}
    for r in want["series"]:
        expected_bars[r["chain"]][index[datetime.fromisoformat(r["period"])]] = r["count"]
    assert bars == expected_bars
    (line,) = [d for d in chart["datasets"] if d["usd"]]
    exact = ["0"] * len(times)
    for r in want["seriesTotal"]:
        exact[index[datetime.fromisoformat(r["period"])]] = r["debtUsd"]
    assert line["exact"] == exact and line["data"] == [float(v) for v in exact]

    # SVR recaptured per chain and day, split: the chart and its table.
    chart = await page.evaluate(CHART_JS, "svr-chart")
    days = period_range([r["period"] for r in want["svrDaily"]], DAY, want["bounds"])
    assert chart["labels"] == [label(t, "DAY") for t in days]
    got = {(d["chain"], d["part"]): d["data"] for d in chart["datasets"]}
    chains = {r["chain"] for r in want["svrDaily"]}
    assert set(got) == {(c, p) for c in chains for p in ("aaveUsd", "chainlinkUsd")}
    for (chain, part), values in got.items():
        by_day = {
            datetime.fromisoformat(r["period"]): float(r[part])
            for r in want["svrDaily"]
            if r["chain"] == chain
        }
        assert values == [by_day.get(t, 0.0) for t in days], (chain, part)
    svr_rows = await rows(page, "#svr-table tr[data-day]")
    assert len(svr_rows) == len(want["svrDaily"])
    for got_row, r in zip(svr_rows, want["svrDaily"], strict=True):
        assert got_row["attrs"] == {"chain": r["chain"], "day": r["period"][:10]}
        for field in ("recapturedUsd", "aaveUsd", "chainlinkUsd"):
            assert_usd(got_row["cells"][field], r[field])

    # The largest liquidations, in the API's order.
    top = await rows(page, "#top-table tr[data-id]")
    nodes = [e["node"] for e in want["top"]["edges"]]
    assert [r["attrs"]["id"] for r in top] == [n["id"] for n in nodes]
    for got_row, n in zip(top, nodes, strict=True):
        assert_usd(got_row["cells"]["debtUsd"], n["debtUsd"])
        assert_usd(got_row["cells"]["collateralUsd"], n["collateralUsd"])
        assert got_row["cells"]["txHash"]["title"] == n["txHash"]
        if n["svr"]:
            assert_usd(got_row["cells"]["svr"], n["svr"]["recapturedUsd"])
        else:
            assert got_row["cells"]["svr"]["text"] == NONE

    # The top liquidators by debt USD (ties: more liquidations, then the address).
    ranked = sorted(
        want["liquidators"], key=lambda r: (-Decimal(r["debtUsd"]), -r["count"], r["liquidator"])
    )[:10]
    liquidators = await rows(page, "#liquidators-table tr[data-liquidator]")
    assert [r["attrs"]["liquidator"] for r in liquidators] == [r["liquidator"] for r in ranked]
    for got_row, r in zip(liquidators, ranked, strict=True):
        assert got_row["cells"]["liquidator"]["title"] == r["liquidator"]
        assert_count(got_row["cells"]["count"], r["count"])
        assert_count(got_row["cells"]["svrCount"], r["svrCount"])
        assert_usd(got_row["cells"]["debtUsd"], r["debtUsd"])
        assert_usd(got_row["cells"]["collateralUsd"], r["collateralUsd"])

    # The indexer's lag per chain, in the corner.
    status = await page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#status-list li')].map(
             (li) => [li.dataset.chain, li.querySelector('.lag').textContent]))"""
    )
    assert status == {r["chain"]: f"lag {r['lagBlocks']:,}" for r in want["indexerStatus"]}


# -- the tests -----------------------------------------------------------------------------


def test_page_and_chart_library_are_served(server: Server) -> None:
    page = server.http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert ref.startswith(("/", "data:")), f"{ref}: not served by the API itself"
        if ref.startswith("/static/"):
            assert server.http.get(ref).status_code == 200, ref
    assert CHART_JS_URL in page.text
    # Chart.js is the version package-lock.json pins, found by the installed package.
    lock = json.loads((ROOT / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/chart.js"]["version"]
    path = chart_js_path()
    assert path is not None
    assert f"Chart.js v{version}" in path.read_text()[:200]
    assert server.http.get(CHART_JS_URL).text.startswith("/*!\n * Chart.js v" + version)
    assert "see /graphql" not in page.text and server.http.get("/graphql").status_code in (
        200,
        400,
    )


async def test_every_figure_is_the_api_answer(open_tab: OpenTab, server: Server) -> None:
    tab = await open_tab("/?poll=0")
    want = expected(server)
    assert want["total"][0]["count"] > 100
    await check_figures(tab.page, want)
    # The waves of the crash show: several runs of busy hours with empty hours between.
    busy = [
        c > 0 for c in (await tab.page.evaluate(CHART_JS, "series-chart"))["datasets"][0]["data"]
    ]
    runs = sum(1 for i, b in enumerate(busy) if b and (i == 0 or not busy[i - 1]))
    assert runs >= 5 and not all(busy)
    # Formatting for people: compact figures, grouped counts, exact on hover.
    total = {
        r["attrs"]["chain"]: r["cells"] for r in await rows(tab.page, "#chains-table tfoot tr")
    }
    assert re.fullmatch(r"\$\d{1,3}(\.\d{1,2})?[KMB]", total["TOTAL"]["debtUsd"]["text"])
    assert re.fullmatch(r"\d{1,3}(,\d{3})+", total["TOTAL"]["count"]["text"])


async def test_svr_and_unpriced_figures(browser: Browser, synthetic_server: Server) -> None:
    """The data set with SVR revenue on three chains, three markets and liquidations without
    a price: the same comparison, by day (twelve days), also filtered to one market."""
    factory, tabs = _open_tab(browser, synthetic_server.base)
    try:
        tab = await factory("/?poll=0&by=day")
        want = expected(synthetic_server, unit="DAY")
        assert (
            len({r["chain"] for r in want["svrDaily"]}) == 3
            and Decimal(want["svrTotal"][0]["recapturedUsd"]) > 0
        )
        await check_figures(tab.page, want, unit="DAY")
        tab = await factory("/?poll=0&by=day&markets=prime")
        await check_figures(
            tab.page, expected(synthetic_server, markets=["prime"], unit="DAY"), "DAY"
        )
    finally:
        for context, tab in tabs:
            await context.close()
            tab.check_clean()


async def test_filters_change_the_url_and_the_figures(open_tab: OpenTab, server: Server) -> None:
    tab = await open_tab("/?poll=0")
    page = tab.page

    async def change(action: Awaitable[Any]) -> None:
        before = await tab.refreshes()
        await action
        await tab.settled(before)

    await change(page.check("#f-chains input[value=ETHEREUM]"))
    assert tab.query() == {"poll": "0", "chains": "ETHEREUM"}
    await check_figures(page, expected(server, chains=["ETHEREUM"]))

    await change(page.check("#f-chains input[value=BASE]"))
    assert tab.query()["chains"] == "ETHEREUM,BASE"
    await check_figures(page, expected(server, chains=["ETHEREUM", "BASE"]))

    await change(page.check("#f-markets input[value=prime]"))
    assert tab.query()["markets"] == "prime"
    prime = expected(server, chains=["ETHEREUM", "BASE"], markets=["prime"])
    assert [r["chain"] for r in prime["byChain"]] == ["ETHEREUM"]
    await check_figures(page, prime)

    # The last day with liquidations of these chains and markets, by the preset; then the
    # day before by typing dates.
    last_day = max(r["period"] for r in prime["seriesTotal"])[:10]
    await change(page.click("[data-preset='1']"))
    assert tab.query()["from"] == tab.query()["to"] == last_day
    one_day = expected(
        server, chains=["ETHEREUM", "BASE"], markets=["prime"], days=(last_day, last_day)
    )
    assert 0 < one_day["total"][0]["count"] < prime["total"][0]["count"]
    await check_figures(page, one_day)

    day_before = (datetime.fromisoformat(last_day) - DAY).date().isoformat()
    await change(page.fill("#f-from", day_before))
    await change(page.fill("#f-to", day_before))
    assert (tab.query()["from"], tab.query()["to"]) == (day_before, day_before)
    await check_figures(
        page,
        expected(server, chains=["ETHEREUM", "BASE"], markets=["prime"], days=(day_before,) * 2),
    )

    await change(page.select_option("#f-by", "day"))
    assert tab.query()["by"] == "day"
    await check_figures(
        page,
        expected(
            server,
            chains=["ETHEREUM", "BASE"],
            markets=["prime"],
            days=(day_before,) * 2,
            unit="DAY",
        ),
        unit="DAY",
    )
    assert await page.inner_text("#series-unit") == "day"

    # Back goes to the previous filters, figures included.
    await change(page.go_back())
    assert "by" not in tab.query() and tab.query()["from"] == day_before
    await check_figures(
        page,
        expected(server, chains=["ETHEREUM", "BASE"], markets=["prime"], days=(day_before,) * 2),
    )

    # A shared URL opens with its filters set in the form.
    tab = await open_tab(f"/?chains=arbitrum&markets=core&from={day_before}&to={last_day}&poll=0")
    assert await tab.page.is_checked("#f-chains input[value=ARBITRUM]")
    assert not await tab.page.is_checked("#f-chains input[value=ETHEREUM]")
    assert await tab.page.is_checked("#f-markets input[value=core]")
    assert await tab.page.input_value("#f-from") == day_before
    await check_figures(
        tab.page,
        expected(server, chains=["ARBITRUM"], markets=["core"], days=(day_before, last_day)),
    )

    await change(tab.page.click("[data-preset='all']"))
    assert "from" not in tab.query() and "to" not in tab.query()
    await check_figures(tab.page, expected(server, chains=["ARBITRUM"], markets=["core"]))


async def test_a_new_liquidation_appears_without_a_reload(
    open_tab: OpenTab, server: Server, devnet_db: str
) -> None:
    """A row indexed while the page is open (larger than any, an hour after the last) shows
    within a poll: counts, the series, the top table, the live badge; the page never
    reloads (a marker set in its window survives)."""
    tab = await open_tab("/?poll=1")
    page = tab.page
    assert (await page.inner_text("#live-text")).startswith("Live")
    before = expected(server)
    await page.evaluate("window.__sameDocument = true")
    conn = await asyncpg.connect(devnet_db)
    try:
        row = dict(
            await conn.fetchrow(
                "SELECT * FROM liquidations WHERE chain_id = 8453 ORDER BY block_time DESC LIMIT 1"
            )
        )
        latest = await conn.fetchval("SELECT max(block_time) FROM liquidations")
        top = await conn.fetchval("SELECT max(debt_usd) FROM liquidations")
        row.update(
            tx_hash="0x" + "d" * 64,
            log_index=0,
            block_number=row["block_number"] + 1,
            block_time=latest + HOUR,
            debt_usd=top * 2,
            is_svr=False,
        )
        for key in [k for k in row if k.startswith("svr_")]:
            row[key] = None
        columns = ", ".join(row)
        params = ", ".join(f"${i}" for i in range(1, len(row) + 1))
        started = time.monotonic()
        async with conn.transaction():  # as the writer does: the rows and the checkpoint
            await conn.execute(
                f"INSERT INTO liquidations ({columns}) VALUES ({params})", *row.values()
            )
            await conn.execute(
                "UPDATE checkpoints SET block_number = block_number + 1"
                " WHERE chain_id = 8453 AND stream = 'main'"
            )
        new_id = f"8453:{row['tx_hash']}:0"
        await page.wait_for_function(
            "(id) => document.querySelector('#top-table tbody tr')?.dataset.id === id",
            arg=new_id,
            timeout=15_000,
        )
        waited = time.monotonic() - started
        await page.wait_for_timeout(50)
        after = expected(server)
        assert after["total"][0]["count"] == before["total"][0]["count"] + 1
        await check_figures(page, after)
        assert await page.inner_text("#live-new") == "+1 new"
        assert await page.evaluate("window.__sameDocument === true")
        assert waited < 5, f"the new liquidation took {waited:.1f} s to show"
    finally:
        await conn.execute("DELETE FROM liquidations WHERE tx_hash = $1", "0x" + "d" * 64)
        await conn.close()


async def test_refused_queries_and_an_unreachable_api_are_shown(open_tab: OpenTab) -> None:
    """A filter the API refuses is shown with its message; when the API stops answering
    the indicator says so, and it is live again once the API is back."""
    refused = await open_tab("/?chains=NOPE&poll=0", wait=False)
    page = refused.page
    await page.wait_for_function("() => document.body.dataset.state === 'error'")
    assert "NOPE" in await page.inner_text("#error")
    assert await page.get_attribute("#live", "data-level") == "error"
    assert await page.inner_text("#live-text") == "Query refused"

    tab = await open_tab("/?poll=1")
    page = tab.page
    await page.route("**/graphql", lambda route: route.abort())
    await page.wait_for_function("() => document.body.dataset.state === 'error'", timeout=15_000)
    assert (await page.inner_text("#live-text")).startswith("Offline")
    assert await page.is_visible("#chains-table tfoot tr")  # the last figures stay
    await page.unroute("**/graphql")
    await page.wait_for_function("() => document.body.dataset.state === 'ready'", timeout=15_000)
    assert (await page.inner_text("#live-text")).startswith("Live")
    # The aborted requests are the only complaints.
    assert tab.errors and all("ERR_FAILED" in e for e in tab.errors)
    tab.errors.clear()


async def test_screenshots_wide_and_narrow(open_tab: OpenTab, tmp_path: Path) -> None:
    """The page at two sizes; in the narrow one nothing is wider than the window (tables
    scroll inside their cards). DASHBOARD_SCREENSHOTS=DIR keeps them (`make screenshots`)."""
    keep = os.environ.get("DASHBOARD_SCREENSHOTS")
    out = (ROOT / keep) if keep else tmp_path
    for name, viewport in (("wide", WIDE), ("narrow", NARROW)):
        tab = await open_tab("/", viewport=viewport)
        page = tab.page
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name}: the page is {overflow}px wider than the window"
        for canvas in ("#series-chart", "#svr-chart"):
            box = await page.locator(canvas).bounding_box()
            assert box and box["width"] > 200 and box["height"] > 150
            assert box["width"] <= viewport["width"]
        await page.wait_for_timeout(100)
        path = out / f"dashboard-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 20_000
