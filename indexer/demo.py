"""`make demo`: the whole system on a local five-chain devnet, with one command.

Starts the devnet, plays the default scenario, indexes it with live progress, then keeps
following the chains while serving the dashboard and the GraphQL API. Ctrl-C stops
everything and leaves no process behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import uvicorn

from indexer.cli import ProgressView, setup_logging
from indexer.config import load_config
from indexer.pipeline import ChainIndexer
from indexer.store.migrate import ensure_database

EXAMPLES = """
Example queries (paste into GraphiQL at {url}):

  {{ liquidationStats(groupBy: [CHAIN]) {{ chain count debtUsd svrCount }} }}

  {{ svrRevenue(groupBy: [CHAIN]) {{
      chain svrLiquidationCount recapturedUsd aaveUsd chainlinkUsd }} }}
"""


async def main_async(args: argparse.Namespace) -> int:
    from api.app import create_app
    from indexer.devnet import devnet_down, devnet_up, run_scenario

    workdir = Path.cwd()
    dsn = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/aave_demo")
    print("starting the five-chain devnet ...", file=sys.stderr)
    await asyncio.to_thread(devnet_up, workdir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    indexers: list[ChainIndexer] = []
    try:
        print("playing the market-crash scenario ...", file=sys.stderr)
        await asyncio.to_thread(run_scenario, workdir, args.seed, args.scale)
        await ensure_database(dsn)
        config = load_config(workdir / ".devnet" / "devnet.toml")
        with ProgressView("bar" if sys.stderr.isatty() else "log") as view:
            indexers = [
                ChainIndexer(c, dsn, on_progress=view.update) for c in config.chains.values()
            ]
            for ix in indexers:
                await ix.open()
            await asyncio.gather(*(ix.backfill() for ix in indexers))
        app = create_app(dsn)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")
        )
        base = f"http://127.0.0.1:{args.port}"
        url = f"{base}/graphql"
        print(f"\nDashboard:   {base}/", file=sys.stderr)
        print(f"GraphQL API: {url}", file=sys.stderr)
        print(EXAMPLES.format(url=url), file=sys.stderr)
        print("following the chains; Ctrl-C stops everything.", file=sys.stderr)
        tails = [asyncio.create_task(ix.tail(stop)) for ix in indexers]
        serving = asyncio.create_task(server.serve())
        await stop.wait()
        server.should_exit = True
        await asyncio.gather(serving, *tails, return_exceptions=True)
    finally:
        for ix in indexers:
            with contextlib.suppress(Exception):
                await ix.close()
        await asyncio.to_thread(devnet_down, workdir)
        print("devnet stopped.", file=sys.stderr)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m indexer.demo", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    setup_logging(False, False)
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
