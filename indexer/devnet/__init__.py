"""The local five-chain devnet: real anvil nodes, the unmodified Aave V3 contracts and a
deterministic liquidation scenario with Chainlink SVR, as ground truth for the indexer."""

from .anvil import devnet_down, devnet_up
from .chains import CHAINS
from .errors import DevnetError
from .runner import run_scenario

__all__ = ["CHAINS", "DevnetError", "devnet_down", "devnet_up", "run_scenario"]
