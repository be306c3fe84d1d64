"""The export's memory and speed: `python -m bench.export N [--keep DSN]`.

Fills a database with N synthetic liquidations (`filldb.py`), starts the API under uvicorn
in its own process, streams /export/liquidations.csv and .parquet (no filter: every row)
to nowhere, and samples the server process's RSS every 100 ms. Prints one JSON line per
format: rows, bytes, seconds, rows/s, RSS before and at peak. `--dsn` reuses a filled
database instead of making one.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx

from bench.common import free_port, load_text, python, temp_database, wait_port
from bench.filldb import fill


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def export_once(base: str, path: str, pid: int) -> dict[str, Any]:
    before = rss_kib(pid)
    peak = before
    size = 0
    lines = 0
    started = time.perf_counter()
    async with (
        httpx.AsyncClient(base_url=base, timeout=None) as http,
        http.stream("GET", path) as response,
    ):
        response.raise_for_status()
        last = 0.0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if path.endswith(".csv"):
                lines += chunk.count(b"\n")
            now = time.perf_counter()
            if now - last > 0.1:
                peak = max(peak, rss_kib(pid))
                last = now
    seconds = time.perf_counter() - started
    peak = max(peak, rss_kib(pid))
    return {
        "path": path,
        "bytes": size,
        "csv_rows": lines - 1 if lines else None,
        "seconds": round(seconds, 1),
        "rss_before_mb": round(before / 1024, 1),
        "rss_peak_mb": round(peak / 1024, 1),
    }


async def heads_and_cache(dsn: str, base: str) -> dict[str, Any]:
    """What the caching layer costs: the heads query alone, and a GraphQL GET answered
    from the cache, by 304, and with the cache missed (heads read every time)."""
    import asyncpg

    from api import queries

    conn = await asyncpg.connect(dsn)
    try:
        sql = queries.heads()
        await conn.fetch(sql.text)
        started = time.perf_counter()
        for _ in range(200):
            await conn.fetch(sql.text)
        heads_ms = (time.perf_counter() - started) / 200 * 1000
    finally:
        await conn.close()
    query = {"query": "{ liquidationStats(groupBy: [CHAIN]) { chainId count debtUsd } }"}
    async with httpx.AsyncClient(base_url=base) as http:
        first = await http.get("/graphql", params=query)
        etag = first.headers["etag"]
        timings = {}
        for label, headers in (("hit", {}), ("not_modified", {"If-None-Match": etag})):
            started = time.perf_counter()
            for _ in range(200):
                await http.get("/graphql", params=query, headers=headers)
            timings[f"get_{label}_ms"] = round((time.perf_counter() - started) / 200 * 1000, 2)
        started = time.perf_counter()
        for k in range(200):
            await http.get("/graphql", params={**query, "variables": json.dumps({"k": k})})
        timings["get_miss_ms"] = round((time.perf_counter() - started) / 200 * 1000, 2)
    return {"heads_query_ms": round(heads_ms, 3), **timings, "load": load_text()}


async def measure(dsn: str, rows: int) -> list[dict[str, Any]]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": dsn}
    proc = subprocess.Popen(
        [python(), "-m", "uvicorn", "bench.api_app:app", "--factory", "--port", str(port),
         "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    try:
        await wait_port(port)
        base = f"http://127.0.0.1:{port}"
        print(json.dumps(await heads_and_cache(dsn, base)), flush=True)
        out = []
        for path in ("/export/liquidations.csv", "/export/liquidations.parquet"):
            result = await export_once(base, path, proc.pid)
            result["rows"] = rows
            result["rows_per_s"] = round(rows / result["seconds"])
            result["load"] = load_text()
            print(json.dumps(result), flush=True)
            out.append(result)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def main(rows: int, dsn: str | None) -> None:
    if dsn is not None:
        await measure(dsn, rows)
        return
    async with temp_database("export") as fresh:
        filled = await fill(fresh, 0, rows)
        print(json.dumps({"filled": filled}), flush=True)
        await measure(fresh, filled["rows"])


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    reuse = sys.argv[sys.argv.index("--dsn") + 1] if "--dsn" in sys.argv else None
    asyncio.run(main(count, reuse))
