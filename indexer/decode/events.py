"""Bytes to records: pure functions over eth_getLogs entries, no I/O.

Hex slicing instead of a generic ABI decoder: every event here has a fixed layout, and the
hot path decodes hundreds of thousands of logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from indexer.decode.topics import (
    ANSWER_UPDATED,
    LIQUIDATION_CALL,
    NEW_TRANSMISSION,
    ORACLE_TOPICS,
    PRIMARY_FEED_UNLOCKED,
    SECONDARY_ROUND_ID_UPDATED,
    SOLVER_TX_RESULT,
)

Log = dict[str, Any]


class DecodeError(ValueError):
    """A log that claims a known topic but does not have its layout."""


@dataclass(frozen=True, slots=True)
class LogPosition:
    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int
    address: str
    block_time: int | None = None  # from the log's blockTimestamp, where the node sends it

    @property
    def key(self) -> tuple[str, int]:
        return (self.tx_hash, self.log_index)


@dataclass(frozen=True, slots=True)
class Liquidation:
    pos: LogPosition
    collateral_asset: str
    debt_asset: str
    user: str
    debt_to_cover: int
    liquidated_collateral_amount: int
    liquidator: str
    receive_atoken: bool


@dataclass(frozen=True, slots=True)
class OracleUpdate:
    pos: LogPosition
    kind: str
    route: str | None
    round_id: int | None
    answer: int | None


@dataclass(frozen=True, slots=True)
class SolverResult:
    pos: LogPosition
    solver_to: str
    solver_from: str
    dapp_control: str
    bid_token: str | None  # None: the native coin
    bid_amount: int
    success: bool


def _word_address(word: str) -> str:
    return "0x" + word[-40:].lower()


def _words(data: str, count: int) -> list[str]:
    body = data[2:] if data.startswith("0x") else data
    if len(body) < 64 * count:
        raise DecodeError(f"data has {len(body) // 64} words, expected {count}")
    return [body[i * 64 : (i + 1) * 64] for i in range(count)]


def _signed(word: str, bits: int = 256) -> int:
    value = int(word, 16)
    if value >= 1 << (bits - 1) and bits == 256:
        value -= 1 << 256
    return value


_HASH = re.compile(r"0x[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")


def position(log: Log) -> LogPosition:
    """Where a log sits. Hashes and addresses are checked to be hex: a lying node cannot
    smuggle anything else into the database."""
    try:
        pos = LogPosition(
            block_number=int(log["blockNumber"], 16),
            block_hash=log["blockHash"].lower(),
            tx_hash=log["transactionHash"].lower(),
            tx_index=int(log["transactionIndex"], 16),
            log_index=int(log["logIndex"], 16),
            address=log["address"].lower(),
            block_time=int(log["blockTimestamp"], 16) if log.get("blockTimestamp") else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"log without a complete position: {exc}") from None
    if not (
        _HASH.fullmatch(pos.block_hash)
        and _HASH.fullmatch(pos.tx_hash)
        and _ADDRESS.fullmatch(pos.address)
    ):
        raise DecodeError(f"log with a malformed hash or address in block {pos.block_number}")
    return pos


def decode_liquidation(log: Log) -> Liquidation:
    topics = log["topics"]
    if len(topics) != 4:
        raise DecodeError("LiquidationCall needs 4 topics")
    debt, collateral_amount, liquidator, receive = _words(log["data"], 4)
    return Liquidation(
        pos=position(log),
        collateral_asset=_word_address(topics[1]),
        debt_asset=_word_address(topics[2]),
        user=_word_address(topics[3]),
        debt_to_cover=int(debt, 16),
        liquidated_collateral_amount=int(collateral_amount, 16),
        liquidator=_word_address(liquidator),
        receive_atoken=int(receive, 16) != 0,
    )


def decode_oracle_update(log: Log) -> OracleUpdate:
    topics = log["topics"]
    kind = ORACLE_TOPICS[topics[0]]
    pos = position(log)
    if topics[0] == SECONDARY_ROUND_ID_UPDATED:
        return OracleUpdate(pos, kind, "secondary", int(topics[1], 16), None)
    if topics[0] == PRIMARY_FEED_UNLOCKED:
        return OracleUpdate(pos, kind, "primary", int(topics[1], 16), None)
    if topics[0] == ANSWER_UPDATED:
        return OracleUpdate(pos, kind, None, int(topics[2], 16), _signed(topics[1]))
    if topics[0] == NEW_TRANSMISSION:
        (answer,) = _words(log["data"], 1)
        value = int(answer, 16)
        if value >= 1 << 255:
            value -= 1 << 256
        return OracleUpdate(pos, kind, None, int(topics[1], 16), value)
    return OracleUpdate(pos, kind, None, int(topics[1], 16) if len(topics) > 1 else None, None)


def decode_solver_result(log: Log) -> SolverResult:
    topics = log["topics"]
    if len(topics) != 4:
        raise DecodeError("SolverTxResult needs 4 topics")
    bid_token, bid_amount, _executed, success, _result = _words(log["data"], 5)
    token = _word_address(bid_token)
    return SolverResult(
        pos=position(log),
        solver_to=_word_address(topics[1]),
        solver_from=_word_address(topics[2]),
        dapp_control=_word_address(topics[3]),
        bid_token=None if int(token, 16) == 0 else token,
        bid_amount=int(bid_amount, 16),
        success=int(success, 16) != 0,
    )


@dataclass(slots=True)
class DecodedLogs:
    liquidations: list[Liquidation]
    oracle_updates: list[OracleUpdate]
    solver_results: list[SolverResult]


def decode_logs(
    logs: list[Log], pools: frozenset[str], aggregators: frozenset[str], atlas: str | None
) -> DecodedLogs:
    """Sort logs by emitter and topic into records; unknown or removed logs are skipped."""
    out = DecodedLogs([], [], [])
    for log in logs:
        if log.get("removed"):
            continue
        topics = log.get("topics") or []
        if not topics:
            continue
        address = log["address"].lower()
        topic0 = topics[0]
        if topic0 == LIQUIDATION_CALL and address in pools:
            out.liquidations.append(decode_liquidation(log))
        elif topic0 in ORACLE_TOPICS and address in aggregators:
            out.oracle_updates.append(decode_oracle_update(log))
        elif topic0 == SOLVER_TX_RESULT and atlas is not None and address == atlas:
            out.solver_results.append(decode_solver_result(log))
    return out
