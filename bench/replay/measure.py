"""Measure the replay server itself: eth_getLogs throughput and memory.

    python -m bench.replay.measure --events 300000 [--chains polygon] [--span 2000]

Starts `python -m bench.replay --profile none` as a child process, walks every chain's window
with one sequential client in `--span`-block eth_getLogs ranges (all logs, or only the
indexer's topics with --indexer-filter), and prints one JSON line: logs served per second,
requests per second, the server's RSS after start-up and after the walk (VmRSS / VmHWM from
/proc), and the time to build the history.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp

from .abi import (
    T_ANSWER_UPDATED,
    T_LIQUIDATION_CALL,
    T_NEW_TRANSMISSION,
    T_PRIMARY_FEED_UNLOCKED,
    T_SECONDARY_ROUND_ID_UPDATED,
    T_SOLVER_TX_RESULT,
)
from .history import History

INDEXER_TOPICS = [
    [
        T_LIQUIDATION_CALL,
        T_NEW_TRANSMISSION,
        T_ANSWER_UPDATED,
        T_SECONDARY_ROUND_ID_UPDATED,
        T_PRIMARY_FEED_UNLOCKED,
        T_SOLVER_TX_RESULT,
    ]
]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


_SUGGESTED = re.compile(r"\[(0x[0-9a-fA-F]+), (0x[0-9a-fA-F]+)\]")


async def walk(
    base: str,
    windows: dict[str, tuple[int, int]],
    span: int,
    indexer_filter: bool,
    max_seconds: float,
) -> dict[str, Any]:
    """Fetch every window in `span`-block ranges; on a range error take the suggested range
    (or half the span) and carry on, as an indexer would."""
    logs = requests = refused = 0
    nbytes = 0
    t0 = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for chain, (lo, hi) in windows.items():
            start = lo
            while start <= hi and time.perf_counter() - t0 < max_seconds:
                end = min(hi, start + span - 1)
                flt: dict[str, Any] = {"fromBlock": hex(start), "toBlock": hex(end)}
                if indexer_filter:
                    flt["topics"] = INDEXER_TOPICS
                body = {"jsonrpc": "2.0", "id": requests, "method": "eth_getLogs", "params": [flt]}
                async with session.post(f"{base}/{chain}", json=body) as resp:
                    raw = await resp.read()
                requests += 1
                if resp.status != 200:
                    refused += 1
                    await asyncio.sleep(0.05)
                    continue
                if b'"error"' in raw[:60]:
                    refused += 1
                    m = _SUGGESTED.search(raw.decode())
                    if m and int(m.group(2), 16) < end:
                        end = int(m.group(2), 16)
                    else:
                        end = start + max(1, (end - start + 1) // 2) - 1
                    flt["toBlock"] = hex(end)
                    body["params"] = [flt]
                    async with session.post(f"{base}/{chain}", json=body) as resp:
                        raw = await resp.read()
                    requests += 1
                    if b'"error"' in raw[:60] or resp.status != 200:
                        refused += 1
                        span = max(1, span // 2)
                        continue
                nbytes += len(raw)
                logs += raw.count(b'"removed":false')
                start = end + 1
    dt = time.perf_counter() - t0
    return {
        "requests": requests,
        "refused": refused,
        "logs": logs,
        "seconds": round(dt, 2),
        "logs_per_s": round(logs / dt),
        "requests_per_s": round(requests / dt, 1),
        "mb_per_s": round(nbytes / dt / 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.replay.measure")
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--blocks", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chains", default="")
    ap.add_argument("--span", type=int, default=2000)
    ap.add_argument("--indexer-filter", action="store_true")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument(
        "--profile",
        default="none",
        help="server profile (latency and rate "
        "limits are switched off; range limits and caps stay)",
    )
    ap.add_argument("--no-walk", action="store_true", help="only measure start-up and memory")
    args = ap.parse_args(argv)
    cmd = [
        sys.executable,
        "-m",
        "bench.replay",
        "--profile",
        "none",
        "--port",
        "0",
        "--seed",
        str(args.seed),
        "--events",
        str(args.events),
        "--blocks",
        str(args.blocks),
    ]
    if args.chains:
        cmd += ["--chains", args.chains]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        result: dict[str, Any] = {
            "events": args.events,
            "startup_s": ready["startup_s"],
            "rss_after_start": rss_mb(proc.pid),
        }
        if not args.no_walk:
            chains = [c for c in args.chains.split(",") if c] or None
            # the windows are cheap to recompute here (same seed, same parameters)
            h = History(seed=args.seed, total_events=0, blocks=args.blocks, chains=chains)
            windows = {ch.name: (ch.start, ch.last) for ch in h}
            cpu0 = cpu_seconds(proc.pid)
            stats = asyncio.run(
                walk(ready["url"], windows, args.span, args.indexer_filter, args.max_seconds)
            )
            cpu = cpu_seconds(proc.pid) - cpu0
            stats["server_cpu_s"] = round(cpu, 2)
            stats["logs_per_server_cpu_s"] = round(stats["logs"] / cpu) if cpu else None
            result["walk"] = stats
            result["rss_after_walk"] = rss_mb(proc.pid)
        print(json.dumps(result))
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
