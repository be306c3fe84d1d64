"""Block timestamps and hashes for the blocks that hold events (one batched request)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from indexer.rpc.client import RpcClient
from indexer.rpc.errors import EndpointFault, RpcError


@dataclass(frozen=True, slots=True)
class Header:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


def parse_header(block: Any, number: int | None = None) -> Header:
    if not isinstance(block, dict):
        raise EndpointFault(f"block {number} is null on a node that claims a later head")
    return Header(
        number=int(block["number"], 16),
        hash=block["hash"].lower(),
        parent_hash=block["parentHash"].lower(),
        timestamp=int(block["timestamp"], 16),
    )


def check_block(call: Any, block: Any) -> None:
    """An eth_getBlockByNumber answer must be the block asked for (checked inside the RPC
    attempt, so a node that answers null or another block is retried, elsewhere if possible).
    Only asked for blocks at or below a head the node reported, so null is a fault."""
    number = int(call[1][0], 16)
    if not isinstance(block, dict):
        raise EndpointFault(f"block {number} is null on a node that claims a later head")
    try:
        got = int(block["number"], 16)
        ok = isinstance(block["hash"], str) and isinstance(block["parentHash"], str)
        int(block["timestamp"], 16)
    except (KeyError, TypeError, ValueError):
        raise EndpointFault(f"block {number}: malformed answer") from None
    if got != number or not ok:
        raise EndpointFault(f"asked for block {number}, got {got}")


async def fetch_headers(client: RpcClient, numbers: Iterable[int]) -> dict[int, Header]:
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    answers = await client.batch(
        [("eth_getBlockByNumber", [hex(n), False]) for n in wanted], check=check_block
    )
    headers: dict[int, Header] = {}
    for number, answer in zip(wanted, answers, strict=True):
        if isinstance(answer, RpcError):
            raise answer
        header = parse_header(answer, number)
        if header.number != number:
            raise EndpointFault(f"asked for block {number}, got {header.number}")
        headers[number] = header
    return headers
