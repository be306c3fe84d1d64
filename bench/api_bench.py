"""Benchmark 5: the GraphQL API over a big database. For each size (rows are added to the
same database, so 1M then 10M costs one fill): the API under uvicorn with W worker
processes; for each query a load generator process with 64 connections, then the same SQL
through asyncpg with as many database connections as the API's pools hold together.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from typing import Any

from bench.common import ROOT, free_port, load_text, python, temp_database
from bench.filldb import fill
from bench.queries import QUERIES

POOL_MAX = 10


async def start_api(dsn: str, workers: int) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "AAVE_API_POOL_MAX": str(POOL_MAX),
        "AAVE_API_CURSOR_SECRET": "bench-cursor-secret",  # cursors valid across workers
    }
    proc = await asyncio.create_subprocess_exec(
        python(),
        "-m",
        "uvicorn",
        "bench.api_app:app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            await asyncio.to_thread(_get, url + "/readyz")
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the API did not become ready") from None
            await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # let every worker open its pool
    return proc, url + "/graphql"


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        body: bytes = resp.read()
        return body


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def loadgen(mode: str, target: str, query: str, seconds: float, connections: int) -> Any:
    proc = await asyncio.create_subprocess_exec(
        python(),
        "-m",
        "bench.loadgen",
        mode,
        target,
        query,
        "--concurrency",
        "64",
        "--connections",
        str(connections),
        "--seconds",
        str(seconds),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), seconds + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed: {err.decode()[-2000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


async def measure(
    dsn: str, workers: int, seconds: float, queries: tuple[str, ...] = QUERIES
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    proc, url = await start_api(dsn, workers)
    try:
        for query in queries:
            load = load_text()
            api = await loadgen("http", url, query, seconds, workers * POOL_MAX)
            sql = await loadgen("sql", dsn, query, seconds, workers * POOL_MAX)
            # errors (e.g. the pool's acquire timeout under overload) are counted, not fatal
            out[query] = {"api": api, "sql": sql, "load": load}
    finally:
        await stop(proc)
    return out


async def run_api(
    sizes: list[int],
    workers: int = 2,
    seconds: float = 10.0,
    queries: tuple[str, ...] = QUERIES,
) -> dict[str, Any]:
    results: dict[str, Any] = {"workers": workers, "concurrency": 64, "sizes": {}}
    async with temp_database("api") as dsn:
        have = 0
        for size in sorted(sizes):
            filled = await fill(dsn, have, size)
            have = size
            measured = await measure(dsn, workers, seconds, queries)
            results["sizes"][str(size)] = {"fill": filled, **measured}
    return results


if __name__ == "__main__":
    import sys

    sizes = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "100000").split(",")]
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    # a third argument picks queries: list,chain,...
    picked = tuple(sys.argv[3].split(",")) if len(sys.argv) > 3 else QUERIES
    unknown = set(picked) - set(QUERIES)
    if unknown:
        raise SystemExit(f"unknown queries {sorted(unknown)}; known: {', '.join(QUERIES)}")
    print(json.dumps(asyncio.run(run_api(sizes, seconds=secs, queries=picked)), indent=1))
