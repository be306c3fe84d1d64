"""How a block range is split when a provider refuses it, and how ranges run concurrently.

The sizer grows the span after successes and shrinks it on refusals: to the provider's
suggested range when that is actually smaller, otherwise by half, down to a single block.
It also sizes spans by what they return: a span that brought more than `target_logs` logs
makes the next one proportionally narrower (and a sparse one lets it grow back), so a crash
window, where a few blocks hold thousands of liquidations, never turns into one huge answer
held in memory, whatever the provider would accept. The first span into such a window
cannot know its density: an answer longer than MAX_ANSWER_BYTES is not read at all, and the
span is split as if the provider had refused it.

With two or more endpoints, every eth_getLogs answer is checked against a second endpoint
whose head has reached the range's end (nodes do disagree: one has not indexed a block's
logs yet, another lost some). When the two answers differ, a log is kept if both endpoints
place its block at the log's block hash; the endpoint that missed kept logs is cooled
down. If the endpoints disagree about a block itself, the range is retried later. With one
endpoint there is nobody to ask: a node that silently drops logs is not detected
(docs/RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from indexer.rpc.client import Endpoint, RpcClient
from indexer.rpc.errors import (
    AllEndpointsFailed,
    EndpointFault,
    RangeTooLarge,
    RpcError,
    TransientError,
)

Log = dict[str, Any]

SINGLE_BLOCK_RETRIES = 3  # a one-block range refused this many times in a row is too large
TARGET_LOGS = 2000  # logs one eth_getLogs span should bring, about (memory, not the provider)
MAX_ANSWER_BYTES = 4 << 20  # a longer eth_getLogs answer is not read: the span is split


class BlockTooLarge(Exception):
    """A single block holds more logs than the provider will return: nothing left to split."""


class RangeSizer:
    """Adaptive eth_getLogs span, shared by the ranges in flight on one chain."""

    def __init__(
        self, maximum: int, initial: int | None = None, target_logs: int = TARGET_LOGS
    ) -> None:
        self.maximum = max(1, maximum)
        self.size = min(self.maximum, initial or self.maximum)
        self.target_logs = max(1, target_logs)
        self.refusals = 0

    def success(self, span: int, logs: int | None = None) -> None:
        """A span of `span` blocks answered with `logs` logs (None: not counted)."""
        fit = self.maximum if not logs else max(1, span * self.target_logs // logs)
        if logs is not None and logs > self.target_logs:
            self.size = max(1, min(self.size, fit))
        elif span >= self.size:
            self.size = max(1, min(self.maximum, self.size * 2, max(self.size, fit)))

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
    logs, _ = await fetch_some(client, log_filter, start, end, sizer)
    return logs


async def fetch_some(
    client: RpcClient,
    log_filter: LogFilter,
    start: int,
    end: int,
    sizer: RangeSizer,
    max_logs: int | None = None,
) -> tuple[list[Log], int]:
    """Every log of [start, last] and `last`: `end`, or earlier when `max_logs` logs were
    reached at a span boundary (the caller goes on from last + 1). With several endpoints,
    each span's second opinion runs while the next span is fetched."""
    pieces: list[asyncio.Task[list[Log]]] = []
    try:
        last = await _fetch_spans(client, log_filter, start, end, sizer, max_logs, pieces)
        parts = await asyncio.gather(*pieces)
    except BaseException:
        for task in pieces:
            task.cancel()
        await asyncio.gather(*pieces, return_exceptions=True)
        raise
    return [log for part in parts for log in part], last


async def _fetch_spans(
    client: RpcClient,
    log_filter: LogFilter,
    start: int,
    end: int,
    sizer: RangeSizer,
    max_logs: int | None,
    pieces: list[asyncio.Task[list[Log]]],
) -> int:
    """Fetch the spans of [start, end] one after another into `pieces` (each span's logs,
    checked against a second endpoint where there is one); returns the last block done."""
    count = 0
    cursor = start
    span = min(sizer.size, end - start + 1)
    single_refusals = 0
    while cursor <= end:
        upper = min(end, cursor + span - 1)
        width = upper - cursor + 1
        check = _logs_check(cursor, upper, client.chain)
        try:
            logs, url = await client.call_with_endpoint(
                "eth_getLogs",
                [log_filter.params(cursor, upper)],
                check=check,
                max_bytes=None if width == 1 else MAX_ANSWER_BYTES,
            )
        except RangeTooLarge as exc:
            if width == 1:
                # Providers also refuse under load; only a refusal that repeats is final.
                single_refusals += 1
                if single_refusals > SINGLE_BLOCK_RETRIES:
                    raise BlockTooLarge(
                        f"{client.chain}: block {cursor} has more logs than the provider returns"
                    ) from None
                await asyncio.sleep(0.2 * single_refusals)
                continue
            span = sizer.refused(width, exc.suggested)
            continue
        except AllEndpointsFailed:
            if width == 1:
                raise
            span = sizer.refused(width, None)  # timeouts on wide ranges: try narrower
            continue
        single_refusals = 0
        if len(client.endpoints) > 1:
            pieces.append(
                asyncio.ensure_future(second_opinion(client, log_filter, cursor, upper, logs, url))
            )
        else:
            pieces.append(asyncio.ensure_future(_done(logs)))
        count += len(logs)
        sizer.success(width, len(logs))
        cursor = upper + 1
        if max_logs is not None and count >= max_logs and cursor <= end:
            return upper
        span = min(sizer.size, end - cursor + 1) if cursor <= end else span
    return end


