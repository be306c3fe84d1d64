"""Prometheus metrics of the indexer process (served by `run` on --metrics-port)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPC_LATENCY = Histogram(
    "aave_indexer_rpc_seconds", "RPC request latency", ["chain", "endpoint", "method"]
)
RPC_ERRORS = Counter(
    "aave_indexer_rpc_errors_total", "RPC failures by kind", ["chain", "endpoint", "kind"]
)
BLOCKS = Counter("aave_indexer_blocks_total", "Blocks indexed", ["chain"])
EVENTS = Counter("aave_indexer_events_total", "Events stored", ["chain", "kind"])
BATCH_SIZE = Histogram(
    "aave_indexer_batch_events",
    "Events per write batch",
    ["chain"],
    buckets=(0, 1, 10, 100, 1000, 10_000, 100_000),
)
LAG = Gauge("aave_indexer_lag_blocks", "Head minus indexed block", ["chain"])
REORGS = Counter("aave_indexer_reorgs_total", "Reorgs handled", ["chain"])
