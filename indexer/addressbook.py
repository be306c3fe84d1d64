"""The shipped configuration (indexer/chains.toml), generated from the Aave address book.

Every address in the shipped file comes from the npm package @aave-dao/aave-address-book
(pinned in package.json): each Aave V3 market's Pool and AaveOracle, the native coin's
wrapped token, and the Chainlink `AAVE_SVR_*` feeds. What the address book does not hold is
kept here, by hand, with its source: the operational settings per chain (finality, range and
rate limits, block time), the pools' confirmed first blocks (the Aave subgraphs' start
blocks; a market without one is dated on-chain at first start, see fetch/deployment.py) and
the Atlas contracts of the SVR auctions (FastLane's deployments).

    python -m indexer.addressbook --write   # regenerate indexer/chains.toml and its copy in
                                            # the Kubernetes ConfigMap
    python -m indexer.addressbook --check   # exit 1 when either differs (a test runs it)

Following an address-book release is: bump the version in package.json, `npm install`,
`--write`, review the diff.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.config import DEFAULT_CONFIG
from indexer.networks import CHAIN_IDS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "node_modules" / "@aave-dao" / "aave-address-book"
CONFIGMAP = ROOT / "deploy" / "k8s" / "configmap.yaml"
CONFIGMAP_KEY = "  chains.toml: |\n"


@dataclass(frozen=True)
class Market:
    module: str  # the address book's module, e.g. AaveV3EthereumLido
    name: str  # the market's name in this project (the `market` of every liquidation)
    start_block: int | None  # confirmed first block; None: dated on-chain


@dataclass(frozen=True)
class ChainSettings:
    name: str
    finality_depth: int
    max_block_range: int
    block_time_seconds: float
    native_asset: str  # the address book's ASSETS key of the wrapped native coin
    chainlink_module: str
    markets: tuple[Market, ...]
    svr_model: str = "none"
    atlas: str | None = None
    dapp_control: str | None = None
    recipients: tuple[str, ...] = ()


#: Chainlink's SVR fee Safe: where Ethereum's block builders pay the recaptured bids
#: (docs/SVR.md, "Ethereum's recipient", says how to check it).
SVR_FEE_SAFE = "0x149b41b1e4c00b5f9aa34b14fd9f84cfd2f014e5"

# name, finality_depth, max_block_range, block_time_seconds, native asset, Chainlink module,
# markets, then the SVR model and, for Atlas, its contract and Chainlink's DAppControl.
CHAINS = (
    ChainSettings(
        "ethereum", 64, 2000, 12, "WETH", "ChainlinkEthereum",
        (
            Market("AaveV3Ethereum", "core", 16291127),
            Market("AaveV3EthereumLido", "prime", None),
            Market("AaveV3EthereumEtherFi", "etherfi", None),
            Market("AaveV3EthereumHorizon", "horizon", None),
        ),
        "mev-share",
        recipients=(SVR_FEE_SAFE,),
    ),
    ChainSettings(
        "polygon", 256, 2000, 2, "WPOL", "ChainlinkPolygon",
        (Market("AaveV3Polygon", "core", 25826028),),
    ),
    ChainSettings(
        "avalanche", 32, 2000, 2, "WAVAX", "ChainlinkAvalanche",
        (Market("AaveV3Avalanche", "core", 11970506),),
    ),
    ChainSettings(
        "arbitrum", 64, 10000, 1, "WETH", "ChainlinkArbitrum",
        (Market("AaveV3Arbitrum", "core", 7742429),),
        "atlas",
        "0x8ad1aE9D97C79aA68A0a151E83ff3942f68F86C1",
        "0xe15BBa987C002ecc3586e81244517877D294d291",
    ),
    ChainSettings(
        "base", 64, 10000, 2, "WETH", "ChainlinkBase",
        (Market("AaveV3Base", "core", 2357134),),
        "atlas",
        "0x583dcFef0D240DC80753F0F0B26513feE27D9B77",
        "0xa5E1a36938769cbd5a26f5e19D8FCB379f597c83",
    ),
)  # fmt: skip

_DUMP = """
const dir = process.argv[1];
const [markets, feeds] = JSON.parse(process.argv[2]);
const out = {version: require(dir + '/package.json').version, markets: {}, feeds: {}};
for (const name of markets) {
  const m = require(dir + '/dist/' + name + '.js');
  const assets = {};
  for (const [symbol, a] of Object.entries(m.ASSETS)) assets[symbol] = a.UNDERLYING;
  out.markets[name] = {chain_id: m.CHAIN_ID, pool: m.POOL, oracle: m.ORACLE,
                       svr_steward: m.SVR_STEWARD || null, assets};
}
for (const name of feeds) {
  const m = require(dir + '/dist/' + name + '.js');
  out.feeds[name] = Object.fromEntries(
    Object.entries(m).filter(([k, v]) => k.startsWith('AAVE_SVR_') && typeof v === 'string'));
}
console.log(JSON.stringify(out));
"""


class AddressBookError(Exception):
    """The package is missing or does not hold what the configuration needs."""


def read_address_book(package: Path = PACKAGE) -> dict[str, Any]:
    """The markets and SVR feeds the configuration needs, read from the package by node."""
    if not (package / "package.json").exists():
        raise AddressBookError(f"{package} is not installed; run `make install`")
    markets = [m.module for c in CHAINS for m in c.markets]
    feeds = [c.chainlink_module for c in CHAINS]
    result = subprocess.run(
        ["node", "-e", _DUMP, str(package), json.dumps([markets, feeds])],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AddressBookError(f"reading {package} failed: {result.stderr.strip()[-300:]}")
    book: dict[str, Any] = json.loads(result.stdout)
    return book


def _feed_label(key: str) -> str:
    """AAVE_SVR_ETH__USD -> ETH/USD; AAVE_SVR_ETH__USD_BASE -> ETH/USD base."""
    pair = key.removeprefix("AAVE_SVR_")
    base = pair.endswith("_BASE")
    pair = pair.removesuffix("_BASE").replace("__", "/")
    return f"{pair} base" if base else pair


def render(book: dict[str, Any]) -> str:
    """chains.toml, from the address book's answers and the settings above."""
    lines = [
        "# Generated by `python -m indexer.addressbook --write` from the npm package",
        f"# @aave-dao/aave-address-book {book['version']}: do not edit by hand (copy it to",
        "# your own file and pass --config instead). Used when neither --config nor",
        "# AAVE_INDEXER_CONFIG names another file. RPC endpoints come from the environment",
        "# variable named by rpc_env (several URLs comma-separated, used together).",
        "#",
        "# Per chain: chain_id, rpc_env | rpc_urls | rpc_endpoints = [{ url | env,",
        "#   requests_per_second }], start_block (default: the lowest of the",
        "#   pools' start blocks), finality_depth, use_finalized_tag, max_block_range,",
        "#   requests_per_second, max_in_flight, block_time_seconds, poll_interval_seconds,",
        "#   native_price_asset (the asset whose AaveOracle price values the native coin).",
        "# [[chains.X.pools]]: market (its name), address, oracle, version (3), start_block",
        "#   (absent: the Pool's deployment block, found on-chain once and kept).",
        "# [chains.X.svr]: model = mev-share | atlas | none, recipients, atlas, dapp_control,",
        "#   split = [{ from = DATE, aave_bps = N }] (Chainlink gets 10000 - N),",
        "#   aggregators (overrides: address, assets, start_block),",
        "#   feeds (the address book's Aave SVR feeds: name, address).",
    ]
    for chain in CHAINS:
        first = book["markets"][chain.markets[0].module]
        if first["chain_id"] != CHAIN_IDS[chain.name]:
            raise AddressBookError(f"{chain.markets[0].module} is chain {first['chain_id']}")
        native = first["assets"].get(chain.native_asset)
        if native is None:
            raise AddressBookError(f"{chain.markets[0].module} has no {chain.native_asset}")
        lines += [
            "",
            f"[chains.{chain.name}]",
            f"chain_id = {CHAIN_IDS[chain.name]}",
            f'rpc_env = "RPC_URL_{chain.name.upper()}"',
            f"finality_depth = {chain.finality_depth}",
            f"max_block_range = {chain.max_block_range}",
            "requests_per_second = 25",
            "max_in_flight = 4",
            f"block_time_seconds = {chain.block_time_seconds:g}",
            f'native_price_asset = "{native}"  # {chain.native_asset}',
        ]
        for market in chain.markets:
            entry = book["markets"][market.module]
            if entry["chain_id"] != CHAIN_IDS[chain.name]:
                raise AddressBookError(f"{market.module} is chain {entry['chain_id']}")
            lines += [
                "",
                f"[[chains.{chain.name}.pools]]  # {market.module}",
                f'market = "{market.name}"',
                f'address = "{entry["pool"]}"',
                f'oracle = "{entry["oracle"]}"',
                "version = 3",
            ]
            if market.start_block is not None:
                lines.append(f"start_block = {market.start_block}")
        lines += [
            "",
            f"[chains.{chain.name}.svr]",
            f'model = "{chain.svr_model}"',
        ]
        if chain.atlas:
            lines += [f'atlas = "{chain.atlas}"', f'dapp_control = "{chain.dapp_control}"']
        recipients = ", ".join(f'"{r}"' for r in chain.recipients)
        lines += [
            f"recipients = [{recipients}]",
            'split = [{ from = "2025-03-29", aave_bps = 6500 }]',
            "aggregators = []",
        ]
        feeds = book["feeds"].get(chain.chainlink_module, {})
        if feeds:
            lines.append("feeds = [")
            for key in sorted(feeds):
                lines.append(f'  {{ name = "{_feed_label(key)}", address = "{feeds[key]}" }},')
            lines.append("]")
        else:
            lines.append("feeds = []")
    return "\n".join(lines) + "\n"


def configmap(toml: str, current: str) -> str:
    """The ConfigMap with `toml` as its chains.toml (everything before that key kept)."""
    head = current[: current.index(CONFIGMAP_KEY) + len(CONFIGMAP_KEY)]
    body = "".join(f"    {line}\n" if line else "\n" for line in toml.splitlines())
    return head + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m indexer.addressbook", description=__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--write", action="store_true", help="regenerate indexer/chains.toml")
    what.add_argument("--check", action="store_true", help="exit 1 if chains.toml differs")
    args = parser.parse_args(argv)
    try:
        text = render(read_address_book())
    except AddressBookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    wanted = {DEFAULT_CONFIG: text, CONFIGMAP: configmap(text, CONFIGMAP.read_text())}
    if args.write:
        for path, content in wanted.items():
            path.write_text(content)
        return 0
    stale = [str(path) for path, content in wanted.items() if path.read_text() != content]
    if stale:
        print(
            f"{', '.join(stale)} differ from the address book; run "
            "`python -m indexer.addressbook --write`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