async def _done(logs: list[Log]) -> list[Log]:
    return logs


def _logs_check(start: int, end: int, chain: str) -> Any:
    def check(_call: Any, logs: Any) -> None:
        _check_logs(logs, start, end, chain)

    return check


def _log_key(log: Log) -> tuple[str, str, int]:
    return (
        str(log["blockHash"]).lower(),
        str(log["transactionHash"]).lower(),
        _int(log["logIndex"]),
    )


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


async def _block_hashes(
    client: RpcClient, endpoint: Endpoint, numbers: Sequence[int]
) -> dict[int, str | None]:
    """The endpoint's hash of each block; None where it has no such block."""
    out: dict[int, str | None] = {}
    for number in numbers:
        block = await client.call_on(endpoint, "eth_getBlockByNumber", [hex(number), False])
        out[number] = str(block["hash"]).lower() if isinstance(block, dict) else None
    return out


async def second_opinion(
    client: RpcClient,
    log_filter: LogFilter,
    start: int,
    end: int,
    logs: list[Log],
    url: str,
) -> list[Log]:
    """Check `logs` (what the endpoint at `url` answered for [start, end]) against another
    endpoint; return the logs both agree exist."""
    others = client.second_opinions(url, reached=end)  # a node below `end` lacks some
    if not others:
        client.stats.unchecked_ranges += 1
        return logs
    other = others[0]
    try:
        theirs = await client.call_on(
            other,
            "eth_getLogs",
            [log_filter.params(start, end)],
            check=_logs_check(start, end, client.chain),
        )
    except (AllEndpointsFailed, TransientError, RangeTooLarge, RpcError):
        client.stats.unchecked_ranges += 1  # no second opinion this time: keep the first
        return logs
    client.stats.checked_ranges += 1
    mine = {_log_key(log): log for log in logs}
    their = {_log_key(log): log for log in theirs}
    if mine.keys() == their.keys():
        return logs
    client.stats.log_disagreements += 1
    first = next(e for e in client.endpoints if e.url == url)
    disputed = sorted(
        {
            _int(log["blockNumber"])
            for k, log in {**mine, **their}.items()
            if (k in mine) != (k in their)
        }
    )
    try:
        first_hashes = await _block_hashes(client, first, disputed)
        other_hashes = await _block_hashes(client, other, disputed)
    except (AllEndpointsFailed, TransientError, RpcError) as exc:
        raise TransientError(
            f"{client.chain}: endpoints disagree about the logs of blocks {disputed[:5]} "
            f"and one could not be asked about them ({exc})"
        ) from None
    kept: list[Log] = []
    missed = {url: 0, other.url: 0}
    for key, log in {**their, **mine}.items():
        number = _int(log["blockNumber"])
        if key in mine and key in their:
            kept.append(log)
            continue
        a, b = first_hashes.get(number), other_hashes.get(number)
        if a is not None and b is not None and a != b:
            raise TransientError(
                f"{client.chain}: endpoints disagree about block {number} ({a} vs {b}); "
                "looking again later"
            )
        canonical = a or b  # one of them may not have the block yet: the other decides
        if key[0] == canonical:
            kept.append(log)
            missed[other.url if key in mine else url] += 1
    for endpoint_url, count in missed.items():
        if count:
            reason = f"eth_getLogs missed {count} logs in [{start}, {end}]"
            client.mark_faulty(endpoint_url, reason, pause=None)
    kept.sort(key=lambda log: (_int(log["blockNumber"]), _int(log["logIndex"])))
    return kept


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
        if not isinstance(log.get("blockHash"), str) or not isinstance(
            log.get("transactionHash"), str
        ):
            raise EndpointFault(f"{chain}: eth_getLogs returned a log without hashes")
