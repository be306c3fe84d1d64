"""The least time a provider profile allows for a backfill, from the work the history needs.

Per chain, the indexer makes these JSON-RPC calls:
  - eth_getLogs: one per max_block_range span, more where a span holds more than the
    sizer's log target (counted from the LiquidationCall logs; the replay serves no
    getReserveData, so the indexer makes no treasury-fee lookups against it);
  - eth_getBlockByNumber: one per block holding events when the profile's logs carry no
    blockTimestamp (none when they do), plus one with transactions per Ethereum SVR block
    (MEV-Share refund);
  - eth_call: one AaveOracle getAssetsPrices per block holding liquidations (every asset
    the block needs), plus one for the native coin of a recapture when no liquidation of
    that block already priced it.
The profile's rate limit counts every call of a batch, so a chain needs at least
calls / rate seconds. Latency costs at least one round trip per span, since the planner
fetches the spans' logs one after another (the enrichment of up to `in_flight` spans, its
header and price round trips, overlaps that), or the spans' sequential round trips divided
among the spans in flight, whichever is more. Chains run concurrently: the bound is the
slowest chain's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.replay import ChainHistory, History, Profile
from indexer.fetch.ranges import TARGET_LOGS

ROUND_TRIPS_PER_SPAN = 3  # logs, headers, prices (each waits for the one before)


@dataclass
class ChainBound:
    chain: str
    spans: int
    event_blocks: int
    header_calls: int
    price_calls: int
    svr_blocks: int
    calls: int
    rate_s: float
    latency_s: float

    @property
    def seconds(self) -> float:
        return max(self.rate_s, self.latency_s)


def chain_bound(
    ch: ChainHistory, profile: Profile, span: int, in_flight: int, target_logs: int = TARGET_LOGS
) -> ChainBound:
    logs_per_span: dict[int, int] = {}
    price_calls = event_blocks = svr_blocks = 0
    for n in ch.event_blocks(ch.start, ch.last):
        plan = ch.plan(n)
        if plan is None:
            continue
        event_blocks += 1
        window = (n - ch.start) // span
        logs_per_span[window] = logs_per_span.get(window, 0) + len(plan.liqs)
        assets: set[int] = set()
        native = routed = False
        for liq in plan.liqs:
            assets.add(liq.collateral)
            assets.add(liq.debt)
            if liq.route >= 0:
                native = True
                routed = routed or liq.svr
        price_calls += 1 + (native and ch.native_index not in assets)
        if routed and ch.spec.svr_model == "mev-share":
            svr_blocks += 1
    spans = -(-ch.window // span)
    spans += sum(max(0, -(-logs // target_logs) - 1) for logs in logs_per_span.values())
    header_calls = 0 if profile.logs_block_timestamp else event_blocks
    calls = spans + header_calls + svr_blocks + price_calls
    rate = profile.requests_per_second
    rate_s = calls / rate if rate else 0.0
    latency_s = spans * profile.latency_s * max(1.0, ROUND_TRIPS_PER_SPAN / in_flight)
    return ChainBound(
        ch.name,
        spans,
        event_blocks,
        header_calls,
        price_calls,
        svr_blocks,
        calls,
        rate_s,
        latency_s,
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
