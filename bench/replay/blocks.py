"""Turn a block plan into what a node serves: transactions, logs (pre-serialized JSON), the
block header, transaction objects and receipts, all hex-encoded the way real nodes encode them.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, NamedTuple

import orjson

from .abi import (
    EMPTY_BLOOM,
    EMPTY_UNCLES_HASH,
    SEL_FORWARD,
    SEL_LIQUIDATION_CALL,
    SEL_METACALL,
    SEL_TRANSMIT,
    T_ANSWER_UPDATED,
    T_LIQUIDATION_CALL,
    T_METACALL_RESULT,
    T_NEW_ROUND,
    T_NEW_TRANSMISSION,
    T_PRIMARY_FEED_UNLOCKED,
    T_RESERVE_DATA_UPDATED,
    T_SECONDARY_ROUND_ID_UPDATED,
    T_SOLVER_TX_RESULT,
    addr_topic,
    addr_word,
    bloom_hex,
    int_topic,
    word,
)
from .chains import BUILDERS
from .history import Aggregator, BlockPlan, ChainHistory

# root of an empty trie: transactionsRoot / receiptsRoot of a block without transactions
EMPTY_TRIE_ROOT = "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"


class LogEntry(NamedTuple):
    address: str
    topics: tuple[str, ...]
    data: str
    tx: int  # transaction index


class TxEntry(NamedTuple):
    hash: str
    position: int  # transactionIndex
    sender: str
    to: str
    value: int
    input: str
    gas_used: int
    log_start: int  # logs[log_start:log_end] belong to this transaction
    log_end: int
    log_prefix: str  # the JSON fields its logs share, up to the logIndex value


class RenderedBlock(NamedTuple):
    number: int
    hash: str
    txs: tuple[TxEntry, ...]
    logs: tuple[LogEntry, ...]
    raw: list[bytes | None]  # JSON of each log, filled when first served
    liq_logs: tuple[int, ...]  # log index of each planned liquidation, in plan order
    plan: BlockPlan

    def log_json(self, i: int) -> bytes:
        raw = self.raw[i]
        if raw is None:
            e = self.logs[i]
            raw = self.raw[i] = (
                '{"address":"'
                + e.address
                + '","topics":["'
                + '","'.join(e.topics)
                + '"],"data":"'
                + e.data
                + self.txs[e.tx].log_prefix
                + hex(i)
                + '","removed":false}'
            ).encode()
        return raw


_RawLog = tuple[str, tuple[str, ...], str]  # address, topics, data


class _Builder:
    """Collects a block's transactions and logs in order."""

    def __init__(self) -> None:
        self.txs: list[tuple[str, str, int, str, int, list[_RawLog]]] = []

    def tx(self, sender: str, to: str, value: int, data: str, gas: int) -> list[_RawLog]:
        logs: list[_RawLog] = []
        self.txs.append((sender, to, value, data, gas, logs))
        return logs


def _agg_logs(
    ch: ChainHistory, agg: Aggregator, n: int, seq: int, *, full: bool, secondary: bool
) -> list[_RawLog]:
    """DualAggregator logs of one report, in the real contract's order: on the secondary
    (SVR) route SecondaryRoundIdUpdated first, then the full set of a new round."""
    round_id = ((n - ch.start) * 8 + seq + 1) & 0xFFFFFFFF
    rt = int_topic(round_id)
    out: list[_RawLog] = []
    if secondary:
        out.append((agg.address, (T_SECONDARY_ROUND_ID_UPDATED, rt), "0x"))
    if full:
        answer = ch.price(agg.assets[0], n)
        ts = ch.timestamp(n)
        transmitter = agg.transmitters[seq & 3]
        w_answer = word(answer)
        data = (
            "0x"
            + w_answer
            + addr_word(transmitter)
            + word(ts - 3)
            + word(0x100)
            + word(0x1A0)
            + word(0)
            + agg.config_digest
            + word((n - ch.start) & 0xFFFFFFFFFF)
            + word(4)
            + w_answer * 4
            + word(4)
            + "00010203"
            + "0" * 56
        )
        out.append((agg.address, (T_NEW_TRANSMISSION, rt), data))
        out.append((agg.address, (T_NEW_ROUND, rt, addr_topic(transmitter)), "0x" + word(ts)))
        out.append((agg.address, (T_ANSWER_UPDATED, int_topic(answer), rt), "0x" + word(ts)))
    return out


