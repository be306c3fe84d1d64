// The dashboard: every figure is read from the public GraphQL API at /graphql, the way a
// third-party frontend would. Filters live in the URL (shareable, back/forward work); the
// page polls, since the API has no subscriptions. Numbers are shown rounded for people and
// exact (as the API returns them) in title attributes.
"use strict";

(() => {
  const CHAINS = {
    ETHEREUM: { name: "Ethereum", color: "#4c6ef5" },
    POLYGON: { name: "Polygon", color: "#8247e5" },
    AVALANCHE: { name: "Avalanche", color: "#e03131" },
    ARBITRUM: { name: "Arbitrum", color: "#1c9fd8" },
    BASE: { name: "Base", color: "#2f9e44" },
  };
  const CHAIN_BY_ID = { 1: "ETHEREUM", 137: "POLYGON", 43114: "AVALANCHE", 42161: "ARBITRUM", 8453: "BASE" };
  const TOP_N = 10;
  const HOUR_MAX_DAYS = 14; // "auto" shows hours up to this span, days beyond
  const MAX_BUCKETS = 5000; // empty periods are drawn as zeros up to this many
  const DEFAULT_POLL_S = 10;
  const HOUR_MS = 3600e3;
  const DAY_MS = 86400e3;

  const META_QUERY = `query DashboardMeta($f: LiquidationFilter) {
  indexerStatus { chain chainId name headBlock indexedBlock finalizedBlock lagBlocks halted updatedAt lastError }
  markets: liquidationStats(groupBy: [MARKET]) { market }
  first: liquidations(filter: $f, first: 1, orderBy: BLOCK_TIME_ASC) { edges { node { blockTime } } }
  last: liquidations(filter: $f, first: 1, orderBy: BLOCK_TIME_DESC) { edges { node { id blockTime } } }
}`;

  const MAIN_QUERY = `query Dashboard($f: LiquidationFilter, $s: SvrRevenueFilter, $period: [StatsDimension!], $chainPeriod: [StatsDimension!], $top: Int!) {
  byChain: liquidationStats(filter: $f, groupBy: [CHAIN]) { chain chainId count debtUsd collateralUsd svrCount }
  total: liquidationStats(filter: $f) { count debtUsd collateralUsd svrCount }
  svrByChain: svrRevenue(filter: $s, groupBy: [CHAIN]) { chain chainId recapturedUsd aaveUsd chainlinkUsd }
  svrTotal: svrRevenue(filter: $s) { recapturedUsd aaveUsd chainlinkUsd }
  series: liquidationStats(filter: $f, groupBy: $chainPeriod) { period chain chainId count }
  seriesTotal: liquidationStats(filter: $f, groupBy: $period) { period count debtUsd }
  svrDaily: svrRevenue(filter: $s, groupBy: [CHAIN, DAY]) { period chain chainId recapturedUsd aaveUsd chainlinkUsd }
  top: liquidations(filter: $f, first: $top, orderBy: DEBT_USD_DESC) {
    edges { node {
      id chain chainId market blockTime blockNumber txHash liquidator
      debtToCover liquidatedCollateralAmount debtUsd collateralUsd
      debtAsset { symbol decimals address } collateralAsset { symbol decimals address }
      svr { recapturedUsd }
    } }
  }
  liquidators: liquidationStats(filter: $f, groupBy: [LIQUIDATOR]) { liquidator count debtUsd collateralUsd svrCount }
}`;

  // -- numbers for people, exact values for hover ------------------------------------------

  const COUNT = new Intl.NumberFormat("en-US");
  const COMPACT = new Intl.NumberFormat("en-US", { notation: "compact", maximumSignificantDigits: 3 });
  const SMALL = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 3 });
  const CENTS = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  /** 3,020,000,000 -> "3.02B", 512.345 -> "512.35", 0.001234 -> "0.00123". */
  function compact(n) {
    const a = Math.abs(n);
    const body = a >= 1000 ? COMPACT.format(a) : a >= 1 ? a.toFixed(2) : a === 0 ? "0" : SMALL.format(a);
    return (n < 0 ? "-" : "") + body;
  }

  function fmtUsd(value) {
    if (value === null || value === undefined) return "–";
    const n = Number(value);
    return (n < 0 ? "-$" : "$") + compact(Math.abs(n));
  }

  /** "1234567.5" -> "1,234,567.5": every digit the API gave, grouped for reading. */
  function groupDigits(value) {
    const s = String(value);
    const neg = s.startsWith("-");
    const [int, frac] = (neg ? s.slice(1) : s).split(".");
    const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (neg ? "-" : "") + grouped + (frac !== undefined ? "." + frac : "");
  }

  function exactUsd(value) {
    if (value === null || value === undefined) return "no price";
    const s = String(value);
    return s.startsWith("-") ? "-$" + groupDigits(s.slice(1)) : "$" + groupDigits(s);
  }

  /** A raw token amount (integer string) in whole tokens, exactly: ("30458403038", 6) -> "30458.403038". */
  function shiftDecimals(raw, decimals) {
    if (decimals === null || decimals === undefined || decimals <= 0) return String(raw);
    const digits = String(raw).padStart(decimals + 1, "0");
    const int = digits.slice(0, -decimals);
    const frac = digits.slice(-decimals).replace(/0+$/, "");
    return frac ? `${int}.${frac}` : int;
  }

  /** Orders two non-negative or negative decimal strings exactly (no float rounding). */
  function cmpDecimal(a, b) {
    const sa = String(a);
    const sb = String(b);
    const na = sa.startsWith("-");
    const nb = sb.startsWith("-");
    if (na !== nb) return na ? -1 : 1;
    const sign = na ? -1 : 1;
    const [ia, fa = ""] = (na ? sa.slice(1) : sa).split(".");
    const [ib, fb = ""] = (nb ? sb.slice(1) : sb).split(".");
    const ta = ia.replace(/^0+(?=\d)/, "");
    const tb = ib.replace(/^0+(?=\d)/, "");
    if (ta.length !== tb.length) return sign * (ta.length - tb.length);
    if (ta !== tb) return sign * (ta < tb ? -1 : 1);
    const width = Math.max(fa.length, fb.length);
    const pa = fa.padEnd(width, "0");
    const pb = fb.padEnd(width, "0");
    return pa === pb ? 0 : sign * (pa < pb ? -1 : 1);
  }

  function chainKey(row) {
    return row.chain || CHAIN_BY_ID[row.chainId] || `chain ${row.chainId}`;
  }

  function chainName(key) {
    return (CHAINS[key] && CHAINS[key].name) || key;
  }

  function chainColor(key, alpha) {
    const hex = (CHAINS[key] && CHAINS[key].color) || "#868e96";
    if (alpha === undefined) return hex;
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }

  function shortHex(value) {
    return value && value.length > 12 ? `${value.slice(0, 6)}…${value.slice(-4)}` : value || "–";
  }

  function isoDay(ms) {
    return new Date(ms).toISOString().slice(0, 10);
  }

  function timeLabel(iso) {
    return new Date(iso).toISOString().slice(0, 16).replace("T", " ");
  }

  function addDays(day, n) {
    return isoDay(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS);
  }

  // -- state in the URL --------------------------------------------------------------------

  function readState() {
    const q = new URLSearchParams(location.search);
    const list = (k) => (q.get(k) || "").split(",").map((s) => s.trim()).filter(Boolean);
    const day = (k) => (/^\d{4}-\d{2}-\d{2}$/.test(q.get(k) || "") ? q.get(k) : null);
    const by = q.get("by");
    const poll = q.has("poll") ? Number(q.get("poll")) : DEFAULT_POLL_S;
    return {
      chains: list("chains").map((s) => s.toUpperCase()),
      markets: list("markets"),
      from: day("from"),
      to: day("to"),
      by: by === "hour" || by === "day" ? by : "auto",
      poll: Number.isFinite(poll) && poll >= 0 ? poll : DEFAULT_POLL_S,
    };
  }

  function stateSearch(s) {
    const q = new URLSearchParams();
    if (s.from) q.set("from", s.from);
    if (s.to) q.set("to", s.to);
    if (s.chains.length) q.set("chains", s.chains.join(","));
    if (s.markets.length) q.set("markets", s.markets.join(","));
    if (s.by !== "auto") q.set("by", s.by);
    if (s.poll !== DEFAULT_POLL_S) q.set("poll", String(s.poll));
    const text = q.toString().replace(/%2C/g, ",");
    return text ? `?${text}` : "";
  }

  function liquidationFilter(s, withTime) {
    const f = {};
    if (s.chains.length) f.chains = s.chains;
    if (s.markets.length) f.markets = s.markets;
    if (withTime && s.from) f.timeFrom = `${s.from}T00:00:00Z`;
    if (withTime && s.to) f.timeTo = `${addDays(s.to, 1)}T00:00:00Z`;
    return f;
  }

  // -- the API -----------------------------------------------------------------------------

  async function graphql(query, variables) {
    const response = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ query, variables }),
    });
    let body;
    try {
      body = await response.json();
    } catch {
      throw new Error(`the API answered HTTP ${response.status}`);
    }
    if (body.errors && body.errors.length) {
      const error = new Error(body.errors.map((e) => e.message).join("; "));
      error.graphql = true;
      throw error;
    }
    if (!response.ok || !body.data) throw new Error(`the API answered HTTP ${response.status}`);
    return body.data;
  }

  // -- DOM helpers -------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, v);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function usdCell(value, field) {
    return el("td", { "data-field": field, title: exactUsd(value) }, fmtUsd(value));
  }

  function countCell(value, field) {
    return el("td", { "data-field": field, title: String(value) }, COUNT.format(value));
  }

  function emptyRow(tbody, columns, text) {
    const tr = el("tr", { class: "empty" });
    tr.append(el("td", { colspan: String(columns) }, text));
    tbody.append(tr);
  }

  // -- rendering ---------------------------------------------------------------------------

  function renderStatus(rows) {
    const list = $("status-list");
    list.replaceChildren();
    for (const r of rows) {
      const key = chainKey(r);
      let level = "ok";
      let text = r.lagBlocks === null ? "lag ?" : `lag ${COUNT.format(r.lagBlocks)}`;
      if (r.halted) {
        level = "bad";
        text = "halted";
      } else if (r.lastError) {
        level = "warn";
      } else if (r.lagBlocks === null || r.lagBlocks > 100) {
        level = "warn";
      }
      const detail = [
        `head ${r.headBlock ?? "?"}`,
        `indexed ${r.indexedBlock ?? "?"}`,
        `finalized ${r.finalizedBlock ?? "?"}`,
        `lag ${r.lagBlocks ?? "?"} blocks`,
        `updated ${r.updatedAt}`,
      ].join(" · ");
      const li = el("li", {
        class: level,
        "data-chain": key,
        title: r.lastError ? `${detail}\nlast error: ${r.lastError}` : detail,
      });
      li.append(el("span", { class: "name" }, chainName(key)), el("span", { class: "lag" }, text));
      list.append(li);
    }
  }

  function renderChoices(container, values, selected, label, onChange) {
    const wanted = new Set(selected);
    const all = [...new Set([...values, ...selected])];
    const current = [...container.querySelectorAll("input")].map((i) => i.value);
    if (current.join() !== all.join()) {
      container.replaceChildren();
      for (const v of all) {
        const input = el("input", { type: "checkbox", value: v, name: container.id });
        input.addEventListener("change", onChange);
        const l = el("label", { class: "choice" });
        l.append(input, document.createTextNode(" " + label(v)));
        container.append(l);
      }
    }
    for (const input of container.querySelectorAll("input")) input.checked = wanted.has(input.value);
  }

  function renderChains(data) {
    const svr = new Map(data.svrByChain.map((r) => [chainKey(r), r]));
    const keys = [...new Set([...data.byChain.map(chainKey), ...svr.keys()])];
    const stats = new Map(data.byChain.map((r) => [chainKey(r), r]));
    const zero = { count: 0, debtUsd: "0", collateralUsd: "0", svrCount: 0 };
    const noSvr = { recapturedUsd: "0", aaveUsd: "0", chainlinkUsd: "0" };
    const tbody = $("chains-table").tBodies[0];
    tbody.replaceChildren();
    const row = (tr, s, v) => {
      tr.append(
        countCell(s.count, "count"),
        usdCell(s.debtUsd, "debtUsd"),
        usdCell(s.collateralUsd, "collateralUsd"),
        countCell(s.svrCount, "svrCount"),
        usdCell(v.recapturedUsd, "recapturedUsd"),
        usdCell(v.aaveUsd, "aaveUsd"),
        usdCell(v.chainlinkUsd, "chainlinkUsd"),
      );
    };
    for (const key of keys) {
      const tr = el("tr", { "data-chain": key });
      const th = el("th", { scope: "row" });
      th.append(el("span", { class: "swatch", "data-chain": key }), document.createTextNode(chainName(key)));
      tr.append(th);
      row(tr, stats.get(key) || zero, svr.get(key) || noSvr);
      tbody.append(tr);
    }
    if (!keys.length) emptyRow(tbody, 8, "No liquidations match these filters.");
    const tfoot = $("chains-table").tFoot;
    tfoot.replaceChildren();
    const tr = el("tr", { "data-chain": "TOTAL" });
    tr.append(el("th", { scope: "row" }, "All"));
    row(tr, data.total[0] || zero, data.svrTotal[0] || noSvr);
    tfoot.append(tr);
  }

  function renderTop(data) {
    const tbody = $("top-table").tBodies[0];
    tbody.replaceChildren();
    for (const { node: l } of data.top.edges) {
      const tr = el("tr", { "data-id": l.id });
      const key = chainKey(l);
      const debt = shiftDecimals(l.debtToCover, l.debtAsset.decimals);
      const coll = shiftDecimals(l.liquidatedCollateralAmount, l.collateralAsset.decimals);
      const debtSym = l.debtAsset.symbol || shortHex(l.debtAsset.address);
      const collSym = l.collateralAsset.symbol || shortHex(l.collateralAsset.address);
      tr.append(
        el("td", { "data-field": "blockTime", title: `${l.blockTime} · block ${l.blockNumber}` }, timeLabel(l.blockTime)),
        el("td", { "data-field": "chain", title: `${chainName(key)} · market ${l.market}` }, `${chainName(key)} ${l.market}`),
        el("td", { "data-field": "debt", title: `${groupDigits(debt)} ${debtSym}` }, `${compact(Number(debt))} ${debtSym}`),
        usdCell(l.debtUsd, "debtUsd"),
        el("td", { "data-field": "collateral", title: `${groupDigits(coll)} ${collSym}` }, `${compact(Number(coll))} ${collSym}`),
        usdCell(l.collateralUsd, "collateralUsd"),
        l.svr
          ? usdCell(l.svr.recapturedUsd, "svr")
          : el("td", { "data-field": "svr", title: "not an SVR liquidation" }, "–"),
        el("td", { "data-field": "txHash", title: l.txHash, class: "mono" }, shortHex(l.txHash)),
      );
      tbody.append(tr);
    }
    if (!data.top.edges.length) emptyRow(tbody, 8, "No liquidations match these filters.");
  }

  function topLiquidators(rows) {
    return [...rows]
      .sort(
        (a, b) =>
          cmpDecimal(b.debtUsd, a.debtUsd) ||
          b.count - a.count ||
          (a.liquidator < b.liquidator ? -1 : a.liquidator > b.liquidator ? 1 : 0),
      )
      .slice(0, TOP_N);
  }

  function renderLiquidators(data) {
    const tbody = $("liquidators-table").tBodies[0];
    tbody.replaceChildren();
    const top = topLiquidators(data.liquidators);
    for (const r of top) {
      const tr = el("tr", { "data-liquidator": r.liquidator });
      tr.append(
        el("td", { "data-field": "liquidator", title: r.liquidator, class: "mono" }, shortHex(r.liquidator)),
        countCell(r.count, "count"),
        usdCell(r.debtUsd, "debtUsd"),
        usdCell(r.collateralUsd, "collateralUsd"),
        countCell(r.svrCount, "svrCount"),
      );
      tbody.append(tr);
    }
    if (!top.length) emptyRow(tbody, 5, "No liquidations match these filters.");
  }

  /** Every period from the first to the last (empty ones too, so the waves show). */
  function buckets(periods, step, from, to) {
    const times = periods.map((p) => Date.parse(p));
    if (!times.length && (from === null || to === null)) return [];
    const start = from !== null ? from : Math.min(...times);
    const end = to !== null ? to : Math.max(...times) + step;
    if (end <= start) return [];
    if ((end - start) / step > MAX_BUCKETS) return [...new Set(times)].sort((a, b) => a - b);
    const out = [];
    for (let t = start; t < end; t += step) out.push(t);
    return out;
  }

  function periodBounds(state, step) {
    const from = state.from ? Date.parse(`${state.from}T00:00:00Z`) : null;
    const to = state.to ? Date.parse(`${addDays(state.to, 1)}T00:00:00Z`) : null;
    return [from, to === null ? null : Math.ceil(to / step) * step];
  }

  function periodLabel(ms, unit) {
    const iso = new Date(ms).toISOString();
    return unit === "hour" ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(0, 10);
  }

  const charts = {};

  function baseOptions(yTitle) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12, boxHeight: 12 } },
        tooltip: {
          callbacks: {
            label: (ctx) => {
              const ds = ctx.dataset;
              const v = ctx.parsed.y;
              const text = ds.usd ? `$${CENTS.format(v)}` : COUNT.format(v);
              return `${ds.label}: ${text}`;
            },
          },
        },
      },
      scales: {
        x: { stacked: true, ticks: { autoSkip: true, maxRotation: 0 } },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: yTitle } },
      },
    };
  }

  function drawChart(id, config) {
    if (typeof window.Chart === "undefined") {
      $(id).parentElement.dataset.unavailable = "Charts need Chart.js: run make install.";
      return;
    }
    const existing = charts[id];
    if (existing) {
      existing.data = config.data;
      existing.options = config.options;
      existing.update("none");
    } else {
      charts[id] = new window.Chart($(id), config);
    }
  }

  function renderSeries(data, state, unit) {
    const step = unit === "hour" ? HOUR_MS : DAY_MS;
    const [from, to] = periodBounds(state, step);
    const times = buckets(data.seriesTotal.map((r) => r.period), step, from, to);
    const index = new Map(times.map((t, i) => [t, i]));
    const keys = [...new Set(data.series.map(chainKey))];
    const datasets = keys.map((key) => {
      const counts = times.map(() => 0);
      for (const r of data.series) {
        if (chainKey(r) === key) counts[index.get(Date.parse(r.period))] = r.count;
      }
      return { type: "bar", label: chainName(key), chain: key, data: counts, backgroundColor: chainColor(key), stack: "count", yAxisID: "y", order: 2 };
    });
    const usd = times.map(() => 0);
    const exact = times.map(() => "0");
    for (const r of data.seriesTotal) {
      const i = index.get(Date.parse(r.period));
      usd[i] = Number(r.debtUsd);
      exact[i] = r.debtUsd;
    }
    datasets.push({
      type: "line", label: "Debt USD", usd: true, exact, data: usd, yAxisID: "usd", order: 1,
      borderColor: "#212529", backgroundColor: "#212529", borderWidth: 1.5, pointRadius: 0, tension: 0.2,
    });
    const options = baseOptions("liquidations");
    options.scales.usd = {
      position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
      title: { display: true, text: "debt USD" }, ticks: { callback: (v) => fmtUsd(v) },
    };
    options.scales.y.ticks = { precision: 0, callback: (v) => COUNT.format(v) };
    $("series-unit").textContent = unit;
    drawChart("series-chart", { type: "bar", data: { labels: times.map((t) => periodLabel(t, unit)), datasets }, options });
  }

  function renderSvr(data, state) {
    const rows = data.svrDaily;
    const [from, to] = periodBounds(state, DAY_MS);
    const times = buckets(rows.map((r) => r.period), DAY_MS, from, to);
    const index = new Map(times.map((t, i) => [t, i]));
    const keys = [...new Set(rows.map(chainKey))];
    const datasets = [];
    for (const key of keys) {
      for (const [part, field, alpha] of [["Aave", "aaveUsd", 1], ["Chainlink", "chainlinkUsd", 0.45]]) {
        const values = times.map(() => 0);
        for (const r of rows) {
          if (chainKey(r) === key) values[index.get(Date.parse(r.period))] = Number(r[field]);
        }
        datasets.push({
          label: `${chainName(key)} · ${part}`, chain: key, part: field, usd: true, data: values,
          stack: key, backgroundColor: chainColor(key, alpha),
        });
      }
    }
    const options = baseOptions("recaptured USD");
    options.scales.y.ticks = { callback: (v) => fmtUsd(v) };
    drawChart("svr-chart", { type: "bar", data: { labels: times.map((t) => periodLabel(t, "day")), datasets }, options });
    const tbody = $("svr-table").tBodies[0];
    tbody.replaceChildren();
    for (const r of rows) {
      const key = chainKey(r);
      const tr = el("tr", { "data-chain": key, "data-day": r.period.slice(0, 10) });
      tr.append(
        el("td", { "data-field": "period", title: r.period }, r.period.slice(0, 10)),
        el("td", { "data-field": "chain" }, chainName(key)),
        usdCell(r.recapturedUsd, "recapturedUsd"),
        usdCell(r.aaveUsd, "aaveUsd"),
        usdCell(r.chainlinkUsd, "chainlinkUsd"),
      );
      tbody.append(tr);
    }
    if (!rows.length) emptyRow(tbody, 5, "No SVR revenue in this range.");
  }

  // -- the refresh loop --------------------------------------------------------------------

  let state = readState();
  let seq = 0;
  let timer = null;
  let lastMain = null;
  let baseline = null; // total count when these filters were first shown
  let refreshes = 0;

  function syncForm() {
    $("f-from").value = state.from || "";
    $("f-to").value = state.to || "";
    $("f-by").value = state.by;
    $("poll-note").textContent = state.poll > 0 ? `Data refreshes every ${state.poll} s.` : "Polling is off (poll=0).";
  }

  function formState() {
    // Before the first answer there are no boxes yet: keep what the URL asked for.
    const checked = (id, current) => {
      const boxes = [...$(id).querySelectorAll("input")];
      return boxes.length ? boxes.filter((i) => i.checked).map((i) => i.value) : current;
    };
    return {
      ...state,
      from: $("f-from").value || null,
      to: $("f-to").value || null,
      chains: checked("f-chains", state.chains),
      markets: checked("f-markets", state.markets),
      by: $("f-by").value,
    };
  }

  function apply(next) {
    state = next;
    const search = stateSearch(state);
    if (search !== location.search) history.pushState(null, "", location.pathname + search);
    baseline = null;
    syncForm();
    refresh();
  }

  function onFilterChange() {
    apply(formState());
  }

  function setLive(level, text) {
    $("live").dataset.level = level;
    $("live-text").textContent = text;
  }

  function showError(message) {
    const box = $("error");
    box.hidden = !message;
    box.textContent = message || "";
  }

  function chooseUnit(meta) {
    if (state.by !== "auto") return state.by;
    const first = meta.first.edges[0];
    const last = meta.last.edges[0];
    const start = state.from ? Date.parse(`${state.from}T00:00:00Z`) : first && Date.parse(first.node.blockTime);
    const end = state.to ? Date.parse(`${addDays(state.to, 1)}T00:00:00Z`) : last && Date.parse(last.node.blockTime);
    if (!start || !end) return "hour";
    return end - start <= HOUR_MAX_DAYS * DAY_MS ? "hour" : "day";
  }

  let latestDay = null;

  async function refresh() {
    clearTimeout(timer);
    const mine = ++seq;
    try {
      const meta = await graphql(META_QUERY, { f: liquidationFilter(state, false) });
      if (mine !== seq) return;
      renderStatus(meta.indexerStatus);
      const chains = meta.indexerStatus.map(chainKey).filter((k) => CHAINS[k]);
      renderChoices($("f-chains"), chains, state.chains, chainName, onFilterChange);
      const markets = meta.markets.map((r) => r.market).filter(Boolean).sort();
      renderChoices($("f-markets"), markets, state.markets, (m) => m, onFilterChange);
      const last = meta.last.edges[0];
      latestDay = last ? last.node.blockTime.slice(0, 10) : null;
      const unit = chooseUnit(meta);
      const period = unit === "hour" ? "HOUR" : "DAY";
      const f = liquidationFilter(state, true);
      const data = await graphql(MAIN_QUERY, { f, s: f, period: [period], chainPeriod: [period, "CHAIN"], top: TOP_N });
      if (mine !== seq) return;
      const key = JSON.stringify([unit, state, data]);
      if (key !== lastMain) {
        lastMain = key;
        renderChains(data);
        renderSeries(data, state, unit);
        renderSvr(data, state);
        renderTop(data);
        renderLiquidators(data);
      }
      const total = data.total[0] ? data.total[0].count : 0;
      if (baseline === null) baseline = total;
      const fresh = total - baseline;
      const badge = $("live-new");
      badge.hidden = fresh <= 0;
      badge.textContent = fresh > 0 ? `+${COUNT.format(fresh)} new` : "";
      badge.title = fresh > 0 ? `${COUNT.format(fresh)} liquidations indexed since these filters were shown` : "";
      showError(null);
      const now = new Date().toLocaleTimeString("en-GB");
      const latest = last ? ` · latest ${timeLabel(last.node.blockTime)}` : "";
      setLive(state.poll > 0 ? "live" : "paused", `${state.poll > 0 ? "Live" : "Paused"} · updated ${now}${latest}`);
      $("live").title = last ? `latest liquidation: ${last.node.id} at ${last.node.blockTime}` : "no liquidation yet";
      document.body.dataset.state = "ready";
    } catch (error) {
      if (mine !== seq) return;
      if (error.graphql) {
        showError(error.message);
        setLive("error", "Query refused");
      } else {
        setLive("error", `Offline: ${error.message}`);
      }
      document.body.dataset.state = "error";
    } finally {
      if (mine === seq) {
        document.body.dataset.refreshes = String(++refreshes);
        if (state.poll > 0) timer = setTimeout(refresh, state.poll * 1000);
      }
    }
  }

  function preset(kind) {
    if (kind === "all" || !latestDay) {
      apply({ ...formState(), from: null, to: null });
      return;
    }
    const days = Number(kind);
    apply({ ...formState(), from: addDays(latestDay, 1 - days), to: latestDay });
  }

  function start() {
    syncForm();
    for (const id of ["f-from", "f-to", "f-by"]) $(id).addEventListener("change", onFilterChange);
    for (const b of document.querySelectorAll("[data-preset]")) {
      b.addEventListener("click", () => preset(b.dataset.preset));
    }
    $("filters").addEventListener("submit", (e) => e.preventDefault());
    window.addEventListener("popstate", () => {
      state = readState();
      baseline = null;
      syncForm();
      refresh();
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && state.poll > 0) refresh();
    });
    refresh();
  }

  window.dashboard = { fmtUsd, compact, groupDigits, cmpDecimal, shiftDecimals, topLiquidators, charts };
  start();
})();
