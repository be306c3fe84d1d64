"""Bytes to records: pure functions over eth_getLogs entries, no I/O.

Hex slicing instead of a generic ABI decoder: every event here has a fixed layout, and the
hot path decodes hundreds of thousands of logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from indexer.decode.topics import (
    ANSWER_UPDATED,
    ASSET_SOURCE_UPDATED,
    DEFICIT_COVERED,
    DEFICIT_CREATED,
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


class LogPosition(NamedTuple):
    """Where a log sits. A named tuple rather than a frozen dataclass: equally immutable,
    and built several times faster, which counts at one per log."""

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


class Liquidation(NamedTuple):
    """A LiquidationCall (a named tuple for the same reason as LogPosition)."""

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
    """One DualAggregator event. `route` is the transmission's way in, read from the events
    of the same aggregator around it in its transaction (`with_routes`): secondary (the SVR
    route: SecondaryRoundIdUpdated, then the report's NewTransmission, NewRound,
    AnswerUpdated), catch_up (a SecondaryRoundIdUpdated with no report after it: the
    secondary route catching up on a report the public route already stored), primary."""

    pos: LogPosition
    kind: str
    route: str | None
    round_id: int | None
    answer: int | None
    transmitter: str | None = None  # NewTransmission only, as the next three
    observations_timestamp: int | None = None
    config_digest: str | None = None
    epoch_and_round: int | None = None


class SourceUpdate(NamedTuple):
    """AssetSourceUpdated(asset, source) of an AaveOracle: from here on the oracle prices
    `asset` with `source`."""

    pos: LogPosition
    asset: str
    source: str


@dataclass(frozen=True, slots=True)
class SolverResult:
    pos: LogPosition
    solver_to: str
    solver_from: str
    dapp_control: str
    bid_token: str | None  # None: the native coin
    bid_amount: int
    success: bool
    executed: bool = True  # false: rejected before execution
    result: int = 0  # Atlas's result bits (SolverOpReverted 1<<17, BidNotPaid 1<<19, ...)


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


# blockHash + transactionHash + address, lowercased and joined: one match checks all three.
_POSITION = re.compile(r"0x[0-9a-f]{64}0x[0-9a-f]{64}0x[0-9a-f]{40}")
# A LiquidationCall's position fields (as _POSITION), then its three indexed topics and its
# four data words, joined the same way.
_LIQUIDATION = re.compile(
    r"0x[0-9a-f]{64}0x[0-9a-f]{64}0x[0-9a-f]{40}(?:0x[0-9a-f]{64}){3}0x[0-9a-f]{256}"
)
_ZERO_WORD = "0" * 64


def _position(log: Log, joined: str) -> LogPosition:
    """The position of a log whose block hash, transaction hash and address open `joined`
    (lowercased, checked by the caller's regex)."""
    block_time = log.get("blockTimestamp")
    return LogPosition(
        int(log["blockNumber"], 16),
        joined[:66],
        joined[66:132],
        int(log["transactionIndex"], 16),
        int(log["logIndex"], 16),
        joined[132:174],
        int(block_time, 16) if block_time else None,
    )


def position(log: Log) -> LogPosition:
    """Where a log sits. Hashes and addresses are checked to be hex: a lying node cannot
    smuggle anything else into the database."""
    try:
        joined = (log["blockHash"] + log["transactionHash"] + log["address"]).lower()
        pos = _position(log, joined)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"log without a complete position: {exc}") from None
    if not _POSITION.fullmatch(joined):
        raise DecodeError(f"log with a malformed hash or address in block {pos.block_number}")
    return pos


