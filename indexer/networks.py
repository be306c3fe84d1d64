"""The chains the project knows, by name and EVM chain id: the one place these facts live.

The configuration checks a chain's id against it, the devnet runs these ids, and the API
maps its `Chain` enum to ids through it.
"""

from __future__ import annotations

#: name -> EVM chain id, in the order of the devnet's default ports 8545..8549.
CHAIN_IDS: dict[str, int] = {
    "ethereum": 1,
    "polygon": 137,
    "avalanche": 43114,
    "arbitrum": 42161,
    "base": 8453,
}
CHAIN_NAMES: dict[int, str] = {chain_id: name for name, chain_id in CHAIN_IDS.items()}
