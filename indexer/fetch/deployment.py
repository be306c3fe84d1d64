"""The block a contract was deployed in, found on-chain: a binary search over eth_getCode.

Used for pools whose first block is not confirmed in the configuration (the Aave address
book has no start blocks): about 25 calls on a chain of 20M blocks, once per pool, then kept
in the database. Needs a node with historical state (as prices at past blocks do).
"""

from __future__ import annotations

from indexer.rpc.client import RpcClient
from indexer.rpc.errors import EndpointFault, RpcError


class NoCode(Exception):
    """The address has no code at the head: a wrong address, or the wrong chain."""


class NoHistory(Exception):
    """The node cannot answer for past blocks (not an archive node)."""


async def _has_code(client: RpcClient, address: str, block: int) -> bool:
    try:
        code = await client.call("eth_getCode", [address, hex(block)])
    except RpcError as exc:
        raise NoHistory(
            f"eth_getCode({address}) at block {block} failed ({exc}); the node keeps no "
            "history there: use an archive node, or set the pool's start_block"
        ) from None
    if not isinstance(code, str) or not code.startswith("0x"):
        raise EndpointFault(f"eth_getCode answered {code!r:.40}")
    return len(code) > 2


async def deployment_block(client: RpcClient, address: str, head: int) -> int:
    """The first block at which `address` has code (the block of its creation)."""
    if not await _has_code(client, address, head):
        raise NoCode(f"{address} has no code at block {head} (head)")
    low, high = 0, head  # no code at `low`, code at `high`
    if await _has_code(client, address, 0):
        return 0
    while high - low > 1:
        middle = (low + high) // 2
        if await _has_code(client, address, middle):
            high = middle
        else:
            low = middle
    return high
