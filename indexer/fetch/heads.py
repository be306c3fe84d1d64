"""What the head is and what is final, per chain.

With `use_finalized_tag` the node's `finalized` block is trusted; a node without the tag
(or a devnet) falls back to head - finality_depth.

A head below what is known to exist is an endpoint fault, not a reorg (reorg.head_fault
says which): such an answer cools the endpoint down and the head is read again (elsewhere,
when there is another).

With several endpoints, every healthy one is asked and the head is the highest plausible
answer. An endpoint behind the others is not at fault: it is judged against its own earlier
heads, and the client sends it only requests for blocks it has reached (rpc/client.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from indexer.config import ChainConfig
from indexer.reorg import head_fault
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import EndpointFault, RpcError, TransientError

READ_ATTEMPTS = 4


class _ImplausibleHead(EndpointFault):
    """A head the endpoint cannot be right about; read again, then raised as it is."""


@dataclass(frozen=True, slots=True)
class Heads:
    head: int
    finalized: int


class HeadTracker:
    def __init__(self, client: RpcClient, chain: ChainConfig, deployed: int = 0) -> None:
        self.client = client
        self.chain = chain
        self.tag_supported = chain.use_finalized_tag
        self.highest_seen = -1
        self.deployed = deployed
        self.seen: dict[str, int] = {}  # url -> the last plausible head it reported

    async def _head(self) -> int:
        """The head, read again (another endpoint first) while the answer cannot be true."""
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(READ_ATTEMPTS),
            retry=retry_if_exception_type(_ImplausibleHead),
            reraise=True,
        ):
            with attempt:
                return await self._head_once()
        raise AssertionError("unreachable")

    async def _head_once(self) -> int:
        if len(self.client.endpoints) > 1:
            highest = await self._highest_head()
            if highest is not None:
                return highest
        head_hex, url = await self.client.call_with_endpoint("eth_blockNumber")
        try:
            head = int(head_hex, 16)
        except (TypeError, ValueError):
            problem: str | None = f"eth_blockNumber answered {head_hex!r:.40}"
        else:
            problem = head_fault(head, self.highest_seen, self.chain.finality_depth, self.deployed)
        if problem is None:
            return head
        self.client.mark_faulty(url, problem)
        raise _ImplausibleHead(f"{self.chain.name}: {problem}")

    async def _highest_head(self) -> int | None:
        """The highest plausible head of the healthy endpoints; None when none answered
        (then the head is read the ordinary way, with the client's retries)."""
        heads: list[int] = []
        problems: list[str] = []
        for url, answer in await self.client.ask_each("eth_blockNumber"):
            if isinstance(answer, Exception):
                continue
            try:
                head = int(answer, 16)
            except (TypeError, ValueError):
                problem: str | None = f"eth_blockNumber answered {answer!r:.40}"
            else:
                own = self.seen.get(url, -1)
                problem = head_fault(head, own, self.chain.finality_depth, self.deployed)
            if problem is not None:
                self.client.mark_faulty(url, problem)
                problems.append(problem)
                continue
            self.seen[url] = head
            heads.append(head)
        if heads and max(heads) < self.highest_seen - self.chain.finality_depth:
            problems.append(
                f"every endpoint that answered is behind {self.highest_seen} by more than "
                f"the finality depth (highest {max(heads)})"
            )
            heads = []
        if heads:
            return max(heads)
        if problems:
            raise _ImplausibleHead(f"{self.chain.name}: {'; '.join(problems)}")
        return None

    async def read(self) -> Heads:
        head = await self._head()
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
