"""Run the benchmarks: `python -m bench.run --smoke | --full [--only NAME ...] [--out FILE]`.

--smoke: tiny sizes, seconds (what CI runs through tests/test_bench_smoke.py).
--full: the sizes of bench/README.md (an hour or more on a 2-core machine).
Writes every result as JSON (default bench/results/latest.json) and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.api_bench import run_api
from bench.backfill import run_backfill
from bench.common import load_text, machine, temp_database
from bench.freshness import run_freshness
from bench.ingest import run_ingest
from bench.report import table

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
NAMES = ("ingest", "backfill", "memory", "freshness", "api")

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {
        "ingest": [3_000],
        "backfill": {"events": 2_000, "blocks": 20_000, "profile": "none", "two_endpoints": True},
        "memory": [2_000],
        "freshness": {"waves": 1, "scale": 0.1},
        "api": {"sizes": [10_000], "seconds": 0.5},
    },
    "full": {
        "ingest": [10_000, 100_000, 1_000_000, 10_000_000],
        "backfill": {
            "events": 300_000,
            "blocks": None,
            "profile": "default",
            "two_endpoints": True,
        },
        "memory": [300_000, 1_000_000],
        "freshness": {"waves": 3, "scale": 0.3},
        "api": {"sizes": [10_000, 100_000, 1_000_000, 10_000_000], "seconds": 10.0},
    },
}


async def bench_ingest(sizes: list[int]) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        load = load_text()
        async with temp_database("ingest") as dsn:
            result = await run_ingest(dsn, n)
        out.append({**result.to_json(), "load_before": load, "load_after": load_text()})
    return out


async def bench_backfill(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The shipped code under the profile, (for the default profile) the same provider with
    logs that carry blockTimestamp (`default-ts`), and the first profile again with two
    endpoints (providers) per chain, each with its own limit."""
    runs = [spec["profile"], "default-ts"] if spec["profile"] == "default" else [spec["profile"]]
    plan = [(profile, 1) for profile in runs]
    if spec.get("two_endpoints"):
        plan.append((spec["profile"], 2))
    out = []
    for profile, endpoints in plan:
        load = load_text()
        result = await run_backfill(
            spec["events"], profile, blocks=spec["blocks"], endpoints=endpoints
        )
        result.pop("rss_samples", None)
        out.append({**result, "load_before": load, "load_after": load_text()})
    return out


async def bench_memory(sizes: list[int], blocks: int | None) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        load = load_text()
        result = await run_backfill(n, "none", blocks=blocks, bound=False)
        samples = result.pop("rss_samples", [])
        result["rss_mb_at_quarters"] = quarters(samples)
        out.append({**result, "load_before": load, "load_after": load_text()})
    return out


def quarters(samples: list[list[float]]) -> list[float]:
    """RSS when a quarter, half, three quarters and all of the events were written."""
    if not samples:
        return []
    total = samples[-1][2] or 1
    out = []
    for q in (0.25, 0.5, 0.75, 1.0):
        first = next((s for s in samples if s[2] >= q * total), samples[-1])
        out.append(first[1])
    return out


async def bench_freshness(spec: dict[str, Any]) -> dict[str, Any]:
    load = load_text()
    result = await run_freshness(waves=spec["waves"], scale=spec["scale"])
    return {**result, "load_before": load, "load_after": load_text()}


async def bench_api(spec: dict[str, Any]) -> dict[str, Any]:
    return await run_api(spec["sizes"], seconds=spec["seconds"])


async def run(mode: str, only: list[str]) -> dict[str, Any]:
    sizes = SIZES[mode]
    small_blocks = sizes["backfill"]["blocks"]
    jobs: dict[str, Callable[[], Awaitable[Any]]] = {
        "ingest": lambda: bench_ingest(sizes["ingest"]),
        "backfill": lambda: bench_backfill(sizes["backfill"]),
        "memory": lambda: bench_memory(sizes["memory"], small_blocks),
        "freshness": lambda: bench_freshness(sizes["freshness"]),
        "api": lambda: bench_api(sizes["api"]),
    }
    results: dict[str, Any] = {
        "mode": mode,
        "command": "python -m bench.run " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_at_start": load_text(),
    }
    for name in only or NAMES:
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        results[name] = await jobs[name]()
        print(f"[bench] {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    which.add_argument("--full", action="store_true", help="the sizes of bench/README.md")
    ap.add_argument("--only", action="append", choices=NAMES, default=[], help="run only NAME")
    ap.add_argument("--out", default=str(RESULTS), help=f"JSON results (default {RESULTS})")
    args = ap.parse_args(argv)
    mode = "smoke" if args.smoke else "full"
    results = asyncio.run(run(mode, args.only))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.only and out.exists():
        # --only updates its sections of an earlier run of the same mode, keeps the rest
        earlier = json.loads(out.read_text())
        if earlier.get("mode") == mode:
            runs = earlier.get("runs") or [earlier.get("command", "")]
            results = {**earlier, **results, "runs": [*runs, results["command"]]}
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
