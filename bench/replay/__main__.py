"""python -m bench.replay: start a replay JSON-RPC server, write the matching indexer config,
print one JSON line (url, port, chain urls) when ready, serve until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import time

from .config_out import write_config
from .history import DEFAULT_BLOCKS, DEFAULT_EVENTS, History
from .profiles import PROFILES, get_profile
from .server import ReplayServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.replay",
        description="Replay JSON-RPC server: a generated five-chain Aave V3 liquidation "
        "history behind provider-like limits (a stand-in for a paid RPC provider).",
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--profile", default="default", choices=sorted(PROFILES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--fault-seed",
        type=int,
        default=None,
        help="seed of the injected faults and latency jitter (default: --seed); a second "
        "server of the same history with another one is a second provider",
    )
    ap.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="total liquidations")
    ap.add_argument("--blocks", type=int, default=DEFAULT_BLOCKS, help="blocks per chain")
    ap.add_argument("--chains", default="", help="comma-separated subset (default: all five)")
    ap.add_argument("--recipient", default=None, help="Ethereum MEV-Share refund address")
    ap.add_argument(
        "--moving-head",
        action="store_true",
        help="heads advance at the chains' block times (the last tenth of the "
        "window is still to come at start)",
    )
    ap.add_argument("--speed", type=float, default=1.0, help="moving-head time factor")
    ap.add_argument("--latency-ms", type=float, default=None, help="override profile latency")
    ap.add_argument("--rps", type=float, default=None, help="override profile rate limit (0: off)")
    ap.add_argument("--no-faults", action="store_true", help="no injected 5xx or timeouts")
    ap.add_argument("--hang-s", type=float, default=None, help="how long a timeout hangs")
    ap.add_argument(
        "--log-timestamps",
        choices=("yes", "no"),
        default=None,
        help="whether logs carry blockTimestamp (default: as the profile says)",
    )
    ap.add_argument("--config-out", default=None, help="write the indexer config TOML here")
    ap.add_argument(
        "--expected-out",
        default=None,
        help="write the ground truth (expected counts per chain) as JSON here",
    )
    return ap.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    chains = [c for c in args.chains.split(",") if c] or None
    history = History(
        seed=args.seed,
        total_events=args.events,
        blocks=args.blocks,
        chains=chains,
        recipient=args.recipient,
    )
    profile = get_profile(args.profile)
    if args.latency_ms is not None:
        profile = profile.with_overrides(latency_s=args.latency_ms / 1000, latency_jitter_s=0.0)
    if args.no_faults:
        profile = profile.with_overrides(error_5xx_rate=0.0, timeout_rate=0.0)
    if args.hang_s is not None:
        profile = profile.with_overrides(hang_s=args.hang_s)
    if args.rps is not None:
        profile = profile.with_overrides(requests_per_second=args.rps or None)
    if args.log_timestamps is not None:
        profile = profile.with_overrides(logs_block_timestamp=args.log_timestamps == "yes")
    # this process only serves: keep the cyclic GC from rescanning the block caches too often
    gc.freeze()
    gc.set_threshold(100_000, 20, 20)
    server = ReplayServer(
        history,
        profile,
        moving_head=args.moving_head,
        speed=args.speed,
        fault_seed=args.fault_seed,
    )
    base = await server.start(args.host, args.port)
    if args.config_out:
        write_config(args.config_out, history, base, profile)
    if args.expected_out:
        counts = history.expected_counts()
        with open(args.expected_out, "w") as fh:
            json.dump({k: v.to_json() for k, v in counts.items()}, fh, indent=2)
    ready = {
        "url": base,
        "port": server.port,
        "pid": os.getpid(),
        "profile": profile.name,
        "seed": args.seed,
        "events": args.events,
        "chains": server.urls(),
        "config": args.config_out,
        "startup_s": round(time.monotonic() - t0, 3),
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(args))
    return uvloop.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
