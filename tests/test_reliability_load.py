"""The API under sustained load at its measured capacity, while the indexer tails new
blocks and a reorg happens under it: no error, bounded memory, latencies reported.

Real processes: `aave-indexer run` (tailing the devnet) and `aave-indexer serve` (uvicorn),
a load generator here (aiohttp, open loop: requests leave on a fixed schedule whatever the
answers do). The capacity is measured first: a closed-loop estimate, then open-loop steps
up to it, 4 s each; the capacity is the highest rate whose 95th percentile stays under
TARGET_P95 and that leaves no backlog at the end of its step. Then the server gets that
rate for RELIABILITY_LOAD_SECONDS (20 here; the figure in docs/RELIABILITY.md is from a
600 s run) while blocks are mined, the indexer tails, and half-way a reorg replaces the
last 5 blocks of ethereum.
RELIABILITY_REPORT=FILE collects the figures.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tests.conftest import drop_database, make_database
from tests.reliability_support import (
    CliProcess,
    MutableDevnet,
    head,
    live_devnet,
    publish,
    reorg,
    retune,
    rpc,
    scaled,
    tail_caught_up,
    wait_for_owners,
    window,
)

LOAD_SECONDS = scaled("RELIABILITY_LOAD_SECONDS", 20)
CONCURRENCY = 8  # clients of the closed-loop estimate
TARGET_P95 = 0.15  # seconds: "capacity" is the rate the server answers this fast
STEPS = (0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0)  # shares of the closed-loop estimate tried
STEP_SECONDS = 4.0
SEED = 5

QUERIES = [
    """{ liquidations(first: 20) { totalCount edges { cursor node { id chainId blockNumber
        blockTime user debtUsd collateralUsd finalized collateralAsset { symbol }
        svr { aggregator recapturedUsd aaveUsd chainlinkUsd } } } pageInfo { endCursor } } }""",
    "{ liquidationStats(groupBy: [CHAIN, DAY]) { chain period count debtUsd svrCount } }",
    "{ liquidationStats(groupBy: [LIQUIDATOR]) { liquidator count debtUsd } }",
    "{ svrRevenue(groupBy: [CHAIN, DAY]) { chain period recapturedUsd aaveUsd chainlinkUsd } }",
    "{ indexerStatus { chain headBlock indexedBlock finalizedBlock lagBlocks halted } }",
    """query($f: LiquidationFilter) { liquidations(filter: $f, first: 50,
        orderBy: DEBT_USD_DESC) { edges { node { id debtUsd } } } }""",
]
FILTERS = [{"svr": True}, {"chainIds": [1]}, {"chains": ["ARBITRUM"]}, {"minDebtUsd": "1000"}]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> MutableDevnet:
    return live_devnet(tmp_path_factory, request.config)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Load:
    def __init__(self, client: aiohttp.ClientSession, base: str, ids: list[str]) -> None:
        self.client = client
        self.url = f"{base}/graphql"
        self.ids = ids
        self.rng = random.Random(SEED)
        self.latencies: list[float] = []
        self.records: list[tuple[float, float, bool]] = []  # sent at, latency, failed
        self.errors: list[str] = []

    def request(self) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 0.15 and self.ids:
            query = "query($id: ID!) { liquidation(id: $id) { id debtUsd svr { roundId } } }"
            return {"query": query, "variables": {"id": self.rng.choice(self.ids)}}
        query = self.rng.choice(QUERIES)
        variables = {"f": self.rng.choice(FILTERS)} if "$f" in query else {}
        return {"query": query, "variables": variables}

    async def one(self) -> None:
        started = time.perf_counter()
        failures = len(self.errors)
        try:
            async with self.client.post(self.url, json=self.request()) as response:
                body = await response.json()
                if response.status != 200 or body.get("errors"):
                    self.errors.append(f"{response.status} {str(body)[:300]}")
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        self.latencies.append(time.perf_counter() - started)
        self.records.append((started, self.latencies[-1], len(self.errors) > failures))

    def timeline(self, windows: int = 10) -> list[dict[str, Any]]:
        """Per slice of the run: requests, errors, 95th percentile."""
        if not self.records:
            return []
        first = min(r[0] for r in self.records)
        span = max(r[0] for r in self.records) - first + 1e-9
        out = []
        for w in range(windows):
            part = [r for r in self.records if w <= (r[0] - first) / span * windows < w + 1]
            if part:
                out.append(
                    {
                        "from_s": round(w * span / windows),
                        "requests": len(part),
                        "errors": sum(1 for r in part if r[2]),
                        "p95_ms": round(1000 * percentile([r[1] for r in part], 0.95)),
                    }
                )
        return out

    async def closed_loop(self, seconds: float) -> float:
        """Requests per second with CONCURRENCY clients each waiting for its answer."""
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await self.one()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return done / (time.perf_counter() - started)

    async def open_loop(self, rate: float, seconds: float) -> int:
        """One request every 1/rate seconds, whatever the answers do."""
        tasks = []
        start = time.perf_counter()
        n = 0
        while (due := start + n / rate) < start + seconds:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one()))
            n += 1
        await asyncio.gather(*tasks)
        return n


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def test_api_under_load_while_tailing_and_reorg(
    live: MutableDevnet, pg_template: str, tmp_path: Path
) -> None:
    config = live.config()
    urls = {c.chain_id: c.endpoints()[0] for c in config.chains.values()}
    tail_config = tmp_path / "tail.toml"
    tail_config.write_text(retune(live.config_path.read_text(), poll_interval_seconds=0.2))
    dsn = make_database(pg_template)
    port = _free_port()
    indexer = CliProcess(
        ["--config", str(tail_config), "--database-url", dsn, "--quiet", "run"],
        tmp_path / "run.log",
    )
    server: CliProcess | None = None
    stop_mining = threading.Event()
    mined = [0]
    reorged: list[int] = []

    def mine() -> None:  # new blocks all along (the chains' own pace, roughly)
        rng = random.Random(SEED)
        while not stop_mining.wait(rng.uniform(0.3, 0.8)):
            for url in urls.values():
                rpc(url, "anvil_mine", "0x1")
                mined[0] += 1

    miner = threading.Thread(target=mine, daemon=True)
    try:
        asyncio.run(wait_for_owners(dsn, len(urls)))
        asyncio.run(tail_caught_up(dsn, urls))
        server = CliProcess(
            ["--database-url", dsn, "serve", "--port", str(port)], tmp_path / "serve.log"
        )
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/readyz", server)
        miner.start()

        async def drive() -> dict[str, Any]:
            timeout = aiohttp.ClientTimeout(total=30)
            connector = aiohttp.TCPConnector(limit=128)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as client:
                ids = await _some_ids(base)
                load = Load(client, base, ids)
                await load.closed_loop(1.0)  # warm up
                estimate = await load.closed_loop(3.0)
                rate = 0.0
                steps = {}
                for share in STEPS:
                    load.latencies.clear()
                    started = time.perf_counter()
                    await load.open_loop(share * estimate, STEP_SECONDS)
                    # a backlog left at the end of the step: more than it can take
                    behind = time.perf_counter() - started - STEP_SECONDS
                    p95 = percentile(load.latencies, 0.95)
                    steps[round(share * estimate)] = round(1000 * p95)
                    if p95 > TARGET_P95 or behind > TARGET_P95 or load.errors:
                        break
                    rate = share * estimate
                assert not load.errors, load.errors[:5]
                assert rate > 0, f"not even {STEPS[0]:.0%} of {estimate:.0f}/s: {steps}"
                load.latencies.clear()
                load.records.clear()
                rss_start = rss_kib(server.proc.pid)
                samples: list[int] = []

                async def watch() -> None:
                    while True:
                        samples.append(rss_kib(server.proc.pid))
                        await asyncio.sleep(1)

                async def reorg_midway() -> None:
                    await asyncio.sleep(LOAD_SECONDS / 2)
                    url = urls[1]  # ethereum: the transactions of the last 5 blocks move
                    _, blocks = await asyncio.to_thread(window, url, 5)
                    placed = [
                        (tx, min(4, i + 1))
                        for i, block in enumerate(blocks)
                        for tx in block["transactions"]
                    ]
                    await asyncio.to_thread(reorg, url, 5, placed, 0)
                    reorged.append(await asyncio.to_thread(head, url))

                watcher = asyncio.create_task(watch())
                mover = asyncio.create_task(reorg_midway())
                sent = await load.open_loop(rate, LOAD_SECONDS)
                await mover
                watcher.cancel()
                return {
                    "estimate": estimate,
                    "steps": steps,
                    "capacity": rate,
                    "rate": rate,
                    "sent": sent,
                    "latencies": load.latencies,
                    "timeline": load.timeline(),
                    "errors": load.errors,
                    "rss_start": rss_start,
                    "rss_samples": samples,
                }

        result = asyncio.run(drive())
        stop_mining.set()
        miner.join(10)
        # The indexer followed everything, the reorg included, and is still running.
        assert indexer.alive(), indexer.log.read_text()[-2000:]
        asyncio.run(tail_caught_up(dsn, urls))
        assert indexer.stop() == 0
        assert server.alive()
    finally:
        stop_mining.set()
        if server is not None:
            server.stop()
        if indexer.alive():
            indexer.stop()
        drop_database(dsn)
    latencies = result["latencies"]
    rss_end = result["rss_samples"][-1]
    rss_max = max(result["rss_samples"])
    if result["errors"]:
        pytest.fail(
            f"{len(result['errors'])} errors, e.g. {result['errors'][:3]}; capacity steps "
            f"{result['steps']}; timeline {result['timeline']}"
        )
    assert len(latencies) == result["sent"]  # every request answered (client timeout 30 s)
    # Bounded memory: what a warm server holds, plus a little, not a function of time.
    assert rss_max < result["rss_start"] * 1.5 + 30_000, (result["rss_start"], rss_max)
    publish(
        "api-load",
        seconds=LOAD_SECONDS,
        closed_loop_rps=round(result["estimate"], 1),
        p95_ms_by_offered_rps=result["steps"],
        capacity_rps=round(result["capacity"], 1),
        requests=result["sent"],
        errors=len(result["errors"]),
        p50_ms=round(1000 * statistics.median(latencies), 1),
        p95_ms=round(1000 * percentile(latencies, 0.95), 1),
        p99_ms=round(1000 * percentile(latencies, 0.99), 1),
        max_ms=round(1000 * max(latencies), 1),
        rss_start_mib=round(result["rss_start"] / 1024, 1),
        rss_end_mib=round(rss_end / 1024, 1),
        rss_max_mib=round(rss_max / 1024, 1),
        blocks_mined_during=mined[0],
        reorgs_during=len(reorged),
        timeline=result["timeline"],
        cpus=os.cpu_count(),
    )


async def _some_ids(base: str) -> list[str]:
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post(
            "/graphql", json={"query": "{ liquidations(first: 200) { edges { node { id } } } }"}
        )
    return [e["node"]["id"] for e in response.json()["data"]["liquidations"]["edges"]]


def _free_port() -> int:
    from tests.faultproxy import free_port

    return free_port()


def _wait_http(url: str, process: CliProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.alive(), process.log.read_text()[-2000:]
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready: {process.log.read_text()[-2000:]}")
