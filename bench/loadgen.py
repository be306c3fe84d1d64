"""Load generator for the API benchmark, run in its own process: C concurrent clients over
keep-alive connections, for at most D seconds and N requests, against either the GraphQL
API (http) or the same SQL straight through asyncpg (sql), so the API's own cost shows.

    python -m bench.loadgen http URL QUERY --concurrency 64 --seconds 10 --requests 20000
    python -m bench.loadgen sql DSN QUERY --concurrency 64 --connections 20 ...

QUERY is one of bench.queries.QUERIES. --repeat sends every client the same request (the
first of the query's random ones: a dashboard polling one view) instead of a random one each
time. Prints one JSON line: requests, errors, seconds, requests/s, p50/p99/max latency in ms
(for paging: per page request).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from typing import Any

import aiohttp
import asyncpg

from bench.common import percentile
from bench.queries import PAGES, graphql_request, sql_request


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error = ""

    def error(self, text: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or text[:300]


class Budget:
    """At most `requests` requests, and none started after `seconds`."""

    def __init__(self, requests: int, seconds: float) -> None:
        self.left = requests
        self.deadline = time.perf_counter() + seconds

    def more(self) -> bool:
        return self.left > 0 and time.perf_counter() < self.deadline

    def take(self) -> bool:
        if not self.more():
            return False
        self.left -= 1
        return True


async def http_worker(
    session: aiohttp.ClientSession,
    url: str,
    query: str,
    rng: random.Random,
    stop: Budget,
    repeat: bool = False,
) -> Stats:
    """Only paging reads the answer's JSON (for its cursor); other queries check the status
    and look for an "errors" key in the bytes, so the generator spends less of the CPUs it
    shares with the server."""
    stats = Stats()
    headers = {"content-type": "application/json"}
    while stop.more():
        cursor: str | None = None
        walk = 0.0 if repeat else rng.random()  # every page of a walk asks for the same window
        for _ in range(PAGES if query == "paging" else 1):
            if not stop.take():
                break
            body = json.dumps(graphql_request(query, random.Random(walk), cursor)).encode()
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    raw = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                stats.error(repr(exc))
                break
            stats.latencies.append(time.perf_counter() - t0)
            if status != 200 or b'"errors":' in raw:
                stats.error(f"HTTP {status}: {raw[:300]!r}")
                break
            if query == "paging":
                data = json.loads(raw)
                info = data["data"]["liquidations"]["pageInfo"]
                if not info["hasNextPage"]:
                    break
                cursor = info["endCursor"]
    return stats


async def sql_worker(pool: asyncpg.Pool, query: str, rng: random.Random, stop: Budget) -> Stats:
    stats = Stats()
    while stop.more():
        after: Any = None
        walk = rng.random()
        for _ in range(PAGES if query == "paging" else 1):
            if not stop.take():
                break
            sql = sql_request(query, random.Random(walk), after)
            t0 = time.perf_counter()
            try:
                async with pool.acquire() as conn:
                    rows = await conn.fetch(sql.text, *sql.args)
            except (asyncpg.PostgresError, OSError) as exc:
                stats.error(repr(exc))
                break
            stats.latencies.append(time.perf_counter() - t0)
            if query != "paging" or len(rows) <= 50:
                break
            after = rows[49]
    return stats


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    cpu_started = time.process_time()
    stop = Budget(args.requests, args.seconds)

    rngs = [random.Random(1000 + i) for i in range(args.concurrency)]
    if args.mode == "http":
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            results = await asyncio.gather(
                *(http_worker(session, args.target, args.query, r, stop, args.repeat) for r in rngs)
            )
    else:
        pool = await asyncpg.create_pool(
            args.target, min_size=args.connections, max_size=args.connections
        )
        try:
            results = await asyncio.gather(*(sql_worker(pool, args.query, r, stop) for r in rngs))
        finally:
            await pool.close()
    seconds = time.perf_counter() - started
    latencies = [x for s in results for x in s.latencies]
    errors = sum(s.errors for s in results)
    return {
        "mode": args.mode,
        "query": args.query,
        "repeat": args.repeat,
        "concurrency": args.concurrency,
        "requests": len(latencies),
        "errors": errors,
        "first_error": next((s.first_error for s in results if s.first_error), ""),
        "seconds": round(seconds, 2),
        "rps": round(len(latencies) / seconds, 1),
        "p50_ms": round(1000 * percentile(latencies, 50), 2) if latencies else None,
        "p99_ms": round(1000 * percentile(latencies, 99), 2) if latencies else None,
        "max_ms": round(1000 * max(latencies), 2) if latencies else None,
        "cpu_s": round(time.process_time() - cpu_started, 3),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.loadgen")
    ap.add_argument("mode", choices=["http", "sql"])
    ap.add_argument("target", help="GraphQL URL (http) or DSN (sql)")
    ap.add_argument("query")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--connections", type=int, default=20, help="sql mode: pool size")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--repeat", action="store_true", help="the same request every time")
    args = ap.parse_args(argv)
    try:
        import uvloop

        result = uvloop.run(run(args))
    except ImportError:
        result = asyncio.run(run(args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
