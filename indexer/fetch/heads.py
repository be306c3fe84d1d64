"""What the head is and what is final, per chain.

With `use_finalized_tag` the node's `finalized` block is trusted; a node without the tag
(or a devnet) falls back to head - finality_depth.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.config import ChainConfig
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import EndpointFault, RpcError, TransientError


@dataclass(frozen=True, slots=True)
class Heads:
    head: int
    finalized: int


class HeadTracker:
    def __init__(self, client: RpcClient, chain: ChainConfig) -> None:
        self.client = client
        self.chain = chain
        self.tag_supported = chain.use_finalized_tag
        self.highest_seen = -1

    async def read(self) -> Heads:
        head_hex, url = await self.client.call_with_endpoint("eth_blockNumber")
        head = int(head_hex, 16)
        if head < self.highest_seen - self.chain.finality_depth:
            # Going back further than finality is a broken node, not a reorg.
            self.client.mark_faulty(url, f"head went back from {self.highest_seen} to {head}")
            raise EndpointFault(
                f"{self.chain.name}: head went back from {self.highest_seen} to {head}"
            )
        self.highest_seen = max(self.highest_seen, head)
        finalized = max(0, head - self.chain.finality_depth)
        if self.tag_supported:
            try:
                block = await self.client.call("eth_getBlockByNumber", ["finalized", False])
                if block is not None:
                    finalized = min(head, int(block["number"], 16))
                else:
                    self.tag_supported = False
            except (RpcError, KeyError, TypeError, ValueError):
                self.tag_supported = False  # the node has no such tag: use the depth
            except TransientError:
                pass  # this time only, fall back to head - finality_depth
        return Heads(head=head, finalized=finalized)
