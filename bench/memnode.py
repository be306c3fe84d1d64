"""An in-memory node for the raw-ingest benchmark: it answers the pipeline's RPC calls from
pre-rendered JSON bytes, with no network and no latency, so that what is measured is the
indexer's own work (JSON parse, range checks, decode, enrich, COPY, checkpoint).

Logs are rendered per block, when first asked for, as the JSON a node sends; an eth_getLogs
answer is the concatenation of its blocks' bytes, parsed with orjson exactly as RpcClient
parses an HTTP body. The LiquidationCall logs carry blockTimestamp (as current nodes send),
so no header is fetched; prices and token metadata are pre-warmed by the caller.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from indexer.decode.topics import LIQUIDATION_CALL
from indexer.enrich.closure import BALANCE_OF
from indexer.enrich.fees import TRANSFER
from indexer.rpc.client import Endpoint, RpcClient

POOL = "0x794a61358d6845594f94dc1db02a252b5b4814ad"
ORACLE = "0xb023e699f5a33916ea823a16485e259257ca8bd1"
TREASURY = "0x" + "7e" * 20
# ten reserves: address -> (symbol, decimals, aToken)
ASSETS: dict[str, tuple[str, int, str]] = {
    "0x" + f"{i:02x}" * 20: (sym, dec, "0x" + f"{0x80 + i:02x}" * 20)
    for i, (sym, dec) in enumerate(
        [
            ("WETH", 18),
            ("WBTC", 8),
            ("USDC", 6),
            ("USDT", 6),
            ("DAI", 18),
            ("LINK", 18),
            ("wstETH", 18),
            ("AAVE", 18),
            ("WMATIC", 18),
            ("weETH", 18),
        ],
        start=0xA1,
    )
}
GENESIS_TS = 1_769_817_600
BLOCK_TIME = 2


def _word(value: int) -> str:
    return f"{value:064x}"


def _pad(address: str) -> str:
    return "0x" + address[2:].rjust(64, "0")


class MemoryChain:
    """Blocks [first, last] holding `per_block` liquidations each (and their fee transfers).

    A block's logs are rendered when an eth_getLogs first asks for it (deterministic: each
    block from its own seed), so the benchmark holds only the blocks in flight, not the
    history. The time spent rendering is added up (`render_wall`, `render_cpu`) for the
    benchmark to take out of its figures; each block's prices go to `on_prices` (the warm
    cache). A block's fee transfers are rendered with its liquidations and handed out once.
    """

    def __init__(self, first: int, last: int, per_block: int, seed: int = 1) -> None:
        self.first = first
        self.last = last
        self.per_block = per_block
        self.seed = seed
        self.fee_bytes: dict[int, bytes] = {}
        rng = random.Random(seed)
        self.bots = [rng.getrandbits(160) for _ in range(300)]
        self.on_prices: Callable[[dict[tuple[str, int], int]], None] = lambda prices: None
        self.render_wall = 0.0
        self.render_cpu = 0.0

    def render(self, lo: int, hi: int) -> bytes:
        """The LiquidationCall logs of blocks lo..hi (their fee transfers kept for the fee
        query), as the JSON array elements a node sends, joined."""
        wall, cpu = time.perf_counter(), time.process_time()
        assets = list(ASSETS)
        bots = self.bots
        prices: dict[tuple[str, int], int] = {}
        parts: list[bytes] = []
        for block in range(max(lo, self.first), min(hi, self.last) + 1):
            rng = random.Random(self.seed * 1_000_003 + block)
            liqs: list[bytes] = []
            fees: list[bytes] = []
            block_hash = "0x" + _word(block * 7919)
            ts = hex(GENESIS_TS + BLOCK_TIME * block)
            for j in range(self.per_block):
                collateral, debt = rng.sample(assets, 2)
                prices[(collateral, block)] = 10**8 + block
                prices[(debt, block)] = 10**8 + block
                user = rng.getrandbits(160)
                tx = "0x" + _word((block << 16) | j)
                common = {
                    "blockNumber": hex(block),
                    "blockHash": block_hash,
                    "blockTimestamp": ts,
                    "transactionHash": tx,
                    "transactionIndex": hex(j),
                    "removed": False,
                }
                fees.append(
                    orjson.dumps(
                        {
                            "address": ASSETS[collateral][2],
                            "topics": [TRANSFER, "0x" + _word(user), _pad(TREASURY)],
                            "data": "0x" + _word(rng.getrandbits(50)),
                            "logIndex": hex(2 * j),
                            **common,
                        }
                    )
                )
                liqs.append(
                    orjson.dumps(
                        {
                            "address": POOL,
                            "topics": [
                                LIQUIDATION_CALL,
                                _pad(collateral),
                                _pad(debt),
                                "0x" + _word(user),
                            ],
                            "data": "0x"
                            + _word(rng.getrandbits(70))
                            + _word(rng.getrandbits(60))
                            + _word(bots[rng.randrange(len(bots))])
                            + _word(rng.getrandbits(1)),
                            "logIndex": hex(2 * j + 1),
                            **common,
                        }
                    )
                )
            parts.append(b",".join(liqs))
            self.fee_bytes[block] = b",".join(fees)
        self.on_prices(prices)
        self.render_wall += time.perf_counter() - wall
        self.render_cpu += time.process_time() - cpu
        return b",".join(parts)

    def logs(self, params: dict[str, Any]) -> bytes:
        lo, hi = int(params["fromBlock"], 16), int(params["toBlock"], 16)
        topics = params.get("topics") or []
        if topics and topics[0] == TRANSFER:
            fees = self.fee_bytes
            parts = [fees.pop(n) for n in range(lo, hi + 1) if n in fees]
            return b"[" + b",".join(parts) + b"]"
        return b"[" + self.render(lo, hi) + b"]"


_DEBT_LEFT = ["0x" + _word(n) for n in range(3)]


class MemoryClient(RpcClient):
    """An RpcClient whose transport answers from a MemoryChain instead of HTTP: everything
    above the transport (rate limiter, retries, batching, unpacking) runs as usual."""

    def __init__(self, chain: MemoryChain, name: str = "polygon") -> None:
        super().__init__(["http://memory.invalid"], chain=name, requests_per_second=1e9)
        self.memory = chain
        self.head = chain.last

    async def _post(self, endpoint: Endpoint, payload: Any, *_limits: Any) -> Any:
        """The transport: the answer comes from memory (time and size limits do not apply)."""
        if isinstance(payload, list):
            return [self._answer(call) for call in payload]
        return self._answer(payload)

    def _answer(self, call: dict[str, Any]) -> Any:
        method, params = call["method"], call["params"]
        if method == "eth_getLogs":
            body = self.memory.logs(params[0])
            return orjson.loads(b'{"jsonrpc":"2.0","id":%d,"result":%b}' % (call["id"], body))
        return {"jsonrpc": "2.0", "id": call["id"], "result": self._result(method, params)}

    def _result(self, method: str, params: Sequence[Any]) -> Any:
        if method == "eth_chainId":
            return hex(137)
        if method == "eth_blockNumber":
            return hex(self.head)
        if method == "eth_getBlockByNumber":
            tag = params[0]
            number = self.head if tag in ("latest", "finalized", "safe") else int(tag, 16)
            return {
                "number": hex(number),
                "hash": "0x" + _word(number * 7919),
                "parentHash": "0x" + _word((number - 1) * 7919),
                "timestamp": hex(GENESIS_TS + BLOCK_TIME * number),
            }
        if method == "eth_call" and params[0]["data"].startswith(BALANCE_OF.selector):
            # debt left after a liquidation: none in one block of three
            return _DEBT_LEFT[int(params[1], 16) % 3]
        if method == "eth_getCode":  # the pool and its oracle are contracts; nothing else is
            return "0x6080" if params[0].lower() in (POOL, ORACLE) else "0x"
        raise AssertionError(f"memory node: unexpected call {method} (caches should be warm)")
