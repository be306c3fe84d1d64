"""The results table printed by bench.run (and pasted into bench/README.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _ingest(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| events | events/s | Python us/event | PostgreSQL us/event | load before/after |"]
    out.append("|---|---|---|---|---|")
    for r in rows:
        out.append(
            f"| {_n(r['events'])} | {_n(r['events_per_s'])} | {r['us_python_per_event']} | "
            f"{r['us_postgres_per_event']} | {r['load_before']} / {r['load_after']} |"
        )
    return out


def _backfill(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| events | profile | endpoints | wall s | events/s | requests (server) | "
        "calls | 429s | bound s | x bound | verified | load before/after |"
    ]
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        server = r.get("server", {})
        bound = r.get("bound", {}).get("seconds")
        if r.get("failed"):
            out.append(
                f"| {_n(r['events'])} | {r['profile']} | {r.get('endpoints', 1)} | failed after "
                f"{r['process_wall_s']} s: {r['error'][:120]} | | "
                f"{_n(server.get('http_requests', 0))} | {_n(server.get('calls', 0))} | "
                f"{_n(server.get('http_429', 0))} | | | no | "
                f"{r['load_before']} / {r['load_after']} |"
            )
            continue
        out.append(
            f"| {_n(r['events'])} | {r['profile']} | {r.get('endpoints', 1)} | {r['seconds']} | "
            f"{_n(r['events_per_s'])} | {_n(server['http_requests'])} | {_n(server['calls'])} | "
            f"{_n(server['http_429'])} | {bound if bound else '-'} | {r.get('vs_bound') or '-'} | "
            f"{'yes' if r['verified'] else 'NO'} | {r['load_before']} / {r['load_after']} |"
        )
    return out


def _memory(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| events | peak RSS MB | RSS at 1/4, 1/2, 3/4, end | wall s | load before/after |"]
    out.append("|---|---|---|---|---|")
    for r in rows:
        quarters = ", ".join(f"{x:.0f}" for x in r.get("rss_mb_at_quarters", []))
        out.append(
            f"| {_n(r['events'])} | {r['peak_rss_mb']} | {quarters} | {r['seconds']} | "
            f"{r['load_before']} / {r['load_after']} |"
        )
    return out


def _freshness(r: dict[str, Any]) -> list[str]:
    return [
        "| liquidations | poll interval s | p50 ms | p99 ms | max ms | load before/after |",
        "|---|---|---|---|---|---|",
        f"| {r['liquidations']} | {r['poll_interval_s']} | {r['p50_ms']} | {r['p99_ms']} | "
        f"{r['max_ms']} | {r['load_before']} / {r['load_after']} |",
    ]


def _api(r: dict[str, Any]) -> list[str]:
    out = [
        f"API: {r['workers']} uvicorn worker processes, {r['concurrency']} connections; "
        "cold: the answer cache off; repeated: the cache on, the same request every time; "
        "SQL: the same statements through asyncpg with as many connections as the API pools.",
        "",
        "| rows | query | cold req/s | cold p50 / p99 ms | repeated req/s | "
        "repeated p50 / p99 ms | API errors | SQL req/s | SQL p50 / p99 ms | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, entry in r["sizes"].items():
        for query, m in entry.items():
            if query == "fill":
                continue
            c, h, s = m["cold"], m["repeated"], m["sql"]
            out.append(
                f"| {_n(int(size))} | {query} | {_n(c['rps'])} | {c['p50_ms']} / {c['p99_ms']} | "
                f"{_n(h['rps'])} | {h['p50_ms']} / {h['p99_ms']} | "
                f"{c['errors'] + h['errors']} | {_n(s['rps'])} | {s['p50_ms']} / {s['p99_ms']} | "
                f"{c['load']} |"
            )
    return out


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{results['command']} — {results['date']} — {results['machine']['cpus']} CPUs "
        f"({results['machine']['cpu']}), {results['machine']['memory_mib']:,} MiB; "
        f"load at start {results['load_at_start']}",
    ]
    sections: dict[str, tuple[str, Callable[[Any], list[str]]]] = {
        "ingest": ("1. Raw ingest", _ingest),
        "backfill": ("2. Backfill with enrichment against the replay server", _backfill),
        "memory": ("3. Indexer memory during a backfill (profile none)", _memory),
        "freshness": ("4. Freshness on the devnet", _freshness),
        "api": ("5. API", _api),
    }
    for key, (title, render) in sections.items():
        if key in results:
            lines += ["", f"### {title}", "", *render(results[key])]
    return "\n".join(lines)
