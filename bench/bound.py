"""The least time a provider profile allows for a backfill, from the work the history needs.

Per chain, the indexer must make at least these JSON-RPC calls:
  - eth_getLogs: one per max_block_range span (the replay serves no getReserveData, so the
    indexer makes no treasury-fee lookups against it);
  - eth_getBlockByNumber: one per block holding events (timestamps: the replay's logs carry
    no blockTimestamp), plus one with transactions per Ethereum SVR block (MEV-Share refund);
  - eth_call getAssetPrice: one per distinct (asset, block) priced (collateral and debt of
    every liquidation, the native coin of every recapture).
The profile's rate limit counts every call of a batch, so a chain needs at least
calls / rate seconds; its latency costs at least (sequential round trips per span x spans x
latency) / spans in flight. Chains run concurrently: the bound is the slowest chain's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.replay import ChainHistory, History, Profile

ROUND_TRIPS_PER_SPAN = 3  # logs, headers, prices (each waits for the one before)


@dataclass
class ChainBound:
    chain: str
    spans: int
    event_blocks: int
    price_pairs: int
    svr_blocks: int
    calls: int
    rate_s: float
    latency_s: float

    @property
    def seconds(self) -> float:
        return max(self.rate_s, self.latency_s)


def chain_bound(ch: ChainHistory, profile: Profile, span: int, in_flight: int) -> ChainBound:
    spans = -(-ch.window // span)
    pairs: set[tuple[int, int]] = set()
    event_blocks = svr_blocks = 0
    for n in ch.event_blocks(ch.start, ch.last):
        plan = ch.plan(n)
        if plan is None:
            continue
        event_blocks += 1
        routed = False
        for liq in plan.liqs:
            pairs.add((liq.collateral, n))
            pairs.add((liq.debt, n))
            if liq.route >= 0:
                pairs.add((ch.native_index, n))
                routed = routed or liq.svr
        if routed and ch.spec.svr_model == "mev-share":
            svr_blocks += 1
    calls = spans + event_blocks + svr_blocks + len(pairs)
    rate = profile.requests_per_second
    rate_s = calls / rate if rate else 0.0
    latency_s = spans * ROUND_TRIPS_PER_SPAN * profile.latency_s / in_flight
    return ChainBound(
        ch.name, spans, event_blocks, len(pairs), svr_blocks, calls, rate_s, latency_s
    )


def backfill_bound(
    history: History, profile: Profile, span: int = 2000, in_flight: int = 4
) -> dict[str, Any]:
    chains = [chain_bound(ch, profile, span, in_flight) for ch in history]
    slowest = max(chains, key=lambda c: c.seconds)
    return {
        "seconds": round(slowest.seconds, 1),
        "slowest_chain": slowest.chain,
        "calls": sum(c.calls for c in chains),
        "rate_limit_per_chain": profile.requests_per_second,
        "latency_ms": profile.latency_s * 1000,
        "chains": {
            c.chain: {**asdict(c), "rate_s": round(c.rate_s, 1), "latency_s": round(c.latency_s, 1)}
            for c in chains
        },
    }