def _rdu_data(asset: int, n: int) -> str:
    """ReserveDataUpdated data: liquidity rate, stable rate, variable rate, two indexes (ray)."""
    key = (asset, n % 7)
    data = _RDU_CACHE.get(key)
    if data is None:
        ray = 10**27
        rate = ray // 100 * (2 + asset % 5) + key[1] * 10**22
        data = _RDU_CACHE[key] = (
            "0x"
            + word(rate)
            + word(0)
            + word(rate * 3 // 2)
            + word(ray + rate // 10)
            + word(ray + rate // 7)
        )
    return data


_RDU_CACHE: dict[tuple[int, int], str] = {}


def render_block(ch: ChainHistory, plan: BlockPlan) -> RenderedBlock:
    n = plan.number
    b = _Builder()
    pool = ch.spec.pool
    assets = ch.assets
    asset_topics = ch.asset_topics
    model = ch.spec.svr_model
    seq = 0
    if plan.primary_agg >= 0:
        agg = ch.aggregators[plan.primary_agg]
        logs = b.tx(agg.transmitters[0], agg.address, 0, SEL_TRANSMIT + word(n), 240_000)
        logs.extend(_agg_logs(ch, agg, n, seq, full=True, secondary=False))
        seq += 1
    if plan.foreign_atlas and ch.atlas:
        solver = ch.derive_address("other-solver")
        logs = b.tx(ch.bundler, ch.atlas, 0, SEL_METACALL + word(n), 610_000)
        logs.append(
            (
                ch.atlas,
                (
                    T_SOLVER_TX_RESULT,
                    addr_topic(solver),
                    addr_topic(ch.derive_address("other-eoa")),
                    addr_topic(ch.foreign_dapp),
                ),
                "0x" + word(0) + word(10**15 + n % 10**15) + word(1) + word(1) + word(0),
            )
        )
        logs.append(
            (
                ch.atlas,
                (T_METACALL_RESULT, addr_topic(ch.bundler), addr_topic(ch.bundler)),
                "0x" + word(1) + word(0) + word(0),
            )
        )
    liq_positions: list[tuple[int, int]] = []  # (tx number, position of the LiquidationCall)
    for liq in plan.liqs:
        user = ch.user_address(liq.user)
        liquidator = ch.liquidators[liq.liquidator]
        eoa = ch.liquidator_eoas[liq.liquidator]
        lc_data = (
            "0x"
            + word(liq.debt_amount)
            + word(liq.collateral_amount)
            + addr_word(liquidator)
            + word(1 if liq.receive_atoken else 0)
        )
        lc: _RawLog = (
            pool,
            (
                T_LIQUIDATION_CALL,
                asset_topics[liq.collateral],
                asset_topics[liq.debt],
                addr_topic(user),
            ),
            lc_data,
        )
        rdu: _RawLog = (
            pool,
            (T_RESERVE_DATA_UPDATED, asset_topics[liq.debt]),
            _rdu_data(liq.debt, n),
        )
        call_input = (
            SEL_LIQUIDATION_CALL
            + addr_word(assets[liq.collateral].address)
            + addr_word(assets[liq.debt].address)
            + addr_word(user)
            + word(liq.debt_amount)
            + word(1 if liq.receive_atoken else 0)
        )
        if liq.route >= 0 and model == "atlas" and ch.atlas and ch.dapp_control:
            agg = ch.aggregators[liq.route]
            logs = b.tx(ch.bundler, ch.atlas, 0, SEL_METACALL + call_input[10:], 1_150_000)
            logs.extend(_agg_logs(ch, agg, n, seq, full=True, secondary=True))
            seq += 1
            dapp = addr_topic(ch.dapp_control)
            if liq.failed_solver:
                k = (liq.liquidator + 1) % len(ch.liquidators)
                logs.append(
                    (
                        ch.atlas,
                        (
                            T_SOLVER_TX_RESULT,
                            addr_topic(ch.liquidators[k]),
                            addr_topic(ch.liquidator_eoas[k]),
                            dapp,
                        ),
                        "0x"
                        + word(0)
                        + word(liq.bid_wei * 11 // 10)
                        + word(1)
                        + word(0)
                        + word(1 << 11),
                    )
                )
            logs.append(rdu)
            liq_positions.append((len(b.txs) - 1, len(logs)))
            logs.append(lc)
            logs.append(
                (
                    ch.atlas,
                    (T_SOLVER_TX_RESULT, addr_topic(liquidator), addr_topic(eoa), dapp),
                    "0x" + word(0) + word(liq.bid_wei) + word(1) + word(1) + word(0),
                )
            )
            logs.append(
                (
                    ch.atlas,
                    (T_METACALL_RESULT, addr_topic(ch.bundler), addr_topic(ch.bundler)),
                    "0x" + word(1) + word(liq.bid_wei // 20) + word(0),
                )
            )
            continue
        if liq.route >= 0 and model == "mev-share":
            agg = ch.aggregators[liq.route]
            logs = b.tx(
                agg.transmitters[seq & 3],
                ch.forwarder,
                0,
                SEL_FORWARD + addr_word(agg.address) + word(64) + word(0),
                260_000,
            )
            logs.extend(_agg_logs(ch, agg, n, seq, full=True, secondary=True))
            seq += 1
        logs = b.tx(eoa, pool, 0, call_input, 330_000 + liq.user % 90_000)
        logs.append(rdu)
        liq_positions.append((len(b.txs) - 1, len(logs)))
        logs.append(lc)
    if plan.unlock_agg >= 0:
        agg = ch.aggregators[plan.unlock_agg]
        logs = b.tx(agg.transmitters[1], agg.address, 0, SEL_TRANSMIT + word(n + 1), 90_000)
        rt = int_topic(((n - ch.start) * 8 + seq + 1) & 0xFFFFFFFF)
        logs.append((agg.address, (T_PRIMARY_FEED_UNLOCKED, rt), "0x"))
    if model == "mev-share":
        builder = block_builder(ch, n)
        for liq in plan.liqs:
            if liq.route >= 0:
                b.tx(builder, ch.recipients[0], liq.bid_wei, "0x", 21_000)
        b.tx(builder, ch.fee_recipients[n & 15], plan.proposer_wei, "0x", 21_000)

    bh = ch.block_hash(n)
    bn = hex(n)
    txs: list[TxEntry] = []
    entries: list[LogEntry] = []
    first_log_of_tx: list[int] = []
    for ti, (sender, to, value, data, gas, raw_logs) in enumerate(b.txs):
        th = ch.tx_hash(n, ti)
        start = len(entries)
        first_log_of_tx.append(start)
        prefix = (
            f'","blockNumber":"{bn}","transactionHash":"{th}","transactionIndex":"{hex(ti)}"'
            f',"blockHash":"{bh}","logIndex":"'
        )
        for address, topics, ldata in raw_logs:
            entries.append(LogEntry(address, topics, ldata, ti))
        txs.append(TxEntry(th, ti, sender, to, value, data, gas, start, len(entries), prefix))
    liq_logs = tuple(first_log_of_tx[t] + p for t, p in liq_positions)
    return RenderedBlock(n, bh, tuple(txs), tuple(entries), [None] * len(entries), liq_logs, plan)


def block_builder(ch: ChainHistory, n: int) -> str:
    """The block's fee recipient: on MEV-Share chains the builder that pays the refunds."""
    return BUILDERS[n & 1] if ch.spec.svr_model == "mev-share" else ch.coinbase


class BlockCache:
    """LRU of rendered blocks bounded by the number of logs they hold."""

    def __init__(self, max_logs: int = 8_000) -> None:
        self.max_logs = max_logs
        self._items: OrderedDict[int, RenderedBlock] = OrderedDict()
        self._logs = 0

    def get(self, ch: ChainHistory, n: int) -> RenderedBlock | None:
        rb = self._items.get(n)
        if rb is not None:
            self._items.move_to_end(n)
            return rb
        plan = ch.plan(n)
        if plan is None:
            return None
        rb = render_block(ch, plan)
        self._items[n] = rb
        self._logs += len(rb.logs) + 1
        while self._logs > self.max_logs and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._logs -= len(old.logs) + 1
        return rb


# --------------------------------------------------------------------------- JSON objects
def _digest_hex(ch: ChainHistory, label: bytes, n: int) -> str:
    return (
        "0x"
        + hashlib.blake2b(label + n.to_bytes(8, "big"), key=ch._k_block, digest_size=32).hexdigest()
    )


def block_bloom(rb: RenderedBlock | None) -> str:
    if rb is None or not rb.logs:
        return EMPTY_BLOOM
    items: list[bytes] = []
    for e in rb.logs:
        items.append(bytes.fromhex(e.address[2:]))
        items.extend(bytes.fromhex(t[2:]) for t in e.topics)
    return bloom_hex(items)


def tx_object(ch: ChainHistory, rb: RenderedBlock, tx: TxEntry) -> dict[str, Any]:
    n = rb.number
    base_fee = _base_fee(ch, n)
    nonce = int(tx.hash[2:8], 16)
    return {
        "blockHash": rb.hash,
        "blockNumber": hex(n),
        "from": tx.sender,
        "gas": hex(tx.gas_used * 3 // 2),
        "gasPrice": hex(base_fee + 10**8),
        "maxFeePerGas": hex(base_fee * 2 + 10**8),
        "maxPriorityFeePerGas": hex(10**8),
        "hash": tx.hash,
        "input": tx.input,
        "nonce": hex(nonce),
        "to": tx.to,
        "transactionIndex": hex(tx.position),
        "value": hex(tx.value),
        "type": "0x2",
        "accessList": [],
        "chainId": hex(ch.chain_id),
        "v": "0x1",
        "yParity": "0x1",
        "r": "0x" + tx.hash[:1:-1],
        "s": "0x" + rb.hash[:1:-1],
    }


def _base_fee(ch: ChainHistory, n: int) -> int:
    if ch.spec.block_time_ms < 1000:
        return 10_000_000  # Arbitrum's 0.01 gwei floor
    return 10**9 + (n * 7919) % (20 * 10**9)


def block_object(ch: ChainHistory, n: int, rb: RenderedBlock | None, full: bool) -> dict[str, Any]:
    txs: list[Any]
    if rb is None:
        txs = []
        gas_used = 0
        tx_root = receipts_root = EMPTY_TRIE_ROOT
    else:
        txs = [tx_object(ch, rb, t) for t in rb.txs] if full else [t.hash for t in rb.txs]
        gas_used = sum(t.gas_used for t in rb.txs)
        tx_root = _digest_hex(ch, b"txroot", n)
        receipts_root = _digest_hex(ch, b"rcroot", n)
    out: dict[str, Any] = {
        "number": hex(n),
        "hash": ch.block_hash(n),
        "parentHash": ch.block_hash(n - 1),
        "timestamp": hex(ch.timestamp(n)),
        "nonce": "0x0000000000000000",
        "sha3Uncles": EMPTY_UNCLES_HASH,
        "logsBloom": block_bloom(rb),
        "transactionsRoot": tx_root,
        "stateRoot": _digest_hex(ch, b"state", n),
        "receiptsRoot": receipts_root,
        "miner": block_builder(ch, n),
        "difficulty": "0x0",
        "extraData": "0x",
        "size": hex(620 + 180 * len(txs)),
        "gasLimit": hex(30_000_000 if ch.spec.block_time_ms >= 1000 else 1_125_899_906_842_624),
        "gasUsed": hex(gas_used),
        "baseFeePerGas": hex(_base_fee(ch, n)),
        "mixHash": _digest_hex(ch, b"mix", n),
        "uncles": [],
        "transactions": txs,
    }
    return out


def receipt_object(ch: ChainHistory, rb: RenderedBlock, tx: TxEntry) -> dict[str, Any]:

    logs = [orjson.loads(rb.log_json(i)) for i in range(tx.log_start, tx.log_end)]
    items: list[bytes] = []
    for e in rb.logs[tx.log_start : tx.log_end]:
        items.append(bytes.fromhex(e.address[2:]))
        items.extend(bytes.fromhex(t[2:]) for t in e.topics)
    cumulative = sum(t.gas_used for t in rb.txs[: tx.position + 1])
    return {
        "blockHash": rb.hash,
        "blockNumber": hex(rb.number),
        "contractAddress": None,
        "cumulativeGasUsed": hex(cumulative),
        "effectiveGasPrice": hex(_base_fee(ch, rb.number) + 10**8),
        "from": tx.sender,
        "gasUsed": hex(tx.gas_used),
        "logs": logs,
        "logsBloom": bloom_hex(items) if items else EMPTY_BLOOM,
        "status": "0x1",
        "to": tx.to,
        "transactionHash": tx.hash,
        "transactionIndex": hex(tx.position),
        "type": "0x2",
    }
