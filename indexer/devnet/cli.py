"""`aave-indexer devnet up|down|scenario`: the devnet's command line.

indexer/cli.py calls add_devnet_parser(subparsers) and then args.func(args); the devnet's
state goes to .devnet/ in the current directory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .anvil import devnet_down, devnet_up
from .chains import CHAINS, check_chain_names, default_ports
from .errors import DevnetError
from .runner import run_scenario


def _progress(message: str) -> None:
    print(f"devnet: {message}", file=sys.stderr, flush=True)


def _chain_list(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [c.strip() for c in text.split(",") if c.strip()]


def _ports(text: str | None, chains: list[str]) -> dict[str, int] | None:
    """--ports a,b,c: one port per chain, in the order of --chains (or of all five)."""
    if not text:
        return None
    try:
        ports = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise DevnetError(f"--ports takes comma-separated numbers, got {text!r}") from None
    if len(ports) != len(chains):
        raise DevnetError(
            f"--ports lists {len(ports)} ports for {len(chains)} chains ({', '.join(chains)})"
        )
    if any(not 0 < p < 65536 for p in ports):
        raise DevnetError(f"--ports must be between 1 and 65535, got {text!r}")
    return dict(zip(chains, ports, strict=True))


def _up(args: argparse.Namespace) -> int:
    chains = check_chain_names(_chain_list(args.chains))
    ports = _ports(args.ports, chains)
    workdir = Path.cwd()
    started = time.monotonic()
    devnet_up(workdir, ports=ports, chains=chains, block_time=args.block_time)
    used = {**default_ports(), **(ports or {})}
    for name in chains:
        _progress(f"{name} (chain id {CHAINS[name]}) on http://127.0.0.1:{used[name]}")
    mode = f"a block every {args.block_time:g}s" if args.block_time else "automine"
    _progress(
        f"{len(chains)} node(s) up in {time.monotonic() - started:.1f}s ({mode}); "
        "logs in .devnet/logs/"
    )
    return 0


def _down(args: argparse.Namespace) -> int:
    devnet_down(Path.cwd())
    _progress("stopped")
    return 0


def _scenario(args: argparse.Namespace) -> int:
    started = time.monotonic()
    manifest = run_scenario(
        Path.cwd(),
        seed=args.seed,
        scale=args.scale,
        chains=_chain_list(args.chains),
        progress=_progress,
    )
    for name, chain in manifest["chains"].items():
        liqs = chain["liquidations"]
        svr = sum(1 for e in liqs if e["svr"])
        _progress(
            f"{name}: {len(liqs)} liquidations, {svr} SVR, {len(chain['recaptures'])} recaptures"
        )
    _progress(
        f"done in {time.monotonic() - started:.1f}s; wrote .devnet/devnet.toml and "
        ".devnet/manifest.json"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    handler = getattr(args, "devnet_func", None)
    if handler is None:
        args.devnet_parser.print_help(sys.stderr)
        return 2
    try:
        result: int = handler(args)
    except DevnetError as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)  # always one line
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return result


def add_devnet_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `devnet` with its up/down/scenario subcommands; sets func=handler(args) -> int."""
    names = ", ".join(CHAINS)
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "devnet",
        help="local five-chain devnet (anvil + Aave V3 + SVR scenario)",
        description="Run the local devnet: one anvil per chain, a real Aave V3 market on each, "
        "and a deterministic liquidation scenario with Chainlink SVR. State goes to .devnet/ "
        "in the current directory.",
    )
    parser.set_defaults(func=_run, devnet_parser=parser)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="start the anvil nodes",
        description="Start one anvil per chain on 127.0.0.1 (default ports "
        "8545..8549 in the order " + names + ").",
    )
    up.add_argument(
        "--ports", metavar="P1,P2,...", help="one port per chain, in the order of --chains"
    )
    up.add_argument("--chains", metavar="C1,C2,...", help=f"subset of: {names} (default: all)")
    up.add_argument(
        "--block-time",
        type=float,
        metavar="S",
        help="mine a block every S seconds instead of on each transaction",
    )
    up.set_defaults(devnet_func=_up)

    down = sub.add_parser(
        "down",
        help="stop the anvil nodes",
        description="Stop the devnet's nodes (SIGTERM, then SIGKILL).",
    )
    down.set_defaults(devnet_func=_down)

    scenario = sub.add_parser(
        "scenario",
        help="deploy Aave V3 and play the liquidation scenario",
        description="Deploy Aave V3 where not yet deployed, play the crash scenario, then write "
        ".devnet/devnet.toml (indexer config) and .devnet/manifest.json (ground truth).",
    )
    scenario.add_argument("--seed", type=int, default=1, help="scenario seed (default 1)")
    scenario.add_argument(
        "--scale", type=float, default=1.0, help="multiply the number of borrowers (default 1.0)"
    )
    scenario.add_argument(
        "--chains", metavar="C1,C2,...", help="subset of the running chains (default: all running)"
    )
    scenario.set_defaults(devnet_func=_scenario)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (python -m indexer.devnet.cli devnet ...), for use without the
    global CLI."""
    root = argparse.ArgumentParser(prog="aave-indexer")
    add_devnet_parser(root.add_subparsers(dest="command", required=True))
    args = root.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
