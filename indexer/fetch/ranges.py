"""How a block range is split when a provider refuses it, and how ranges run concurrently.

The sizer grows the span after successes and shrinks it on refusals: to the provider's
suggested range when that is actually smaller, otherwise by half, down to a single block.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from indexer.rpc.client import RpcClient
from indexer.rpc.errors import AllEndpointsFailed, EndpointFault, RangeTooLarge, TransientError

Log = dict[str, Any]


class BlockTooLarge(Exception):
    """A single block holds more logs than the provider will return: nothing left to split."""


class RangeSizer:
    """Adaptive eth_getLogs span, shared by the ranges in flight on one chain."""

    def __init__(self, maximum: int, initial: int | None = None) -> None:
        self.maximum = max(1, maximum)
        self.size = min(self.maximum, initial or self.maximum)
        self.refusals = 0

    def success(self, span: int) -> None:
        if span >= self.size:
            self.size = min(self.maximum, self.size * 2)

    def refused(self, span: int, suggested: tuple[int, int] | None) -> int:
        """The next span to try after `span` was refused; always smaller than `span`."""
        self.refusals += 1
        proposal = suggested[1] - suggested[0] + 1 if suggested else 0
        new = proposal if 0 < proposal < span else span // 2
        self.size = max(1, min(self.size, new))
        return max(1, new)


@dataclass(frozen=True, slots=True)
class LogFilter:
    addresses: Sequence[str]
    topics: Sequence[Any]

    def params(self, start: int, end: int) -> dict[str, Any]:
        return {
            "fromBlock": hex(start),
            "toBlock": hex(end),
            "address": list(self.addresses),
            "topics": list(self.topics),
        }


async def fetch_range(
    client: RpcClient, log_filter: LogFilter, start: int, end: int, sizer: RangeSizer
) -> list[Log]:
    """Every log of [start, end], splitting the range as often as the provider asks."""
    out: list[Log] = []
    cursor = start
    span = min(sizer.size, end - start + 1)
    while cursor <= end:
        upper = min(end, cursor + span - 1)
        width = upper - cursor + 1
        try:
            logs = await client.call("eth_getLogs", [log_filter.params(cursor, upper)])
        except RangeTooLarge as exc:
            if width == 1:
                raise BlockTooLarge(
                    f"{client.chain}: block {cursor} has more logs than the provider returns"
                ) from None
            span = sizer.refused(width, exc.suggested)
            continue
        except AllEndpointsFailed:
            if width == 1:
                raise
            span = sizer.refused(width, None)  # timeouts on wide ranges: try narrower
            continue
        _check_logs(logs, cursor, upper, client.chain)
        out.extend(logs)
        sizer.success(width)
        cursor = upper + 1
        span = min(sizer.size, end - cursor + 1) if cursor <= end else span
    return out


def _check_logs(logs: Any, start: int, end: int, chain: str) -> None:
    if not isinstance(logs, list):
        raise TransientError(f"{chain}: eth_getLogs answered {type(logs).__name__}, not a list")
    for log in logs:
        try:
            number = int(log["blockNumber"], 16)
        except (KeyError, TypeError, ValueError):
            raise EndpointFault(
                f"{chain}: eth_getLogs returned a log without blockNumber"
            ) from None
        if not start <= number <= end:
            raise EndpointFault(f"{chain}: eth_getLogs returned block {number} outside range")


async def fetch_ordered(
    client: RpcClient,
    log_filter: LogFilter,
    start: int,
    end: int,
    sizer: RangeSizer,
    max_in_flight: int,
) -> AsyncIterator[tuple[int, int, list[Log]]]:
    """Yield (from, to, logs) for consecutive ranges covering [start, end], in order, with
    up to max_in_flight ranges fetched concurrently."""
    pending: list[tuple[int, int, asyncio.Task[list[Log]]]] = []
    cursor = start
    try:
        while cursor <= end or pending:
            while cursor <= end and len(pending) < max_in_flight:
                upper = min(end, cursor + sizer.size - 1)
                task = asyncio.create_task(fetch_range(client, log_filter, cursor, upper, sizer))
                pending.append((cursor, upper, task))
                cursor = upper + 1
            first, last, task = pending.pop(0)
            yield first, last, await task
    finally:
        for _, _, task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*(t for _, _, t in pending), return_exceptions=True)
