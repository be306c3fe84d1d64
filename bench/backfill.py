"""Benchmarks 2 and 3: a whole-history backfill against the replay server, run as the CLI
runs it, with the replay server in its own process and the indexer in another (so neither's
CPU counts against the other's event loop, and the indexer's peak RSS is its own).

Result: wall time, events/s, the RPC requests the server saw (/stats), the least time the
profile allows (bench/bound.py), the indexer's peak RSS, and the database checked against
History.expected_counts(): a run that lost or duplicated an event raises.

With `endpoints=N`, N replay servers of the same history (each its own process, faults and
rate limit: N providers) are every chain's endpoints (`rpc_endpoints`, each with the
profile's limit), and the bound counts N times the rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg

from bench.bound import backfill_bound
from bench.common import ROOT, python, temp_database
from bench.replay import History, get_profile

READY_TIMEOUT_S = 600.0


class ReplayProcess:
    """`python -m bench.replay ...` in a child process."""

    def __init__(
        self,
        events: int,
        profile: str,
        workdir: Path,
        seed: int = 1,
        blocks: int | None = None,
        fault_seed: int | None = None,
        name: str = "replay",
    ) -> None:
        self.name = name
        self.args = [
            "-m",
            "bench.replay",
            "--port",
            "0",
            "--profile",
            profile,
            "--seed",
            str(seed),
            "--events",
            str(events),
            "--config-out",
            str(workdir / f"{name}.toml"),
        ]
        if blocks is not None:
            self.args += ["--blocks", str(blocks)]
        if fault_seed is not None:
            self.args += ["--fault-seed", str(fault_seed)]
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}

    async def __aenter__(self) -> ReplayProcess:
        self.proc = await asyncio.create_subprocess_exec(
            python(), *self.args, cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), READY_TIMEOUT_S)
        if not line:
            raise RuntimeError("the replay server exited before it was ready")
        self.ready = json.loads(line)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    @property
    def config(self) -> str:
        return str(self.workdir / f"{self.name}.toml")

    def stats(self, reset: bool = False) -> dict[str, Any]:
        url = self.ready["url"] + "/stats" + ("?reset=1" if reset else "")
        with urllib.request.urlopen(url, timeout=10) as resp:
            data: dict[str, Any] = json.loads(resp.read())
        return data


async def stored_counts(dsn: str) -> dict[int, dict[str, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT chain_id, count(*) AS liquidations, count(*) FILTER (WHERE is_svr) AS svr,
                   (SELECT count(*) FROM svr_recaptures r WHERE r.chain_id = l.chain_id)
                       AS recaptures
            FROM liquidations l GROUP BY chain_id
            """
        )
    finally:
        await conn.close()
    return {
        r["chain_id"]: {
            "liquidations": r["liquidations"],
            "svr_liquidations": r["svr"],
            "recaptures": r["recaptures"],
        }
        for r in rows
    }


