"""Benchmark 5: the GraphQL API over a big database. For each size (rows are added to the
same database, so 1M then 10M costs one fill): the API under uvicorn with W worker
processes; for each query a load generator process with 64 connections, then the same SQL
through asyncpg with as many database connections as the API's pools hold together.

Each query is measured "cold" (the API's answer cache off: every request runs its query)
and "repeated" (the cache on, every client sending the same request, as dashboards do).

    python -m bench.api_bench 100000,1000000 10          # fill a new database, then measure
    python -m bench.api_bench --dsn DSN --queries list,chain --modes cold,repeated --seconds 10

With --dsn the database is used as it is (already filled, e.g. by `python -m bench.filldb`
or an earlier run) and kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
import urllib.request
from typing import Any

import asyncpg

from bench.common import ROOT, free_port, load_text, python, temp_database
from bench.filldb import fill
from bench.queries import QUERIES

POOL_MAX = 10


MODES = ("cold", "repeated")


async def start_api(
    dsn: str, workers: int, answer_cache: bool = True
) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {
        **os.environ,
        "BENCH_API_ANSWER_CACHE": "1" if answer_cache else "0",
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


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, seconds (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue
    return found


async def _backends(dsn: str) -> list[int]:
    """The API's PostgreSQL backends (same machine: their CPU is read from /proc)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'aave-svr-indexer-api'"
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


class CpuMeter:
    """CPU seconds the API's worker processes and their PostgreSQL backends spent over a
    load generator run: per request, with the generator's own, what a figure costs the two
    CPUs whatever else runs on them."""

    def __init__(self, api_pid: int, dsn: str) -> None:
        self.api_pid = api_pid
        self.dsn = dsn
        self.api: dict[int, float] = {}
        self.db: dict[int, float] = {}

    async def start(self) -> None:
        self.api = {p: _cpu_s(p) for p in [self.api_pid, *_children(self.api_pid)]}
        self.db = {p: _cpu_s(p) for p in await _backends(self.dsn)}

    async def stop(self, requests: int, client_cpu_s: float) -> dict[str, float]:
        api_pids = set(self.api) | set(_children(self.api_pid))
        api = sum(_cpu_s(p) - self.api.get(p, 0.0) for p in api_pids)
        db = sum(_cpu_s(p) - self.db.get(p, 0.0) for p in await _backends(self.dsn))
        n = max(requests, 1)
        return {
            "api_cpu_ms_per_req": round(1000 * api / n, 3),
            "db_cpu_ms_per_req": round(1000 * db / n, 3),
            "loadgen_cpu_ms_per_req": round(1000 * client_cpu_s / n, 3),
        }


async def loadgen(
    mode: str, target: str, query: str, seconds: float, connections: int, repeat: bool = False
) -> Any:
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
        *(["--repeat"] if repeat else []),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), seconds + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed: {err.decode()[-2000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


async def measure(
    dsn: str,
    workers: int,
    seconds: float,
    queries: tuple[str, ...] = QUERIES,
    modes: tuple[str, ...] = MODES,
    sql: bool = True,
) -> dict[str, Any]:
    """query -> {"cold": ..., "repeated": ..., "sql": ...}; each API figure with the load
    average before and after it."""
    out: dict[str, Any] = {q: {} for q in queries}
    for mode in modes:
        proc, url = await start_api(dsn, workers, answer_cache=mode != "cold")
        try:
            for query in queries:
                before = load_text()
                meter = CpuMeter(proc.pid, dsn)
                await meter.start()
                api = await loadgen(
                    "http", url, query, seconds, workers * POOL_MAX, repeat=mode == "repeated"
                )
                cpu = await meter.stop(api["requests"], api.get("cpu_s", 0.0))
                # errors (e.g. the pool's acquire timeout under overload) are counted
                out[query][mode] = {**api, **cpu, "load": before, "load_after": load_text()}
        finally:
            await stop(proc)
    if sql:
        for query in queries:
            before = load_text()
            figure = await loadgen("sql", dsn, query, seconds, workers * POOL_MAX)
            out[query]["sql"] = {**figure, "load": before, "load_after": load_text()}
    return out


async def run_api(
    sizes: list[int],
    workers: int = 2,
    seconds: float = 10.0,
    queries: tuple[str, ...] = QUERIES,
    modes: tuple[str, ...] = MODES,
) -> dict[str, Any]:
    results: dict[str, Any] = {"workers": workers, "concurrency": 64, "sizes": {}}
    async with temp_database("api") as dsn:
        have = 0
        for size in sorted(sizes):
            filled = await fill(dsn, have, size)
            have = size
            figures = await measure(dsn, workers, seconds, queries, modes)
            results["sizes"][str(size)] = {"fill": filled, **figures}
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.api_bench")
    ap.add_argument("sizes", nargs="?", default="100000", help="rows, comma-separated")
    ap.add_argument("seconds_pos", nargs="?", type=float, default=None, metavar="SECONDS")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--dsn", help="measure this database as it is (no fill, kept)")
    ap.add_argument("--queries", default=",".join(QUERIES))
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-sql", action="store_true", help="skip the SQL-only figures")
    args = ap.parse_args(argv)
    seconds = args.seconds_pos if args.seconds_pos is not None else args.seconds
    queries = tuple(q for q in args.queries.split(",") if q)
    modes = tuple(m for m in args.modes.split(",") if m)
    unknown = [m for m in modes if m not in MODES] + [q for q in queries if q not in QUERIES]
    if unknown:
        ap.error(f"unknown: {', '.join(unknown)}")
    if args.dsn:
        result: dict[str, Any] = {
            "workers": args.workers,
            "concurrency": 64,
            "dsn": args.dsn,
            **asyncio.run(
                measure(args.dsn, args.workers, seconds, queries, modes, sql=not args.no_sql)
            ),
        }
    else:
        sizes = [int(x) for x in args.sizes.split(",")]
        result = asyncio.run(run_api(sizes, args.workers, seconds, queries, modes))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