def decode_liquidation(log: Log) -> Liquidation:
    """The hot path: position fields, topics and data are joined, lowercased and checked by
    one regex match, then sliced at constant offsets (the layout is fixed: three 32-byte
    topics, four 32-byte words)."""
    topics = log["topics"]
    if len(topics) != 4:
        raise DecodeError("LiquidationCall needs 4 topics")
    try:
        joined = (
            log["blockHash"]
            + log["transactionHash"]
            + log["address"]
            + topics[1]
            + topics[2]
            + topics[3]
            + log["data"]
        ).lower()
        pos = _position(log, joined)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"LiquidationCall without a complete position or data: {exc}") from None
    if not _LIQUIDATION.fullmatch(joined):
        raise DecodeError(
            f"LiquidationCall with a malformed hash, address, topic or data in block "
            f"{pos.block_number}"
        )
    # offsets: topics at 174, 240, 306; data "0x" at 372, its words at 374, 438, 502, 566
    return Liquidation(
        pos,
        "0x" + joined[200:240],
        "0x" + joined[266:306],
        "0x" + joined[332:372],
        int(joined[374:438], 16),
        int(joined[438:502], 16),
        "0x" + joined[526:566],
        joined[566:630] != _ZERO_WORD,
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
        answer, transmitter, observed, _, _, _, digest, epoch_round = _words(log["data"], 8)
        value = int(answer, 16)
        if value >= 1 << 255:
            value -= 1 << 256
        return OracleUpdate(
            pos,
            kind,
            None,
            int(topics[1], 16),
            value,
            _word_address(transmitter),
            int(observed, 16),
            "0x" + digest.lower(),
            int(epoch_round, 16),
        )
    return OracleUpdate(pos, kind, None, int(topics[1], 16) if len(topics) > 1 else None, None)


def with_routes(updates: list[OracleUpdate]) -> list[OracleUpdate]:
    """The updates with their routes (see OracleUpdate), from each aggregator's events
    within each transaction: a round both marked by SecondaryRoundIdUpdated and transmitted
    (NewTransmission) there is a new SVR report, whichever order the two come in (the real
    contract marks first; an older emitter last); a mark alone is a catch-up; a round
    transmitted without a mark came by the public route."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, update in enumerate(updates):
        groups.setdefault((update.pos.tx_hash, update.pos.address), []).append(i)
    out = list(updates)
    for members in groups.values():
        marked = {
            updates[i].round_id for i in members if updates[i].kind == "secondary_round_id_updated"
        }
        sent = {updates[i].round_id for i in members if updates[i].kind == "new_transmission"}
        for i in members:
            update = updates[i]
            if update.kind == "secondary_round_id_updated":
                route = "secondary" if update.round_id in sent else "catch_up"
            elif update.kind == "primary_feed_unlocked":
                route = "primary"
            else:  # NewTransmission, NewRound, AnswerUpdated: their round's
                route = "secondary" if update.round_id in marked else "primary"
            if route != update.route:
                out[i] = replace(update, route=route)
    return out


def decode_solver_result(log: Log) -> SolverResult:
    topics = log["topics"]
    if len(topics) != 4:
        raise DecodeError("SolverTxResult needs 4 topics")
    bid_token, bid_amount, executed, success, result = _words(log["data"], 5)
    token = _word_address(bid_token)
    return SolverResult(
        pos=position(log),
        solver_to=_word_address(topics[1]),
        solver_from=_word_address(topics[2]),
        dapp_control=_word_address(topics[3]),
        bid_token=None if int(token, 16) == 0 else token,
        bid_amount=int(bid_amount, 16),
        success=int(success, 16) != 0,
        executed=int(executed, 16) != 0,
        result=int(result, 16),
    )


def decode_source_update(log: Log) -> SourceUpdate:
    topics = log["topics"]
    if len(topics) != 3:
        raise DecodeError("AssetSourceUpdated needs 3 topics")
    for word in topics[1:]:
        if not isinstance(word, str) or not _TOPIC.fullmatch(word.lower()):
            raise DecodeError(f"AssetSourceUpdated with a malformed topic {word!r:.70}")
    return SourceUpdate(position(log), _word_address(topics[1]), _word_address(topics[2]))


_TOPIC = re.compile(r"0x[0-9a-f]{64}")


class Deficit(NamedTuple):
    """DeficitCreated(user, debtAsset, amount) or DeficitCovered(reserve, caller, amount) of
    a V3.3+ Pool: bad debt booked in a liquidation, or covered by the Umbrella."""

    pos: LogPosition
    kind: str  # "created" | "covered"
    user: str | None  # created: the borrower
    asset: str
    amount: int
    caller: str | None  # covered: who covered it


def decode_deficit(log: Log) -> Deficit:
    topics = log["topics"]
    created = topics[0] == DEFICIT_CREATED
    if len(topics) != (3 if created else 2):
        raise DecodeError(f"{'DeficitCreated' if created else 'DeficitCovered'}: wrong topics")
    for word in topics[1:]:
        if not isinstance(word, str) or not _TOPIC.fullmatch(word.lower()):
            raise DecodeError(f"deficit event with a malformed topic {word!r:.70}")
    pos = position(log)
    if created:
        (amount,) = _words(log["data"], 1)
        return Deficit(
            pos,
            "created",
            _word_address(topics[1]),
            _word_address(topics[2]),
            int(amount, 16),
            None,
        )
    caller, amount = _words(log["data"], 2)
    return Deficit(
        pos, "covered", None, _word_address(topics[1]), int(amount, 16), _word_address(caller)
    )


@dataclass(slots=True)
class DecodedLogs:
    liquidations: list[Liquidation]
    oracle_updates: list[OracleUpdate]
    solver_results: list[SolverResult]
    source_updates: list[SourceUpdate] = field(default_factory=list)
    deficits: list[Deficit] = field(default_factory=list)


def decode_logs(
    logs: list[Log],
    pools: frozenset[str],
    aggregators: frozenset[str],
    atlas: str | None,
    oracles: frozenset[str] = frozenset(),
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
        elif topic0 == ASSET_SOURCE_UPDATED and address in oracles:
            out.source_updates.append(decode_source_update(log))
        elif topic0 in (DEFICIT_CREATED, DEFICIT_COVERED) and address in pools:
            out.deficits.append(decode_deficit(log))
    if out.oracle_updates:
        out.oracle_updates = with_routes(out.oracle_updates)
    return out
