"""The five devnet chains: ids, default ports and the per-chain traits the scenario uses."""

from __future__ import annotations

from dataclasses import dataclass

from indexer.networks import CHAIN_IDS as CHAINS

DEFAULT_BASE_PORT = 8545


@dataclass(frozen=True)
class ChainProfile:
    """What makes one devnet chain look like its real counterpart."""

    name: str
    chain_id: int
    block_time: int  # seconds, also written to devnet.toml
    native_symbol: str
    svr_model: str  # "mev-share" | "atlas" | "none"
    l2_pool: bool
    borrowers: int  # at scale 1.0
    median_position_usd: float


PROFILES: dict[str, ChainProfile] = {
    p.name: p
    for p in (
        ChainProfile("ethereum", 1, 12, "ETH", "mev-share", False, 190, 400_000.0),
        ChainProfile("polygon", 137, 2, "POL", "none", False, 285, 6_000.0),
        ChainProfile("avalanche", 43114, 2, "AVAX", "none", False, 195, 25_000.0),
        ChainProfile("arbitrum", 42161, 1, "ETH", "atlas", True, 190, 20_000.0),
        ChainProfile("base", 8453, 2, "ETH", "atlas", True, 190, 12_000.0),
    )
}


def default_ports() -> dict[str, int]:
    """8545.. in CHAINS order."""
    return {name: DEFAULT_BASE_PORT + i for i, name in enumerate(CHAINS)}


def check_chain_names(names: list[str] | None) -> list[str]:
    """Validate and order a user-given chain list (None means all five)."""
    from .errors import DevnetError

    if not names:
        return list(CHAINS)
    unknown = [n for n in names if n not in CHAINS]
    if unknown:
        raise DevnetError(f"unknown chain(s) {', '.join(unknown)}; known: {', '.join(CHAINS)}")
    return [n for n in CHAINS if n in names]
