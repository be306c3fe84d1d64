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


async def fetch_headers(client: RpcClient, numbers: Iterable[int]) -> dict[int, Header]:
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    answers = await client.batch([("eth_getBlockByNumber", [hex(n), False]) for n in wanted])
    headers: dict[int, Header] = {}
    for number, answer in zip(wanted, answers, strict=True):
        if isinstance(answer, RpcError):
            raise answer
        header = parse_header(answer, number)
        if header.number != number:
            raise EndpointFault(f"asked for block {number}, got {header.number}")
        headers[number] = header
    return headers
