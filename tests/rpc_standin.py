"""A local JSON-RPC stand-in for an Ethereum node, serving a scripted chain.

No real node can be reached from this machine, so this server takes one's place where a test
must read on-chain history through the indexer's own RPC client: a real HTTP server (aiohttp,
on a free port of 127.0.0.1) that answers JSON-RPC requests and batches for eth_chainId,
eth_blockNumber, eth_getBlockByNumber, eth_getCode, eth_getLogs and eth_call, like a node
would, including its refusals: eth_getLogs spans over a limit get a real provider's error
text, and a function a contract lacks reverts ("execution reverted").

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
  the source another protocol's oracle (scripted address) sets: no Aave source is behind it.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from eth_abi import encode
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


@dataclass
class Contract:
    """Code at `address` from block `created`, and what its functions return over time:
    per selector, (from block, ABI type, value) in block order. Anything else reverts."""

    address: str
    label: str
    created: int
    functions: dict[str, list[tuple[int, str, object]]] = field(default_factory=dict)
    revert_code: int = -32000  # geth's form for a revert without data; 3 carries data

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


@dataclass
class ScriptedChain:
    """Blocks 0..head (hashes and timestamps computed), contracts and logs."""

    chain_id: int
    head: int
    finality_depth: int = 64
    salt: str = "ethereum"
    contracts: dict[str, Contract] = field(default_factory=dict)
    logs: list[ScriptedLog] = field(default_factory=list)

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

    def header(self, number: int) -> dict[str, Any]:
        return {
            "number": hex(number),
            "hash": self.block_hash(number),
            "parentHash": self.block_hash(number - 1) if number else "0x" + "0" * 64,
            "timestamp": hex(self.timestamp(number)),
            "transactions": [],
        }

    def rpc_log(self, log: ScriptedLog) -> dict[str, Any]:
        return {
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
    method, `eth_calls` as (to, selector, block), eth_getLogs spans served and refused)."""

    def __init__(
        self,
        chain: ScriptedChain,
        *,
        max_log_span: int | None = None,
        range_style: str = "quicknode",
    ) -> None:
        self.chain = chain
        self.max_log_span = max_log_span
        self.range_style = range_style
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
        return None if number > self.chain.head else self.chain.header(number)

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
        found = contract.answer(sel, block) if len(sel) == 10 else None
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
            chain.rpc_log(log)
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


def _proxy(chain: ScriptedChain, address: str, label: str, created: int) -> Contract:
    return chain.deploy(address, label, created).returns("decimals()", "uint8", 8)


def _ocr2(chain: ScriptedChain, address: str, label: str, created: int) -> Contract:
    return chain.deploy(address, label, created).returns("typeAndVersion()", "string", OCR2_VERSION)


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

    # The markets' contracts and the SVR stewards.
    chain.deploy(CORE_ORACLE, "Core AaveOracle", CORE_DEPLOY - oracle_lead)
    chain.deploy(CORE_POOL, "Core Pool proxy", CORE_DEPLOY)
    chain.deploy(PRIME_ORACLE, "Prime AaveOracle", PRIME_DEPLOY - oracle_lead)
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