def failed(
    events: int, profile: str, wall: float, stderr: str, stats: dict[str, Any]
) -> dict[str, Any]:
    """A run whose indexer exited with an error: what it said and what the server saw."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return {
        "events": events,
        "profile": profile,
        "failed": True,
        "error": lines[-1][:500] if lines else "",
        "process_wall_s": round(wall, 2),
        "server": stats["totals"],
        "verified": False,
    }


def compare(expected: dict[str, Any], stored: dict[int, dict[str, int]]) -> list[str]:
    """Differences between the ground truth and the database (empty when equal)."""
    problems = []
    for name, truth in expected.items():
        got = stored.get(truth["chain_id"], {})
        for key in ("liquidations", "svr_liquidations", "recaptures"):
            if got.get(key, 0) != truth[key]:
                problems.append(f"{name}.{key}: stored {got.get(key, 0)}, expected {truth[key]}")
    return problems


def several_endpoints(config: str, bases: list[str], rate: float) -> None:
    """Make every chain of a generated config use each of `bases` (replay servers of the
    same history), each endpoint with its own `rate` limit."""
    path = Path(config)

    def endpoints(match: re.Match[str]) -> str:
        chain = match.group(2)
        entries = ", ".join(
            f'{{ url = "{base}/{chain}", requests_per_second = {rate:g} }}' for base in bases
        )
        return f"rpc_endpoints = [{entries}]"

    text = re.sub(r'(?m)^rpc_urls = \["(http://[^"]+)/(\w+)"\]$', endpoints, path.read_text())
    path.write_text(text)


def merged_stats(all_stats: list[dict[str, Any]]) -> dict[str, Any]:
    """The servers' /stats added up (totals, methods); chains' heads from the first."""
    out = dict(all_stats[0])
    totals: dict[str, int] = {}
    methods: dict[str, int] = {}
    for stats in all_stats:
        for key, value in stats["totals"].items():
            totals[key] = totals.get(key, 0) + int(value)
        for key, value in stats["methods"].items():
            methods[key] = methods.get(key, 0) + int(value)
    out["totals"] = totals
    out["methods"] = dict(sorted(methods.items()))
    return out


def override(config: str, key: str, value: float) -> None:
    """Set `key` of every chain in a generated config (e.g. requests_per_second)."""
    path = Path(config)
    text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value:g}", path.read_text())
    path.write_text(text)


async def run_backfill(
    events: int,
    profile: str = "default",
    *,
    timeout: float = 3600,
    bound: bool = True,
    client_rps: float | None = None,
    blocks: int | None = None,
    max_block_range: int | None = None,
    endpoints: int = 1,
) -> dict[str, Any]:
    """client_rps, max_block_range: override the generated config's values; blocks: the
    window per chain; endpoints: replay servers (providers) per chain."""
    spec = get_profile(profile)
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            replays = [
                await stack.enter_async_context(
                    ReplayProcess(
                        events,
                        profile,
                        Path(tmp),
                        blocks=blocks,
                        fault_seed=None if i == 0 else 1000 + i,
                        name=f"replay{i}",
                    )
                )
                for i in range(endpoints)
            ]
            replay = replays[0]
            if client_rps is not None:
                override(replay.config, "requests_per_second", client_rps)
            if max_block_range is not None:
                override(replay.config, "max_block_range", max_block_range)
            if endpoints > 1:
                rate = client_rps or spec.config_requests_per_second
                several_endpoints(replay.config, [r.ready["url"] for r in replays], rate)
            async with temp_database("backfill") as dsn:
                for r in replays:
                    r.stats(reset=True)
                t0 = time.perf_counter()
                child = await asyncio.create_subprocess_exec(
                    python(),
                    "-m",
                    "bench.backfill_child",
                    replay.config,
                    dsn,
                    cwd=ROOT,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
                try:
                    out, err = await asyncio.wait_for(child.communicate(), timeout)
                except TimeoutError:
                    child.kill()
                    await child.wait()
                    raise
                wall = time.perf_counter() - t0
                each = [r.stats() for r in replays]
                stats = merged_stats(each)
                if child.returncode != 0:
                    return failed(events, profile, wall, err.decode(), stats)
                result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
                # what the indexer logged (warnings: ranges read again, endpoints benched)
                result["log_tail"] = err.decode(errors="replace").strip().splitlines()[-20:]
                stored = await stored_counts(dsn)
    # backfill stops at the finalized block: the truth is counted up to it
    history = (
        History(seed=1, total_events=events)
        if blocks is None
        else History(seed=1, total_events=events, blocks=blocks)
    )
    finalized = {name: c["finalized"] for name, c in stats["chains"].items()}
    expected = {k: v.to_json() for k, v in history.expected_counts(finalized).items()}
    problems = compare(expected, stored)
    if problems:
        raise AssertionError("backfill lost or duplicated events: " + "; ".join(problems))
    totals = stats["totals"]
    result.update(
        events=events,
        profile=profile,
        endpoints=endpoints,
        client_rps=client_rps,
        max_block_range=max_block_range,
        process_wall_s=round(wall, 2),
        events_per_s=round(result["liquidations"] / result["seconds"]),
        server=totals,
        server_methods=stats["methods"],
        verified=True,
    )
    if endpoints > 1:
        result["server_by_endpoint"] = [s["totals"] for s in each]
    result["expected_liquidations"] = sum(v["liquidations"] for v in expected.values())
    if bound:
        per_chain = (spec.requests_per_second or 0) * endpoints or None
        limits = spec.with_overrides(requests_per_second=per_chain)
        result["bound"] = backfill_bound(history, limits, span=spec.config_max_block_range)
        least = result["bound"]["seconds"]
        result["vs_bound"] = round(result["seconds"] / least, 2) if least else None
    return result


if __name__ == "__main__":
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    name = sys.argv[2] if len(sys.argv) > 2 else "default"
    rps = float(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 1  # endpoints per chain
    out = asyncio.run(run_backfill(n, name, client_rps=rps, endpoints=count))
    out.pop("rss_samples", None)
    out.get("bound", {}).pop("chains", None)
    print(json.dumps(out, indent=1))
