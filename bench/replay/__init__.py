"""Replay JSON-RPC server: a stand-in for a paid RPC provider.

The benchmarks (issue #6) and fault tests (issue #7) need what a paid provider such as Alchemy
or Infura gives a production indexer: months of Aave V3 liquidations on five chains, served with
that provider's latency, block-range and result-size limits, rate limiting and occasional
failures. A real provider cannot be reached from this offline machine, so this package stands in
for one. It serves a GENERATED history, deterministic from a seed, over real Ethereum JSON-RPC:
the real chain ids, Aave V3 Pool and AaveOracle addresses, event signatures and hex encodings,
Chainlink SVR aggregator logs and the two ways SVR value is recaptured (MEV-Share refunds on
Ethereum, Atlas SolverTxResult logs on Arbitrum and Base). The data is synthetic; only the
shapes are real.

Nothing per event is stored: a compact index says which blocks hold liquidations and a keyed
hash of (seed, chain, block) derives their content, so ten million liquidations fit in a few
tens of megabytes and any eth_getLogs range is answered from the index.

    history = History(seed=1, total_events=300_000)
    server = ReplayServer(history, "default")
    base_url = await server.start("127.0.0.1", 0)   # http://127.0.0.1:PORT/<chain>
    ...
    truth = history.expected_counts()                # what the indexer must find
    await server.stop()

Command line: `python -m bench.replay --port 0 --profile default --seed 1 --events 300000
--config-out PATH` (see __main__.py).
"""

from .chains import CHAIN_NAMES, CHAINS, AssetSpec, ChainSpec
from .config_out import render_config, write_config
from .counts import ChainCounts
from .history import BlockPlan, ChainHistory, History, Liq
from .profiles import PROFILES, Profile, get_profile
from .server import ReplayServer
from .truth import LiquidationTruth, liquidations

__all__ = [
    "CHAINS",
    "CHAIN_NAMES",
    "PROFILES",
    "AssetSpec",
    "BlockPlan",
    "ChainCounts",
    "ChainHistory",
    "ChainSpec",
    "History",
    "Liq",
    "LiquidationTruth",
    "Profile",
    "ReplayServer",
    "get_profile",
    "liquidations",
    "render_config",
    "write_config",
]
