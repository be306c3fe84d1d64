"""A local JSON-RPC stand-in for an Ethereum node, serving a scripted chain.

No real node can be reached from this machine, so this server takes one's place where a test
must read on-chain history through the indexer's own RPC client: a real HTTP server (aiohttp,
on a free port of 127.0.0.1) that answers JSON-RPC requests and batches for eth_chainId,
eth_blockNumber, eth_getBlockByNumber (headers, or full transactions, with the block's fee
recipient as `miner`), eth_getCode, eth_getLogs (with `blockTimestamp`, as newer nodes send
it, or without) and eth_call, like a node would, including its refusals: eth_getLogs spans
over a limit get a real provider's error text, and a function a contract lacks reverts
("execution reverted"). A call is answered at the state after the block it names.

`ethereum_history` scripts the Ethereum history of Aave's price sources at the real addresses
of the Aave address book (npm @aave-dao/aave-address-book 4.68.1): the Core and Prime pools
and AaveOracles, the assets' underlyings, the Chainlink feed proxies and the Aave SVR feeds.
The contracts' answers are a scripted model of those contracts, not recordings of the chain,
and the blocks are approximations of when things happened. The model's assumptions:

- a plain Chainlink feed (ETH/USD, BTC/USD, LINK/USD, USDC/USD) is a proxy answering
  aggregator() with an OCR2 aggregator whose typeAndVersion() is
  "AccessControlledOffchainAggregator 1.0.0" (the aggregators' addresses are scripted: the
  address book lists proxies only); a proxy changes aggregator over time (a phase change);
- an Aave SVR feed AAVE_SVR_<PAIR> is a proxy whose aggregator() is its AAVE_SVR_<PAIR>_BASE
  twin, which answers typeAndVersion() "DualAggregator 1.0.0" (the address book does not say
  which of the two is which);
- a CAPO adapter answers BASE_TO_USD_AGGREGATOR() with the feed it multiplies by;
- GHO's fixed-price oracle answers none of the probes (it reverts, in a node's code-3 form);
- Chainlink's non-Aave SVR ETH/USD feed (SVR_ETH__USD, DualAggregator SVR_ETH__USD_BASE) is
  the source another protocol's oracle (scripted address) sets: no Aave source is behind it;
- an AaveOracle prices an asset with the source of its last AssetSourceUpdated: a feed's
  price is the latest AnswerUpdated of the aggregator behind its proxy (either route: the
  SVR proxy's cutoff is not modelled), or a scripted answer before any; an asset without a
  source, or a source without an answer, reverts (no fallback oracle is set);
- the Core pool's getReserveData names each listed asset's aToken, which answers
  RESERVE_TREASURY_ADDRESS() with the Collector; tokens answer symbol() and decimals().

`mev_share_range` adds, on top of that history, a block range around block 25430607 shaped
like the MEV-Share fingerprint of a won SVR auction (the oracle update, the searcher's
back-run, the builder's refund to Chainlink's SVR fee Safe), and the look-alikes that are
not one: an unsold update, a payment to the Safe from someone other than the builder, and a
DualAggregator that stands behind no Aave source.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from eth_abi import decode, encode
from eth_utils import keccak

# -- the scripted chain -------------------------------------------------------------------

MERGE_BLOCK = 15_537_394  # Ethereum's first proof-of-stake block, and its timestamp
MERGE_TIME = 1_663_224_179
GENESIS_TIME = 1_438_269_973


def selector(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


def event_topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


def address_topic(address: str) -> str:
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


class Revert(Exception):
    """A computed function reverted (answered as the contract's revert form)."""


#: A function whose answer depends on its arguments: (argument bytes, block) -> (ABI type,
#: value); raises Revert.
Computed = Callable[[bytes, int], tuple[str, object]]


@dataclass
class Contract:
    """Code at `address` from block `created`, and what its functions return over time:
    per selector, (from block, ABI type, value) in block order, or computed from the call's
    arguments (`computes`). Anything else reverts."""

    address: str
    label: str
    created: int
    functions: dict[str, list[tuple[int, str, object]]] = field(default_factory=dict)
    computed: dict[str, Computed] = field(default_factory=dict)
    revert_code: int = -32000  # geth's form for a revert without data; 3 carries data

    def computes(self, signature: str, function: Computed) -> Contract:
        """`signature` answers what `function` makes of the arguments at the block."""
        self.computed[selector(signature)] = function
        return self

    def returns(
        self, signature: str, abi_type: str, value: object, since: int | None = None
    ) -> Contract:
        """From block `since` (its creation if None), `signature` returns `value`."""
        entries = self.functions.setdefault(selector(signature), [])
        entries.append((self.created if since is None else since, abi_type, value))
        entries.sort(key=lambda e: e[0])
        return self

    def answer(self, sel: str, block: int) -> tuple[str, object] | None:
        entries = self.functions.get(sel, [])
        i = bisect.bisect_right([e[0] for e in entries], block)
        return None if i == 0 else (entries[i - 1][1], entries[i - 1][2])

    @property
    def code(self) -> str:
        return "0x608060405234801561001057600080fd5b50" + keccak(text=self.label).hex()


@dataclass(frozen=True)
class ScriptedLog:
    block: int
    tx_index: int
    log_index: int
    address: str
    topics: tuple[str, ...]
    data: str = "0x"


@dataclass(frozen=True)
class ScriptedTx:
    """A transaction as eth_getBlockByNumber(..., true) lists it."""

    block: int
    index: int
    sender: str
    to: str | None
    value: int = 0
    data: str = "0x"


DEFAULT_FEE_RECIPIENT_LABEL = "a block's fee recipient"


@dataclass
class ScriptedChain:
    """Blocks 0..head (hashes and timestamps computed), contracts, logs and transactions
    (a block's transactions are the scripted ones; a transaction index that only logs
    name, or a gap below the block's last index, is filled with an ordinary one)."""

    chain_id: int
    head: int
    finality_depth: int = 64
    salt: str = "ethereum"
    contracts: dict[str, Contract] = field(default_factory=dict)
    logs: list[ScriptedLog] = field(default_factory=list)
    transactions: dict[int, dict[int, ScriptedTx]] = field(default_factory=dict)
    #: a block's fee recipient (its header's `miner`), where it is not the default one
    miners: dict[int, str] = field(default_factory=dict)
    #: per feed aggregator, (from block, answer) before (or besides) its AnswerUpdated logs
    answers: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def deploy(
        self, address: str, label: str, created: int, *, revert_code: int = -32000
    ) -> Contract:
        contract = Contract(address.lower(), label, created, revert_code=revert_code)
        self.contracts[contract.address] = contract
        return contract

    def emit(
        self,
        block: int,
        tx_index: int,
        address: str,
        topics: Sequence[str],
        data: str = "0x",
    ) -> ScriptedLog:
        """A log, placed after the block's logs so far (log indexes count per block)."""
        log_index = sum(1 for log in self.logs if log.block == block)
        earlier = [log for log in self.logs if log.block == block and log.tx_index > tx_index]
        assert not earlier, f"block {block}: transactions are scripted in order"
        log = ScriptedLog(block, tx_index, log_index, address.lower(), tuple(topics), data)
        self.logs.append(log)
        self.logs.sort(key=lambda entry: (entry.block, entry.log_index))
        return log

    def send(
        self,
        block: int,
        index: int,
        sender: str,
        to: str | None,
        value: int = 0,
        data: str = "0x",
    ) -> ScriptedTx:
        """A transaction at `index` of `block` (its logs are emitted separately)."""
        tx = ScriptedTx(block, index, sender.lower(), to.lower() if to else None, value, data)
        txs = self.transactions.setdefault(block, {})
        assert index not in txs, f"block {block}: transaction {index} is scripted twice"
        txs[index] = tx
        return tx

    def block_transactions(self, number: int) -> list[ScriptedTx]:
        """The block's transactions in order, indexes 0..last without a gap."""
        scripted = self.transactions.get(number, {})
        emitters: dict[int, str] = {}
        for log in self.logs:
            if log.block == number:
                emitters.setdefault(log.tx_index, log.address)
        indexes = set(scripted) | set(emitters)
        out = []
        for index in range(max(indexes) + 1 if indexes else 0):
            tx = scripted.get(index)
            if tx is None:
                sender = scripted_address(f"sender of tx {index} in block {number}")
                tx = ScriptedTx(number, index, sender, emitters.get(index, sender))
            out.append(tx)
        return out

    def miner(self, number: int) -> str:
        return self.miners.get(number) or scripted_address(DEFAULT_FEE_RECIPIENT_LABEL)

    def source_of(self, oracle: str, asset: str, block: int) -> str | None:
        """The asset's source in `oracle` after `block`: its last AssetSourceUpdated."""
        topic = address_topic(asset)
        source = None
        for log in self.logs:
            if log.block > block:
                break
            if (
                log.address == oracle
                and log.topics[0] == ASSET_SOURCE_UPDATED
                and log.topics[1] == topic
            ):
                source = "0x" + log.topics[2][-40:]
        return source

    def feed_answer(self, feed: str, block: int) -> int | None:
        """What a feed answers after `block`: its own latest answer, else that of the
        aggregator its proxy points at (a few levels deep); None without one."""
        address = feed.lower()
        for _ in range(4):
            answer = self._latest_answer(address, block)
            if answer is not None:
                return answer
            contract = self.contracts.get(address)
            behind = contract.answer(selector("aggregator()"), block) if contract else None
            if contract is None or contract.created > block or behind is None:
                return None
            address = str(behind[1]).lower()
        return None

    def _latest_answer(self, address: str, block: int) -> int | None:
        found: tuple[tuple[int, int], int] | None = None
        for since, answer in self.answers.get(address, ()):
            if since <= block and (found is None or (since, -1) >= found[0]):
                found = ((since, -1), answer)
        for log in self.logs:
            if log.block > block:
                break
            if log.address == address and log.topics[0] == ANSWER_UPDATED:
                at = (log.block, log.log_index)
                if found is None or at >= found[0]:
                    found = (at, _signed_word(log.topics[1]))
        return None if found is None else found[1]

    @property
    def finalized(self) -> int:
        return max(0, self.head - self.finality_depth)

    def block_hash(self, number: int) -> str:
        return "0x" + keccak(text=f"{self.salt} block {number}").hex()

    def tx_hash(self, block: int, tx_index: int) -> str:
        return "0x" + keccak(text=f"{self.salt} tx {block} {tx_index}").hex()

    def timestamp(self, number: int) -> int:
        if number >= MERGE_BLOCK:
            return MERGE_TIME + 12 * (number - MERGE_BLOCK)
        return GENESIS_TIME + (MERGE_TIME - GENESIS_TIME) * number // MERGE_BLOCK

    def header(self, number: int, full: bool = False) -> dict[str, Any]:
        """The block as eth_getBlockByNumber answers it: transaction hashes, or (`full`)
        the transactions themselves."""
        txs = self.block_transactions(number)
        return {
            "number": hex(number),
            "hash": self.block_hash(number),
            "parentHash": self.block_hash(number - 1) if number else "0x" + "0" * 64,
            "timestamp": hex(self.timestamp(number)),
            "miner": self.miner(number),
            "difficulty": "0x0",
            "gasLimit": hex(36_000_000),
            "gasUsed": hex(21_000 * len(txs)),
            "baseFeePerGas": hex(2 * 10**9),
            "extraData": "0x",
            "nonce": "0x0000000000000000",
            "uncles": [],
            "transactions": [
                self.rpc_tx(tx) if full else self.tx_hash(number, tx.index) for tx in txs
            ],
        }

    def rpc_tx(self, tx: ScriptedTx) -> dict[str, Any]:
        return {
            "blockHash": self.block_hash(tx.block),
            "blockNumber": hex(tx.block),
            "chainId": hex(self.chain_id),
            "from": tx.sender,
            "gas": hex(300_000),
            "gasPrice": hex(3 * 10**9),
            "maxFeePerGas": hex(4 * 10**9),
            "maxPriorityFeePerGas": hex(10**9),
            "hash": self.tx_hash(tx.block, tx.index),
            "input": tx.data,
            "nonce": hex(tx.index),
            "to": tx.to,
            "transactionIndex": hex(tx.index),
            "type": "0x2",
            "value": hex(tx.value),
            "accessList": [],
        }

    def rpc_log(self, log: ScriptedLog, with_time: bool = False) -> dict[str, Any]:
        entry = {
            "address": log.address,
            "topics": list(log.topics),
            "data": log.data,
            "blockNumber": hex(log.block),
            "blockHash": self.block_hash(log.block),
            "transactionHash": self.tx_hash(log.block, log.tx_index),
            "transactionIndex": hex(log.tx_index),
            "logIndex": hex(log.log_index),
            "removed": False,
        }
        if with_time:
            entry["blockTimestamp"] = hex(self.timestamp(log.block))
        return entry


# -- the server ---------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error


def _invalid(message: str) -> _Refused:
    return _Refused({"code": -32602, "message": message})


def range_refusal(style: str, start: int, end: int, limit: int) -> dict[str, Any]:
    """A provider's refusal of an eth_getLogs span over `limit` blocks, in its words:
    QuickNode's names the limit only, Alchemy's also proposes a range."""
    if style == "alchemy":
        span = f"{limit // 1000}K" if limit % 1000 == 0 else f"{limit:,}"
        return {
            "code": -32602,
            "message": (
                "Log response size exceeded. You can make eth_getLogs requests with up to a "
                f"{span} block range and no limit on the response size, or you can request "
                "any block range with a cap of 10K logs in the response. Based on your "
                "parameters and the response size limit, this block range should work: "
                f"[{hex(start)}, {hex(start + limit - 1)}]"
            ),
        }
    return {"code": -32614, "message": f"eth_getLogs is limited to a {limit:,} range"}


class RpcStandIn:
    """Serves `chain` over JSON-RPC; counts what it was asked (`http_requests`, `calls` by
    method, `eth_calls` as (to, selector, block), `blocks_served` as (block number, or the tag
    asked for, and whether with full transactions), eth_getLogs spans served and refused).
    `log_timestamps`: logs carry `blockTimestamp`, as newer nodes send it."""

    def __init__(
        self,
        chain: ScriptedChain,
        *,
        max_log_span: int | None = None,
        range_style: str = "quicknode",
        log_timestamps: bool = False,
    ) -> None:
        self.chain = chain
        self.max_log_span = max_log_span
        self.range_style = range_style
        self.log_timestamps = log_timestamps
        self.blocks_served: list[tuple[int | str, bool]] = []
        self.http_requests = 0
        self.batches = 0
        self.calls: Counter[str] = Counter()
        self.requests_by_method: Counter[str] = Counter()  # HTTP requests carrying it
        self.eth_calls: list[tuple[str, str, int]] = []
        self.logs_served: list[tuple[int, int]] = []
        self.logs_refused: list[tuple[int, int]] = []
        self.beyond_head = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{int(self._runner.addresses[0][1])}/"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> RpcStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def counts(self) -> dict[str, int]:
        """A snapshot of the counters, to compare before and after a step."""
        return {
            "http_requests": self.http_requests,
            "eth_getLogs": self.calls["eth_getLogs"],
            "eth_call": self.calls["eth_call"],
        }

    # -- JSON-RPC ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        self.http_requests += 1
        try:
            payload = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _json({"jsonrpc": "2.0", "id": None, "error": _PARSE_ERROR})
        if isinstance(payload, list):
            self.batches += 1
            if not payload:
                return _json({"jsonrpc": "2.0", "id": None, "error": _EMPTY_BATCH})
            items = payload
        else:
            items = [payload]
        for method in {str(item.get("method")) for item in items if isinstance(item, dict)}:
            self.requests_by_method[method] += 1
        answers = [self._answer(item) for item in items]
        return _json(answers if isinstance(payload, list) else answers[0])

    def _answer(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("method"), str):
            return {"jsonrpc": "2.0", "id": None, "error": _INVALID_REQUEST}
        method = item["method"]
        params = item.get("params") or []
        self.calls[method] += 1
        handler = getattr(self, "_" + method, None)
        if handler is None:
            error = {
                "code": -32601,
                "message": f"the method {method} does not exist/is not available",
            }
            return {"jsonrpc": "2.0", "id": item.get("id"), "error": error}
        try:
            result = handler(list(params))
        except _Refused as refusal:
            return {"jsonrpc": "2.0", "id": item.get("id"), "error": refusal.error}
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            error = {"code": -32602, "message": f"invalid argument: {exc}"}
            return {"jsonrpc": "2.0", "id": item.get("id"), "error": error}
        return {"jsonrpc": "2.0", "id": item.get("id"), "result": result}

    def _block(self, tag: Any, *, strict: bool = True) -> int:
        """A block parameter as a number; a block above the head is "header not found" when
        `strict` (state calls), else it is returned for the caller to decide."""
        chain = self.chain
        if isinstance(tag, dict):
            if "blockNumber" in tag:
                tag = tag["blockNumber"]
            else:
                raise _invalid("block hashes are not served")
        if tag in (None, "latest", "pending"):
            return chain.head
        if tag == "finalized":
            return chain.finalized
        if tag == "safe":
            return max(0, chain.head - 32)
        if tag == "earliest":
            return 0
        if not isinstance(tag, str) or not tag.startswith("0x"):
            raise _invalid(f"invalid block tag {tag!r}")
        number = int(tag, 16)
        if strict and number > chain.head:
            raise _Refused({"code": -32000, "message": "header not found"})
        return number

    def _eth_chainId(self, params: list[Any]) -> str:
        return hex(self.chain.chain_id)

    def _eth_blockNumber(self, params: list[Any]) -> str:
        return hex(self.chain.head)

    def _eth_getBlockByNumber(self, params: list[Any]) -> dict[str, Any] | None:
        number = self._block(params[0], strict=False)
        full = len(params) > 1 and params[1] is True
        if number > self.chain.head:
            return None
        tag = params[0]
        self.blocks_served.append((number if str(tag).startswith("0x") else str(tag), full))
        return self.chain.header(number, full)

    def _eth_getCode(self, params: list[Any]) -> str:
        block = self._block(params[1] if len(params) > 1 else "latest")
        contract = self.chain.contracts.get(str(params[0]).lower())
        return contract.code if contract is not None and contract.created <= block else "0x"

    def _eth_call(self, params: list[Any]) -> str:
        call = params[0]
        block = self._block(params[1] if len(params) > 1 else "latest")
        to = str(call.get("to") or "").lower()
        data = str(call.get("data") or call.get("input") or "0x").lower()
        sel = data[:10]
        self.eth_calls.append((to, sel, block))
        contract = self.chain.contracts.get(to)
        if contract is None or contract.created > block:
            return "0x"  # no code there: the call succeeds and returns nothing
        computed = contract.computed.get(sel)
        found: tuple[str, object] | None = None
        try:
            if computed is not None:
                found = computed(bytes.fromhex(data[10:]), block)
            elif len(sel) == 10:
                found = contract.answer(sel, block)
        except Revert:
            found = None
        if found is None:
            if contract.revert_code == 3:
                raise _Refused({"code": 3, "message": "execution reverted", "data": "0x"})
            raise _Refused({"code": contract.revert_code, "message": "execution reverted"})
        abi_type, value = found
        return "0x" + encode([abi_type], [value]).hex()

    def _eth_getLogs(self, params: list[Any]) -> list[dict[str, Any]]:
        query = params[0]
        chain = self.chain
        start = self._block(query.get("fromBlock", "latest"), strict=False)
        end = self._block(query.get("toBlock", "latest"), strict=False)
        if start > end:
            raise _Refused({"code": -32000, "message": "invalid block range params"})
        if end > chain.head:
            self.beyond_head += 1
            end = chain.head  # as geth: what exists of the range
        if self.max_log_span is not None and end - start + 1 > self.max_log_span:
            self.logs_refused.append((start, end))
            raise _Refused(range_refusal(self.range_style, start, end, self.max_log_span))
        self.logs_served.append((start, end))
        addresses = _address_set(query.get("address"))
        topics = list(query.get("topics") or [])
        return [
            chain.rpc_log(log, self.log_timestamps)
            for log in chain.logs
            if start <= log.block <= end
            and (addresses is None or log.address in addresses)
            and _topics_match(log.topics, topics)
        ]


_PARSE_ERROR = {"code": -32700, "message": "parse error"}
_EMPTY_BATCH = {"code": -32600, "message": "empty batch"}
_INVALID_REQUEST = {"code": -32600, "message": "invalid request"}


def _address_set(value: Any) -> frozenset[str] | None:
    """None: any address (no filter, or an empty list)."""
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    return frozenset(v.lower() for v in values) if values else None


def _topics_match(log_topics: Sequence[str], wanted: Sequence[Any]) -> bool:
    """Per position: null matches anything, a string that topic, a list any of its topics."""
    if len(wanted) > len(log_topics):
        return False
    for have, want in zip(log_topics, wanted, strict=False):
        if want is None:
            continue
        options = [want] if isinstance(want, str) else list(want)
        if options and have.lower() not in {o.lower() for o in options}:
            return False
    return True


def _signed_word(word: str) -> int:
    value = int(word, 16)
    return value - (1 << 256) if value >= 1 << 255 else value


def _json(data: Any) -> web.Response:
    return web.Response(status=200, body=orjson.dumps(data), content_type="application/json")


# -- a replayed Ethereum history of Aave's price sources ----------------------------------

# Aave address book 4.68.1: AaveV3Ethereum (Core), AaveV3EthereumLido (Prime).
CORE_POOL = "0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2"
CORE_ORACLE = "0x54586be62e3c3580375ae3723c145253060ca0c2"
CORE_STEWARD = "0x8b493f416f5f7933cc146b1899c069f2361cad60"
PRIME_POOL = "0x4e033931ad43597d96d6bcc25c280717730b58b1"
PRIME_ORACLE = "0xe3c061981870c0c7b1f3c4f4bb36b95f1f260be6"
PRIME_STEWARD = "0x84f2c90f2d66e700baa4cf3cbf66be7d8f21bd87"
# AaveV3Base: a pool and oracle of another network (no code on Ethereum).
BASE_POOL = "0xa238dd80c259a72e81d7e4664a9801593f98d1c5"
BASE_ORACLE = "0x2cc0fc26ed4563a5ce5e8bdcfe1a2878676ae156"

# Underlyings (ASSETS.*.UNDERLYING).
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
WBTC = "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599"
LINK = "0x514910771af9ca656af840dff83e8264ecf986ca"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
WSTETH = "0x7f39c581f595b53c5cb19bd0b3f8da6c935e2ca0"
GHO = "0x40d16fc0246ad3160ccc09b8d0d3a2cd28ae6c2f"

# ChainlinkEthereum: plain feed proxies.
ETH_USD = "0x5f4ec3df9cbd43714fe2740f5e3616155c5b8419"
BTC_USD = "0xf4030086522a5beea4988f8ca5b36dbc97bee88c"
LINK_USD = "0x2c1d072e956affc0d435cb7ac38ef18d24d9127c"
USDC_USD = "0x8fffffd4afb6115b954bd326cbe7b4ba576818f6"
# ChainlinkEthereum: Aave's SVR feeds and their _BASE twins.
AAVE_SVR_ETH_USD = "0x5424384b256154046e9667ddfaaa5e550145215e"
AAVE_SVR_ETH_USD_BASE = "0x5147ea642caef7bd9c1265aadca78f997abb9649"
AAVE_SVR_LINK_USD = "0xc7e9b623ed51f033b32ae7f1282b1ad62c28c183"
AAVE_SVR_LINK_USD_BASE = "0x76f8c9e423c228e83dcb11d17f0bd8aeb0ca01bb"
# ChainlinkEthereum: the SVR ETH/USD feed that is not Aave's.
SVR_ETH_USD = "0xc0053f3fbccd593758258334dfce24c2a9a673ad"
SVR_ETH_USD_BASE = "0xd82562bb17557231cd871e1b2525f3ab8d63d409"
# AaveV3Ethereum ASSETS.wstETH.ORACLE (a CAPO adapter) and ASSETS.GHO.ORACLE.
WSTETH_CAPO_SVR = "0xe1d97bf61901b075e9626c8a2340a7de385861ef"
GHO_FIXED_PRICE = "0xd110cac5d8682a3b045d5524a9903e031d70fccd"
# AaveV3Ethereum ASSETS.{WETH,USDC}.{A_TOKEN,V_TOKEN} and COLLECTOR (the treasury).
A_WETH = "0x4d5f47fa6a74757f35c14fd3a6ef8e3c9bc514e8"
V_WETH = "0xea51d7853eefb32b6ee06b1c12e6dcca88be0ffe"
A_USDC = "0x98c23e9d8f34fefb1b7bd6a91b7ff122f4e16f5c"
V_USDC = "0x72e95b8931767c79ba4eee721354d6e99a61d004"
COLLECTOR = "0x464c71f6c2f760dda6093dcb91c24c39e5d6e18c"
ZERO_ADDRESS = "0x" + "0" * 40


@dataclass(frozen=True)
class Reserve:
    """A listed asset of the Core market and its tokens."""

    asset: str
    symbol: str
    decimals: int
    a_token: str
    a_symbol: str
    v_token: str


CORE_WETH = Reserve(WETH, "WETH", 18, A_WETH, "aEthWETH", V_WETH)
CORE_USDC = Reserve(USDC, "USDC", 6, A_USDC, "aEthUSDC", V_USDC)


def scripted_address(label: str) -> str:
    """An address for a contract the address book does not list."""
    return "0x" + keccak(text=f"stand-in {label}")[-20:].hex()


ETH_USD_OCR2_A = scripted_address("ETH/USD OCR2 aggregator, phase 1")
ETH_USD_OCR2_B = scripted_address("ETH/USD OCR2 aggregator, phase 2")
BTC_USD_OCR2 = scripted_address("BTC/USD OCR2 aggregator")
LINK_USD_OCR2 = scripted_address("LINK/USD OCR2 aggregator")
USDC_USD_OCR2 = scripted_address("USDC/USD OCR2 aggregator")
WSTETH_CAPO_OLD = scripted_address("wstETH CAPO adapter on ETH/USD")
OTHER_PROTOCOL_ORACLE = scripted_address("another lending protocol's oracle")

OCR2_VERSION = "AccessControlledOffchainAggregator 1.0.0"
DUAL_VERSION = "DualAggregator 1.0.0"

# Blocks of the script (approximations of the real history).
CORE_DEPLOY = 16_291_127  # the Core pool's start_block in indexer/chains.toml
GHO_LISTED = 17_698_470
ETH_USD_PHASE_2 = 19_000_000  # ETH/USD's proxy moves to a new aggregator
WSTETH_CAPO = 19_700_000
PRIME_DEPLOY = 20_262_410
SVR_FEEDS_DEPLOYED = 22_100_000
CORE_LINK_SVR = 22_162_000  # SVR phase 1 (LINK)
OTHER_PROTOCOL_SVR = 22_300_000
CORE_LINK_BACK = 22_400_000  # the steward restores LINK's previous source ...
CORE_LINK_SVR_AGAIN = 22_500_000  # ... and switches it to SVR again
CORE_ETH_SVR = 22_700_000  # SVR for WETH and wstETH in Core
PRIME_ETH_SVR = 22_950_000  # SVR for WETH in Prime
HEAD = 23_200_000

ASSET_SOURCE_UPDATED = event_topic("AssetSourceUpdated(address,address)")
FALLBACK_ORACLE_UPDATED = event_topic("FallbackOracleUpdated(address)")
BASE_CURRENCY_SET = event_topic("BaseCurrencySet(address,uint256)")
SVR_ORACLE_CONFIG_CHANGED = event_topic("SvrOracleConfigChanged(address,address,address)")
SECONDARY_ROUND_ID_UPDATED = event_topic("SecondaryRoundIdUpdated(uint32)")
UPGRADED = event_topic("Upgraded(address)")
NEW_TRANSMISSION = event_topic(
    "NewTransmission(uint32,int192,address,uint32,int192[],bytes,int192,bytes32,uint40)"
)
NEW_ROUND = event_topic("NewRound(uint256,address,uint256)")
ANSWER_UPDATED = event_topic("AnswerUpdated(int256,uint256,uint256)")
TRANSFER = event_topic("Transfer(address,address,uint256)")
BALANCE_TRANSFER = event_topic("BalanceTransfer(address,address,uint256,uint256)")
LIQUIDATION_CALL = event_topic(
    "LiquidationCall(address,address,address,uint256,uint256,address,bool)"
)

# What the scripted feeds answer before any AnswerUpdated (USD, 8 decimals).
USDC_PRICE = 99_995_000
ETH_PRICE_BEFORE = 250_012_345_678
WETH9_CREATED = 4_719_568  # about when WETH9 and USDC were created
USDC_CREATED = 6_082_465


def _proxy(chain: ScriptedChain, address: str, label: str, created: int) -> Contract:
    return chain.deploy(address, label, created).returns("decimals()", "uint8", 8)


def _ocr2(chain: ScriptedChain, address: str, label: str, created: int) -> Contract:
    return chain.deploy(address, label, created).returns("typeAndVersion()", "string", OCR2_VERSION)


def _token(
    chain: ScriptedChain, address: str, label: str, symbol: str, decimals: int, created: int
) -> Contract:
    return (
        chain.deploy(address, label, created)
        .returns("symbol()", "string", symbol)
        .returns("decimals()", "uint8", decimals)
    )


def _debt_left(args: bytes, block: int) -> tuple[str, object]:
    (user,) = decode(["address"], args)
    return ("uint256", DEBT_LEFT.get(user.lower(), SOME_DEBT_LEFT))


def _aave_oracle(chain: ScriptedChain, address: str, label: str, created: int) -> Contract:
    """An AaveOracle: getAssetPrice reads the asset's source; getAssetsPrices reverts when
    one asset does, as the real loop does."""
    oracle = address.lower()

    def price(asset: str, block: int) -> int:
        source = chain.source_of(oracle, asset.lower(), block)
        answer = None if source is None else chain.feed_answer(source, block)
        if answer is None or answer <= 0:
            raise Revert  # the fallback oracle (none) is asked, and the call reverts
        return answer

    def one(args: bytes, block: int) -> tuple[str, object]:
        (asset,) = decode(["address"], args)
        return ("uint256", price(asset, block))

    def many(args: bytes, block: int) -> tuple[str, object]:
        (assets,) = decode(["address[]"], args)
        return ("uint256[]", [price(asset, block) for asset in assets])

    return (
        chain.deploy(address, label, created)
        .computes("getAssetPrice(address)", one)
        .computes("getAssetsPrices(address[])", many)
        .returns("BASE_CURRENCY_UNIT()", "uint256", 10**8)
    )


#: Pool.getReserveData's ReserveDataLegacy, as a static tuple of 15 words.
RESERVE_DATA = (
    "(uint256,uint128,uint128,uint128,uint128,uint128,uint40,uint16,"
    "address,address,address,address,uint128,uint128,uint128)"
)


def _pool(
    chain: ScriptedChain, address: str, label: str, created: int, reserves: Iterable[Reserve]
) -> Contract:
    """A Pool proxy whose getReserveData names the listed reserves' tokens (an asset not
    listed gets the all-zero struct, as the real pool answers)."""
    listed = {reserve.asset: (i, reserve) for i, reserve in enumerate(reserves)}
    ray = 10**27

    def reserve_data(args: bytes, block: int) -> tuple[str, object]:
        (asset,) = decode(["address"], args)
        found = listed.get(asset.lower())
        if found is None:
            return (RESERVE_DATA, (0, 0, 0, 0, 0, 0, 0, 0, *[ZERO_ADDRESS] * 4, 0, 0, 0))
        i, r = found
        strategy = scripted_address("Core interest rate strategy")
        tokens = (r.a_token, ZERO_ADDRESS, r.v_token, strategy)  # aToken, stable, variable
        return (RESERVE_DATA, (0, ray, 0, ray, 0, 0, chain.timestamp(block), i, *tokens, 0, 0, 0))

    return chain.deploy(address, label, created).computes("getReserveData(address)", reserve_data)


def ethereum_history(head: int = HEAD, *, oracle_lead: int = 0) -> ScriptedChain:
    """The scripted Ethereum chain (chain id 1) up to `head`: contracts and the
    AssetSourceUpdated history of Core's and Prime's AaveOracles, with other logs around.
    `oracle_lead`: each AaveOracle is created (its constructor setting the first sources)
    that many blocks before its pool, as a deployment that sets up the oracle first does."""
    chain = ScriptedChain(chain_id=1, head=head, finality_depth=77)

    # Chainlink's plain feeds: proxy -> OCR2 aggregator (ETH/USD changes aggregator once).
    for proxy, aggregator, pair in (
        (BTC_USD, BTC_USD_OCR2, "BTC/USD"),
        (LINK_USD, LINK_USD_OCR2, "LINK/USD"),
        (USDC_USD, USDC_USD_OCR2, "USDC/USD"),
    ):
        _ocr2(chain, aggregator, f"{pair} OCR2 aggregator", 12_000_000)
        _proxy(chain, proxy, f"{pair} proxy", 11_000_000).returns(
            "aggregator()", "address", aggregator
        )
    _ocr2(chain, ETH_USD_OCR2_A, "ETH/USD OCR2 aggregator, phase 1", 12_000_000)
    _ocr2(chain, ETH_USD_OCR2_B, "ETH/USD OCR2 aggregator, phase 2", ETH_USD_PHASE_2 - 1000)
    _proxy(chain, ETH_USD, "ETH/USD proxy", 10_606_501).returns(
        "aggregator()", "address", ETH_USD_OCR2_A
    ).returns("aggregator()", "address", ETH_USD_OCR2_B, since=ETH_USD_PHASE_2)

    # Aave's SVR feeds: proxy -> its _BASE twin, the DualAggregator.
    for proxy, dual, pair in (
        (AAVE_SVR_ETH_USD, AAVE_SVR_ETH_USD_BASE, "Aave SVR ETH/USD"),
        (AAVE_SVR_LINK_USD, AAVE_SVR_LINK_USD_BASE, "Aave SVR LINK/USD"),
        (SVR_ETH_USD, SVR_ETH_USD_BASE, "SVR ETH/USD"),
    ):
        chain.deploy(dual, f"{pair} DualAggregator", SVR_FEEDS_DEPLOYED).returns(
            "typeAndVersion()", "string", DUAL_VERSION
        ).returns("decimals()", "uint8", 8)
        _proxy(chain, proxy, f"{pair} proxy", SVR_FEEDS_DEPLOYED + 10).returns(
            "aggregator()", "address", dual
        )

    # CAPO adapters and GHO's fixed price (which answers none of the probes).
    chain.deploy(WSTETH_CAPO_OLD, "wstETH CAPO on ETH/USD", WSTETH_CAPO - 50).returns(
        "BASE_TO_USD_AGGREGATOR()", "address", ETH_USD
    ).returns("decimals()", "uint8", 8)
    chain.deploy(WSTETH_CAPO_SVR, "wstETH CAPO on Aave SVR ETH/USD", CORE_ETH_SVR - 50).returns(
        "BASE_TO_USD_AGGREGATOR()", "address", AAVE_SVR_ETH_USD
    ).returns("decimals()", "uint8", 8)
    chain.deploy(GHO_FIXED_PRICE, "GHO fixed price", GHO_LISTED - 100, revert_code=3).returns(
        "latestAnswer()", "int256", 10**8
    ).returns("decimals()", "uint8", 8)

    # What the feeds answer before any scripted report.
    for aggregator, answer in (
        (ETH_USD_OCR2_A, 120_000_000_000),
        (ETH_USD_OCR2_B, 230_000_000_000),
        (BTC_USD_OCR2, 4_000_000_000_000),
        (LINK_USD_OCR2, 1_500_000_000),
        (USDC_USD_OCR2, USDC_PRICE),
        (AAVE_SVR_ETH_USD_BASE, ETH_PRICE_BEFORE),
        (AAVE_SVR_LINK_USD_BASE, 1_400_000_000),
        (SVR_ETH_USD_BASE, ETH_PRICE_BEFORE),
    ):
        chain.answers[aggregator] = [(chain.contracts[aggregator].created, answer)]

    # Core's listed tokens (the reserves modelled), the treasury.
    _token(chain, WETH, "WETH9", "WETH", 18, WETH9_CREATED)
    _token(chain, USDC, "USDC (FiatTokenProxy)", "USDC", 6, USDC_CREATED)
    for reserve in (CORE_WETH, CORE_USDC):
        _token(
            chain,
            reserve.a_token,
            reserve.a_symbol,
            reserve.a_symbol,
            reserve.decimals,
            CORE_DEPLOY,
        ).returns("RESERVE_TREASURY_ADDRESS()", "address", COLLECTOR).returns(
            "UNDERLYING_ASSET_ADDRESS()", "address", reserve.asset
        )
        _token(
            chain,
            reserve.v_token,
            f"variableDebtEth{reserve.symbol}",
            f"variableDebtEth{reserve.symbol}",
            reserve.decimals,
            CORE_DEPLOY,
        ).computes("balanceOf(address)", _debt_left)
    chain.deploy(COLLECTOR, "Aave Collector", CORE_DEPLOY - 2_000_000)

    # The markets' contracts and the SVR stewards.
    _aave_oracle(chain, CORE_ORACLE, "Core AaveOracle", CORE_DEPLOY - oracle_lead)
    _pool(chain, CORE_POOL, "Core Pool proxy", CORE_DEPLOY, (CORE_WETH, CORE_USDC))
    _aave_oracle(chain, PRIME_ORACLE, "Prime AaveOracle", PRIME_DEPLOY - oracle_lead)
    chain.deploy(PRIME_POOL, "Prime Pool proxy", PRIME_DEPLOY)
    chain.deploy(CORE_STEWARD, "Core SvrOracleSteward", SVR_FEEDS_DEPLOYED + 20)
    chain.deploy(PRIME_STEWARD, "Prime SvrOracleSteward", SVR_FEEDS_DEPLOYED + 20)
    chain.deploy(OTHER_PROTOCOL_ORACLE, "another protocol's oracle", 15_000_000)

    def source_set(block: int, tx: int, oracle: str, asset: str, source: str) -> None:
        chain.emit(
            block, tx, oracle, [ASSET_SOURCE_UPDATED, address_topic(asset), address_topic(source)]
        )

    def steward(block: int, tx: int, address: str, asset: str, old: str, new: str) -> None:
        data = "0x" + encode(["address", "address"], [old, new]).hex()
        chain.emit(block, tx, address, [SVR_ORACLE_CONFIG_CHANGED, address_topic(asset)], data)

    def round_update(block: int, tx: int, dual: str, round_id: int) -> None:
        chain.emit(block, tx, dual, [SECONDARY_ROUND_ID_UPDATED, "0x" + f"{round_id:064x}"])

    def deploy_market(
        block: int, oracle: str, pool: str, sources: Iterable[tuple[str, str]]
    ) -> None:
        """An AaveOracle's constructor (fallback oracle, sources, base currency), then the
        pool proxy's creation (`oracle_lead` blocks later)."""
        at = block - oracle_lead
        chain.emit(at, 0, oracle, [FALLBACK_ORACLE_UPDATED, address_topic("0x" + "0" * 40)])
        for asset, source in sources:
            source_set(at, 0, oracle, asset, source)
        base_unit = "0x" + encode(["uint256"], [10**8]).hex()
        chain.emit(at, 0, oracle, [BASE_CURRENCY_SET, address_topic("0x" + "0" * 40)], base_unit)
        chain.emit(block, 1, pool, [UPGRADED, address_topic(scripted_address(f"{pool} impl"))])

    deploy_market(
        CORE_DEPLOY,
        CORE_ORACLE,
        CORE_POOL,
        [(WETH, ETH_USD), (WBTC, BTC_USD), (LINK, LINK_USD), (USDC, USDC_USD)],
    )
    source_set(GHO_LISTED, 4, CORE_ORACLE, GHO, GHO_FIXED_PRICE)
    source_set(WSTETH_CAPO, 7, CORE_ORACLE, WSTETH, WSTETH_CAPO_OLD)
    deploy_market(PRIME_DEPLOY, PRIME_ORACLE, PRIME_POOL, [(WETH, ETH_USD), (USDC, USDC_USD)])

    # SVR: LINK in Core (on, back off by the steward, on again), the other protocol's feed,
    # WETH and wstETH in Core, WETH in Prime; SVR rounds around them.
    round_update(CORE_LINK_SVR, 2, AAVE_SVR_LINK_USD_BASE, 1)
    source_set(CORE_LINK_SVR, 5, CORE_ORACLE, LINK, AAVE_SVR_LINK_USD)
    steward(CORE_LINK_SVR, 5, CORE_STEWARD, LINK, LINK_USD, AAVE_SVR_LINK_USD)
    source_set(OTHER_PROTOCOL_SVR, 3, OTHER_PROTOCOL_ORACLE, WETH, SVR_ETH_USD)
    round_update(OTHER_PROTOCOL_SVR, 9, SVR_ETH_USD_BASE, 7)
    source_set(CORE_LINK_BACK, 1, CORE_ORACLE, LINK, LINK_USD)
    source_set(CORE_LINK_SVR_AGAIN, 6, CORE_ORACLE, LINK, AAVE_SVR_LINK_USD)
    round_update(CORE_ETH_SVR, 0, AAVE_SVR_ETH_USD_BASE, 3)
    round_update(CORE_ETH_SVR, 1, SVR_ETH_USD_BASE, 8)
    source_set(CORE_ETH_SVR, 3, CORE_ORACLE, WETH, AAVE_SVR_ETH_USD)
    steward(CORE_ETH_SVR, 3, CORE_STEWARD, WETH, ETH_USD, AAVE_SVR_ETH_USD)
    source_set(CORE_ETH_SVR, 3, CORE_ORACLE, WSTETH, WSTETH_CAPO_SVR)
    round_update(CORE_ETH_SVR, 4, AAVE_SVR_ETH_USD_BASE, 4)
    source_set(PRIME_ETH_SVR, 2, PRIME_ORACLE, WETH, AAVE_SVR_ETH_USD)
    steward(PRIME_ETH_SVR, 2, PRIME_STEWARD, WETH, ETH_USD, AAVE_SVR_ETH_USD)
    return chain


# -- an Ethereum block range with the MEV-Share fingerprint -------------------------------

# Flashbots' builder payout address (the fee recipient of the blocks it builds) and
# Chainlink's SVR fee Safe (the shipped Ethereum recipient).
FLASHBOTS_BUILDER = "0xdafea492d9c6733ae3d56b7ed1adb60692c98bc5"
SVR_SAFE = "0x149b41b1e4c00b5f9aa34b14fd9f84cfd2f014e5"
OTHER_BUILDER = scripted_address("another builder's fee recipient")
PROPOSER = scripted_address("a validator's fee recipient")
FORWARDER = scripted_address("Chainlink SVR forwarder")
TRANSMITTER = scripted_address("an SVR node operator's transmitter")
SEARCHER = scripted_address("an SVR searcher's EOA")
SEARCHER_CONTRACT = scripted_address("an SVR searcher's back-run contract")
PUBLIC_LIQUIDATOR = scripted_address("a public liquidator")
BORROWERS = [scripted_address(f"borrower {i}") for i in range(5)]
#: What each borrower still owes after the range's liquidations (the variable debt tokens'
#: balanceOf): the second one's debt was repaid in full, the others keep some.
DEBT_LEFT = {BORROWERS[1]: 0}
SOME_DEBT_LEFT = 123_456
EOAS = [scripted_address(f"somebody {i}") for i in range(4)]

FINGERPRINT_BLOCK = 25_430_607  # the won auction (the block of the facts file)
RANGE_START = 25_430_600  # the range indexed: [RANGE_START, RANGE_END]
PRIMARY_BLOCK = 25_430_630  # the public route lands the next report
UNSOLD_BLOCK = 25_430_650  # the SVR route catches that report up: nobody bid
OTHER_PAYER_BLOCK = 25_430_700  # a new SVR report, a back-run, the Safe paid by another
FOREIGN_BLOCK = 25_430_750  # another protocol's SVR feed, a liquidation, a refund
RANGE_END = 25_430_800
RANGE_HEAD = RANGE_END + 77  # the stand-in's finalized block is RANGE_END

# The DualAggregator's rounds and answers, and what was paid.
WON_ROUND, WON_ANSWER = 14_200, 248_153_204_300
PRIMARY_ROUND, PRIMARY_ANSWER = 14_201, 248_310_000_000
OTHER_ROUND, OTHER_ANSWER = 14_202, 247_777_777_777
FOREIGN_ROUND, FOREIGN_ANSWER = 9_100, 247_650_000_000
REFUND_WEI = 87_654_321_012_345_678  # the builder's refund of the won auction
FOREIGN_REFUND_WEI = 55_000_000_000_000_000
OTHER_PAYMENT_WEI = 30_000_000_000_000_000
PROPOSER_PAYMENT_WEI = 12_345_678_900_000_000


@dataclass(frozen=True)
class ScriptedLiquidation:
    """A liquidation of the range as scripted (the test checks its row against this)."""

    block: int
    tx_index: int
    log_index: int
    collateral: Reserve
    debt: Reserve
    user: str
    liquidator: str
    debt_to_cover: int
    collateral_amount: int
    fee: int


def _word(value: int) -> str:
    return "0x" + f"{value:064x}"


def _data(types: Sequence[str], values: Sequence[object]) -> str:
    return "0x" + encode(list(types), list(values)).hex()


def transfer(
    chain: ScriptedChain, block: int, tx: int, token: str, sender: str, to: str, amount: int
) -> ScriptedLog:
    topics = [TRANSFER, address_topic(sender), address_topic(to)]
    return chain.emit(block, tx, token, topics, _data(["uint256"], [amount]))


def liquidate(
    chain: ScriptedChain,
    block: int,
    tx: int,
    *,
    collateral: Reserve,
    debt: Reserve,
    user: str,
    liquidator: str,
    debt_to_cover: int,
    collateral_amount: int,
    fee: int,
) -> ScriptedLiquidation:
    """A Core liquidation's logs in Aave V3's order: the debt burnt, the collateral aToken
    burnt and its underlying sent to the liquidator, the protocol fee (aToken Transfer and
    BalanceTransfer to the treasury, when there is one), the debt repaid, LiquidationCall."""
    transfer(chain, block, tx, debt.v_token, user, ZERO_ADDRESS, debt_to_cover)
    transfer(chain, block, tx, collateral.a_token, user, ZERO_ADDRESS, collateral_amount)
    transfer(chain, block, tx, collateral.asset, collateral.a_token, liquidator, collateral_amount)
    if fee:
        transfer(chain, block, tx, collateral.a_token, user, COLLECTOR, fee)
        chain.emit(
            block,
            tx,
            collateral.a_token,
            [BALANCE_TRANSFER, address_topic(user), address_topic(COLLECTOR)],
            _data(["uint256", "uint256"], [fee, 10**27]),
        )
    transfer(chain, block, tx, debt.asset, liquidator, debt.a_token, debt_to_cover)
    log = chain.emit(
        block,
        tx,
        CORE_POOL,
        [
            LIQUIDATION_CALL,
            address_topic(collateral.asset),
            address_topic(debt.asset),
            address_topic(user),
        ],
        _data(
            ["uint256", "uint256", "address", "bool"],
            [debt_to_cover, collateral_amount, liquidator, False],
        ),
    )
    return ScriptedLiquidation(
        block,
        tx,
        log.log_index,
        collateral,
        debt,
        user,
        liquidator,
        debt_to_cover,
        collateral_amount,
        fee,
    )


def oracle_report(
    chain: ScriptedChain,
    block: int,
    tx: int,
    aggregator: str,
    round_id: int,
    answer: int,
    *,
    secondary: bool,
) -> None:
    """A new OCR report stored by a DualAggregator: through the SVR route (transmitSecondary,
    from the forwarder's forward) SecondaryRoundIdUpdated comes first; then NewTransmission,
    NewRound and AnswerUpdated, as for the public route."""
    observed = chain.timestamp(block) - 3
    if secondary:
        chain.emit(block, tx, aggregator, [SECONDARY_ROUND_ID_UPDATED, _word(round_id)])
    observations = [answer - 150_000, answer, answer + 90_000]
    chain.emit(
        block,
        tx,
        aggregator,
        [NEW_TRANSMISSION, _word(round_id)],
        _data(
            ["int192", "address", "uint32", "int192[]", "bytes", "int192", "bytes32", "uint40"],
            [
                answer,
                TRANSMITTER,
                observed,
                observations,
                bytes([0, 4, 9]),
                10**16,
                keccak(text=f"{aggregator} config"),
                (round_id << 8) | 1,
            ],
        ),
    )
    chain.emit(
        block,
        tx,
        aggregator,
        [NEW_ROUND, _word(round_id), address_topic(ZERO_ADDRESS)],
        _data(["uint256"], [observed]),
    )
    chain.emit(
        block,
        tx,
        aggregator,
        [ANSWER_UPDATED, _word(answer), _word(round_id)],
        _data(["uint256"], [chain.timestamp(block)]),
    )


def report_tx(chain: ScriptedChain, block: int, tx: int, aggregator: str, secondary: bool) -> None:
    """The node operator's transaction: forward(aggregator, transmitSecondary(...)) to the
    forwarder for the SVR route, transmit(...) to the aggregator for the public one."""
    body = encode(
        ["bytes32[3]", "bytes", "bytes32[]", "bytes32[]", "bytes32"],
        [[b"\1" * 32] * 3, b"report", [b"\2" * 32], [b"\3" * 32], b"\4" * 32],
    ).hex()
    if secondary:
        inner = bytes.fromhex(
            selector("transmitSecondary(bytes32[3],bytes,bytes32[],bytes32[],bytes32)")[2:] + body
        )
        data = (
            selector("forward(address,bytes)")
            + encode(["address", "bytes"], [aggregator, inner]).hex()
        )
        chain.send(block, tx, TRANSMITTER, FORWARDER, data=data)
    else:
        data = selector("transmit(bytes32[3],bytes,bytes32[],bytes32[],bytes32)") + body
        chain.send(block, tx, TRANSMITTER, aggregator, data=data)


def back_run(chain: ScriptedChain, block: int, tx: int, **liquidation: Any) -> ScriptedLiquidation:
    """The searcher's back-run: its contract liquidates (and pays its bid to the block's
    coinbase inside, an internal transfer that leaves no log)."""
    chain.send(block, tx, SEARCHER, SEARCHER_CONTRACT, data=selector("execute(bytes)") + "00" * 64)
    return liquidate(chain, block, tx, liquidator=SEARCHER_CONTRACT, **liquidation)


@dataclass
class MevShareRange:
    """The scripted chain and what its range holds."""

    chain: ScriptedChain
    #: the won auction's block: (transaction index of the update, of the back-run, of the refund)
    won: tuple[int, int, int]
    liquidations: list[ScriptedLiquidation]


def mev_share_range() -> MevShareRange:
    """The history up to RANGE_HEAD, and in [RANGE_START, RANGE_END]:

    1. FINGERPRINT_BLOCK (built by Flashbots): two ordinary transactions, a public Core
       liquidation (USDC collateral, WETH debt: before the update), then tx 3 the SVR
       update of Aave's ETH/USD DualAggregator (a new report), tx 4 the searcher's back-run
       (WETH collateral, USDC debt), tx 5 the builder's refund to the Safe, tx 6 the
       builder's payment to the proposer;
    2. PRIMARY_BLOCK: the public route stores the next report; UNSOLD_BLOCK: the SVR route
       brings it again (SecondaryRoundIdUpdated only, a catch-up nobody bid on), a WETH
       liquidation after it, no refund (another builder);
    3. OTHER_PAYER_BLOCK: a new SVR report, a back-run (USDC collateral, WETH debt, no
       protocol fee), then the searcher, not the builder, pays the Safe;
    4. FOREIGN_BLOCK: a new SVR report of Chainlink's other ETH/USD DualAggregator (behind
       no Aave source), a WETH liquidation, the builder's refund to the Safe.
    """
    chain = ethereum_history(RANGE_HEAD)
    chain.deploy(SVR_SAFE, "Chainlink SVR fee Safe (a Safe proxy)", 22_180_000)
    chain.deploy(FORWARDER, "Chainlink SVR forwarder", SVR_FEEDS_DEPLOYED - 5)
    chain.deploy(SEARCHER_CONTRACT, "an SVR searcher's contract", RANGE_START - 40_000)
    liquidations = []

    # 1. The won auction.
    block = FINGERPRINT_BLOCK
    chain.miners[block] = FLASHBOTS_BUILDER
    chain.send(block, 0, EOAS[0], EOAS[1], value=5 * 10**17)
    chain.send(block, 1, EOAS[2], WETH, data=selector("transfer(address,uint256)") + "00" * 64)
    transfer(chain, block, 1, WETH, EOAS[2], EOAS[3], 3 * 10**18)
    chain.send(
        block,
        2,
        PUBLIC_LIQUIDATOR,
        CORE_POOL,
        data=selector("liquidationCall(address,address,address,uint256,bool)") + "00" * 160,
    )
    liquidations.append(
        liquidate(
            chain,
            block,
            2,
            collateral=CORE_USDC,
            debt=CORE_WETH,
            user=BORROWERS[0],
            liquidator=PUBLIC_LIQUIDATOR,
            debt_to_cover=1_500_000_000_000_000_000,
            collateral_amount=3_900_123_456,
            fee=9_750_308,
        )
    )
    report_tx(chain, block, 3, AAVE_SVR_ETH_USD_BASE, secondary=True)
    oracle_report(chain, block, 3, AAVE_SVR_ETH_USD_BASE, WON_ROUND, WON_ANSWER, secondary=True)
    liquidations.append(
        back_run(
            chain,
            block,
            4,
            collateral=CORE_WETH,
            debt=CORE_USDC,
            user=BORROWERS[1],
            debt_to_cover=9_876_543_210,
            collateral_amount=4_200_000_000_000_000_000,
            fee=21_000_000_000_000_000,
        )
    )
    chain.send(block, 5, FLASHBOTS_BUILDER, SVR_SAFE, value=REFUND_WEI)
    chain.send(block, 6, FLASHBOTS_BUILDER, PROPOSER, value=PROPOSER_PAYMENT_WEI)

    # 2. An update nobody bid on.
    report_tx(chain, PRIMARY_BLOCK, 0, AAVE_SVR_ETH_USD_BASE, secondary=False)
    oracle_report(
        chain,
        PRIMARY_BLOCK,
        0,
        AAVE_SVR_ETH_USD_BASE,
        PRIMARY_ROUND,
        PRIMARY_ANSWER,
        secondary=False,
    )
    block = UNSOLD_BLOCK
    chain.miners[block] = OTHER_BUILDER
    report_tx(chain, block, 0, AAVE_SVR_ETH_USD_BASE, secondary=True)
    chain.emit(block, 0, AAVE_SVR_ETH_USD_BASE, [SECONDARY_ROUND_ID_UPDATED, _word(PRIMARY_ROUND)])
    liquidations.append(
        back_run(
            chain,
            block,
            1,
            collateral=CORE_WETH,
            debt=CORE_USDC,
            user=BORROWERS[2],
            debt_to_cover=2_000_000_000,
            collateral_amount=850_000_000_000_000_000,
            fee=4_250_000_000_000_000,
        )
    )
    chain.send(block, 2, OTHER_BUILDER, PROPOSER, value=PROPOSER_PAYMENT_WEI)

    # 3. The Safe paid by someone other than the block's builder.
    block = OTHER_PAYER_BLOCK
    chain.miners[block] = FLASHBOTS_BUILDER
    report_tx(chain, block, 0, AAVE_SVR_ETH_USD_BASE, secondary=True)
    oracle_report(chain, block, 0, AAVE_SVR_ETH_USD_BASE, OTHER_ROUND, OTHER_ANSWER, secondary=True)
    liquidations.append(
        back_run(
            chain,
            block,
            1,
            collateral=CORE_USDC,
            debt=CORE_WETH,
            user=BORROWERS[3],
            debt_to_cover=700_000_000_000_000_000,
            collateral_amount=1_800_000_000,
            fee=0,
        )
    )
    chain.send(block, 2, SEARCHER, SVR_SAFE, value=OTHER_PAYMENT_WEI)
    chain.send(block, 3, FLASHBOTS_BUILDER, PROPOSER, value=PROPOSER_PAYMENT_WEI)

    # 4. Another protocol's SVR feed, and a refund after a liquidation in its block.
    block = FOREIGN_BLOCK
    chain.miners[block] = FLASHBOTS_BUILDER
    report_tx(chain, block, 0, SVR_ETH_USD_BASE, secondary=True)
    oracle_report(chain, block, 0, SVR_ETH_USD_BASE, FOREIGN_ROUND, FOREIGN_ANSWER, secondary=True)
    liquidations.append(
        back_run(
            chain,
            block,
            1,
            collateral=CORE_WETH,
            debt=CORE_USDC,
            user=BORROWERS[4],
            debt_to_cover=3_300_000_000,
            collateral_amount=1_400_000_000_000_000_000,
            fee=7_000_000_000_000_000,
        )
    )
    chain.send(block, 2, FLASHBOTS_BUILDER, SVR_SAFE, value=FOREIGN_REFUND_WEI)
    chain.send(block, 3, FLASHBOTS_BUILDER, PROPOSER, value=PROPOSER_PAYMENT_WEI)
    return MevShareRange(chain, (3, 4, 5), liquidations)
