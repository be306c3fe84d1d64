"""Benchmark 4, freshness: from a liquidation's block being mined on the devnet to the
liquidation being returned by the GraphQL API.

An Ethereum devnet node (anvil, free port, temp dir) gets the Aave market and a first
crash wave; `aave-indexer run` tails it (poll_interval_seconds from a copy of the devnet
config) in its own process and the API serves from another. Then more scenario waves make
fresh liquidations while this process watches the node (every few ms: a new block is
"mined" when eth_blockNumber first shows it; its LiquidationCall logs say what it holds)
and polls the API for those liquidations. Latency = first seen in the API - block first
seen on the node.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.api_app import __name__ as _api_module
from bench.common import ROOT, free_port, percentile, python, temp_database
from indexer.decode.topics import LIQUIDATION_CALL
from indexer.devnet import devnet_down, devnet_up, run_scenario

TOPICS = [LIQUIDATION_CALL]
NODE_POLL_S = 0.005
API_POLL_S = 0.01
WAIT_S = 120.0
SEEN = """query($b: Int!) { liquidations(first: 1000, orderBy: BLOCK_TIME_ASC,
  filter: {chainIds: [1], blockFrom: $b}) { edges { node { txHash logIndex } } } }"""


async def rpc(session: aiohttp.ClientSession, url: str, method: str, params: list[Any]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with session.post(url, json=body) as resp:
        return (await resp.json())["result"]


class Watch:
    """Blocks and liquidations as they appear on the node and then in the API."""

    def __init__(self, node: str, api: str) -> None:
        self.node = node
        self.api = api
        self.mined: dict[tuple[str, int], tuple[int, float]] = {}  # key -> (block, seen at)
        self.served: dict[tuple[str, int], float] = {}
        self.stop = asyncio.Event()

    async def watch_node(self, session: aiohttp.ClientSession, last: int) -> None:
        while not self.stop.is_set():
            head = int(await rpc(session, self.node, "eth_blockNumber", []), 16)
            if head > last:
                seen = time.perf_counter()
                logs = await rpc(
                    session,
                    self.node,
                    "eth_getLogs",
                    [{"fromBlock": hex(last + 1), "toBlock": hex(head), "topics": TOPICS}],
                )
                for log in logs:
                    key = (log["transactionHash"].lower(), int(log["logIndex"], 16))
                    self.mined.setdefault(key, (int(log["blockNumber"], 16), seen))
                last = head
            await asyncio.sleep(NODE_POLL_S)

    async def watch_api(self, session: aiohttp.ClientSession) -> None:
        while not self.stop.is_set():
            pending = [b for k, (b, _) in self.mined.items() if k not in self.served]
            if pending:
                body = {"query": SEEN, "variables": {"b": min(pending)}}
                async with session.post(self.api, json=body) as resp:
                    data = await resp.json()
                now = time.perf_counter()
                for edge in data["data"]["liquidations"]["edges"]:
                    node = edge["node"]
                    self.served.setdefault((node["txHash"], node["logIndex"]), now)
            await asyncio.sleep(API_POLL_S)

    def latencies(self) -> list[float]:
        return [self.served[k] - t for k, (_, t) in self.mined.items() if k in self.served]

    def done(self) -> bool:
        return all(k in self.served for k in self.mined)


def tail_config(source: Path, target: Path, poll: float) -> None:
    text = source.read_text()
    text = re.sub(r"(?m)^poll_interval_seconds = .*\n", "", text)
    text = re.sub(r"(?m)^(\[chains\.\w+\])$", rf"\1\npoll_interval_seconds = {poll:g}", text)
    target.write_text(text)


async def spawn(args: list[str], env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with open(log, "wb") as fh:
        return await asyncio.create_subprocess_exec(
            *args, cwd=ROOT, env={**os.environ, **env}, stdout=fh, stderr=fh
        )


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def wait_served(session: aiohttp.ClientSession, api: str, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            async with session.post(api, json={"query": SEEN, "variables": {"b": 0}}) as resp:
                data = await resp.json()
            if data.get("data") and len(data["data"]["liquidations"]["edges"]) >= count:
                return
        except (aiohttp.ClientError, OSError):
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the API did not serve the first {count} liquidations in time")


async def run_freshness(waves: int = 2, scale: float = 0.2, poll: float = 0.1) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-fresh-"))
    port = free_port()
    devnet_up(workdir, ports={"ethereum": port}, chains=["ethereum"])
    try:
        first = await asyncio.to_thread(run_scenario, workdir, 1, scale, ["ethereum"])
        config = workdir / "tail.toml"
        tail_config(workdir / ".devnet" / "devnet.toml", config, poll)
        node = f"http://127.0.0.1:{port}"
        async with temp_database("fresh") as dsn:
            env = {"DATABASE_URL": dsn, "AAVE_INDEXER_CONFIG": str(config)}
            indexer = await spawn(
                [python(), "-m", "indexer.cli", "--quiet", "run"], env, workdir / "indexer.log"
            )
            api_port = free_port()
            api = await spawn(
                [
                    python(),
                    "-m",
                    "uvicorn",
                    f"{_api_module}:app",
                    "--factory",
                    "--port",
                    str(api_port),
                    "--log-level",
                    "warning",
                ],
                env,
                workdir / "api.log",
            )
            api_url = f"http://127.0.0.1:{api_port}/graphql"
            try:
                async with aiohttp.ClientSession() as session:
                    known = len(first["chains"]["ethereum"]["liquidations"])
                    await wait_served(session, api_url, known)
                    watch = Watch(node, api_url)
                    head = int(await rpc(session, node, "eth_blockNumber", []), 16)
                    tasks = [
                        asyncio.create_task(watch.watch_node(session, head)),
                        asyncio.create_task(watch.watch_api(session)),
                    ]
                    for wave in range(waves):
                        await asyncio.to_thread(
                            run_scenario, workdir, 2 + wave, scale, ["ethereum"]
                        )
                    deadline = time.monotonic() + WAIT_S
                    while not (watch.mined and watch.done()) and time.monotonic() < deadline:
                        await asyncio.sleep(0.1)
                    watch.stop.set()
                    await asyncio.gather(*tasks)
            finally:
                await stop(api)
                await stop(indexer)
    finally:
        devnet_down(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    lat = watch.latencies()
    missing = len(watch.mined) - len(lat)
    if not lat or missing:
        raise AssertionError(
            f"freshness: {missing} of {len(watch.mined)} liquidations never served"
        )
    return {
        "liquidations": len(lat),
        "waves": waves,
        "scale": scale,
        "poll_interval_s": poll,
        "p50_ms": round(1000 * percentile(lat, 50), 1),
        "p99_ms": round(1000 * percentile(lat, 99), 1),
        "max_ms": round(1000 * max(lat), 1),
        "min_ms": round(1000 * min(lat), 1),
    }


if __name__ == "__main__":
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    print(json.dumps(asyncio.run(run_freshness(waves=n))))
