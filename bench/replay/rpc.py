"""The Ethereum JSON-RPC methods of one chain, answered from its generated history under a
provider profile. Pure request -> result code: HTTP, rate limits and injected faults live in
server.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from . import profiles as pf
from .abi import (
    SEL_BASE_CURRENCY_UNIT,
    SEL_DECIMALS,
    SEL_DESCRIPTION,
    SEL_GET_ASSET_PRICE,
    SEL_GET_ASSETS_PRICES,
    SEL_GET_SOURCE_OF_ASSET,
    SEL_LATEST_ANSWER,
    SEL_NAME,
    SEL_SYMBOL,
    abi_string,
    abi_uint,
    word,
)
from .blocks import BlockCache, RenderedBlock, block_object, receipt_object, tx_object
from .history import ChainHistory
from .profiles import Profile

CLIENT_VERSION = "ReplayNode/v1.0.0-stable/linux-amd64/python3.11"

_TopicFilter = list[tuple[int, frozenset[str]]]
LogsQuery = tuple[int, int, frozenset[str] | None, _TopicFilter]


def _match(
    rb: RenderedBlock,
    addrs: frozenset[str] | None,
    topics: _TopicFilter,
    stamp: bytes | None = None,
) -> list[bytes]:
    """JSON of the block's logs that pass the address and topic filters, in log order;
    `stamp` (the `,"blockTimestamp":...}` tail) replaces the closing brace when given."""
    out: list[bytes] = []
    for i, e in enumerate(rb.logs):
        if addrs is not None and e.address not in addrs:
            continue
        t = e.topics
        for pos, allowed in topics:
            if pos >= len(t) or t[pos] not in allowed:
                break
        else:
            raw = rb.log_json(i)
            out.append(raw if stamp is None else raw[:-1] + stamp)
    return out


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RpcError:
        return cls(obj["code"], obj["message"], obj.get("data"))


def invalid(arg: int, what: str) -> RpcError:
    return RpcError(-32602, f"invalid argument {arg}: {what}")


def _parse_quantity(value: Any, arg: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise invalid(arg, "json: cannot unmarshal non-string into Go value of type hexutil.Big")
    if not value.startswith(("0x", "0X")):
        raise invalid(arg, "hex string without 0x prefix")
    try:
        return int(value, 16)
    except ValueError:
        raise invalid(arg, "invalid hex string") from None


def _address(value: Any, arg: int) -> str:
    if not isinstance(value, str) or len(value) != 42 or not value.startswith(("0x", "0X")):
        raise invalid(
            arg,
            f"hex string has length {max(0, len(value) - 2) if isinstance(value, str) else 0}, "
            "want 40 for common.Address",
        )
    return value.lower()


class ChainEndpoint:
    """Serves one chain. `head_fn` gives the current head (static or moving)."""

    def __init__(self, ch: ChainHistory, profile: Profile, head_fn: Callable[[], int]) -> None:
        self.ch = ch
        self.profile = profile
        self.head_fn = head_fn
        self.cache = BlockCache()
        self.methods: Counter[str] = Counter()
        self.errors: Counter[int] = Counter()
        self.logs_served = 0
        self._dispatch: dict[str, Callable[[list[Any]], Any]] = {
            "eth_chainId": lambda p: hex(ch.chain_id),
            "net_version": lambda p: str(ch.chain_id),
            "web3_clientVersion": lambda p: CLIENT_VERSION,
            "eth_syncing": lambda p: False,
            "eth_blockNumber": lambda p: hex(self.head()),
            "eth_gasPrice": lambda p: hex(10**9),
            "eth_getBlockByNumber": self.get_block_by_number,
            "eth_getBlockByHash": self.get_block_by_hash,
            "eth_getLogs": self.get_logs,
            "eth_call": self.call,
            "eth_getCode": self.get_code,
            "eth_getTransactionReceipt": self.get_receipt,
            "eth_getTransactionByHash": self.get_transaction,
        }

    # ------------------------------------------------------------------ heads and tags
    def head(self) -> int:
        return self.head_fn()

    def finality_lag(self) -> int:
        lag = self.profile.finality_lag
        return self.ch.spec.finality_depth if lag is None else lag

    def finalized(self) -> int:
        return max(0, self.head() - self.finality_lag())

    def resolve(self, tag: Any, arg: int = 0) -> int:
        if tag is None or tag in ("latest", "pending"):
            return self.head()
        if tag == "earliest":
            return 0
        if tag == "finalized":
            return self.finalized()
        if tag == "safe":
            return max(0, self.head() - self.finality_lag() // 2)
        if isinstance(tag, dict):  # EIP-1898
            if "blockHash" in tag:
                n = self.ch.number_of_hash(str(tag["blockHash"]))
                if n is None or n > self.head():
                    raise RpcError(-32000, f"header for hash {tag['blockHash']} not found")
                return n
            return self.resolve(tag.get("blockNumber"), arg)
        return _parse_quantity(tag, arg)

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, params: Any) -> Any:
        self.methods[method] += 1
        fn = self._dispatch.get(method)
        if fn is None:
            raise RpcError(-32601, f"the method {method} does not exist/is not available")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise RpcError(-32602, "invalid params: expected an array")
        return fn(params)

    # ------------------------------------------------------------------ blocks
    def _rendered(self, n: int) -> RenderedBlock | None:
        return self.cache.get(self.ch, n) if self.ch.event_count(n) else None

    def get_block_by_number(self, params: list[Any]) -> Any:
        if not params:
            raise RpcError(-32602, "missing value for required argument 0")
        n = self.resolve(params[0])
        full = bool(params[1]) if len(params) > 1 else False
        if n < 0 or n > self.head():
            return None
        return block_object(self.ch, n, self._rendered(n), full)

    def get_block_by_hash(self, params: list[Any]) -> Any:
        if not params or not isinstance(params[0], str):
            raise RpcError(-32602, "missing value for required argument 0")
        n = self.ch.number_of_hash(params[0])
        if n is None or n > self.head():
            return None
        full = bool(params[1]) if len(params) > 1 else False
        return block_object(self.ch, n, self._rendered(n), full)

    def _locate(self, params: list[Any]) -> tuple[RenderedBlock, int] | None:
        if not params or not isinstance(params[0], str):
            raise RpcError(-32602, "missing value for required argument 0")
        loc = self.ch.locate_tx(params[0])
        if loc is None or loc[0] > self.head():
            return None
        rb = self._rendered(loc[0])
        if rb is None or loc[1] >= len(rb.txs):
            return None
        return rb, loc[1]

    def get_receipt(self, params: list[Any]) -> Any:
        found = self._locate(params)
        if found is None:
            return None
        rb, i = found
        return receipt_object(self.ch, rb, rb.txs[i])

    def get_code(self, params: list[Any]) -> str:
        """Some code at the replayed chain's contracts (pool, oracle, tokens, aggregators,
        Atlas) from the block before its history starts, none elsewhere or earlier: what
        the indexer checks before it indexes a market and where it finds an oracle's
        deployment."""
        if not params or not isinstance(params[0], str):
            raise RpcError(-32602, "missing value for required argument 0")
        ch = self.ch
        n = self.resolve(params[1] if len(params) > 1 else "latest", 1)
        if n > self.head() or n < 0:
            raise RpcError(-32000, "header not found")
        contracts = {ch.spec.pool, ch.spec.oracle, ch.spec.atlas, *ch.asset_index}
        contracts.update(agg.address for agg in ch.aggregators)
        deployed = n >= ch.start - 1  # the replayed history starts with its contracts in place
        return "0x6080604052" if deployed and params[0].lower() in contracts else "0x"

    def get_transaction(self, params: list[Any]) -> Any:
        found = self._locate(params)
        if found is None:
            return None
        rb, i = found
        return tx_object(self.ch, rb, rb.txs[i])

    # ------------------------------------------------------------------ logs
    def get_logs(self, params: list[Any]) -> Any:
        query = self.logs_query(params)
        if query is None:
            return orjson.Fragment(b"[]")
        out = self.collect(*query)
        return orjson.Fragment(b"[" + b",".join(out) + b"]")

    @property
    def streams_logs(self) -> bool:
        """No result cap applies, so eth_getLogs can be streamed block by block."""
        p = self.profile
        return p.logs_max_results is None and p.logs_hard_max_results is None

    def logs_query(self, params: list[Any]) -> LogsQuery | None:
        """Validate an eth_getLogs filter; None if the range lies wholly above the head."""
        if not params or not isinstance(params[0], dict):
            raise invalid(0, "json: cannot unmarshal into Go value of type filters.FilterCriteria")
        f = params[0]
        addrs = self._address_filter(f.get("address"))
        topics = self._topic_filter(f.get("topics"))
        head = self.head()
        if f.get("blockHash") is not None:
            if "fromBlock" in f or "toBlock" in f:
                raise invalid(
                    0,
                    "cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other",
                )
            n = self.ch.number_of_hash(str(f["blockHash"]))
            if n is None or n > head:
                raise RpcError(-32000, "unknown block")
            lo = hi = n
        else:
            lo = self.resolve(f.get("fromBlock", "latest"))
            hi = self.resolve(f.get("toBlock", "latest"))
            if hi > head:
                if self.profile.beyond_head == "error":
                    raise RpcError.from_json(pf.beyond_head_error(hi, head))
                hi = head
            if lo > hi:
                if lo > head:
                    return None
                raise RpcError(-32000, "invalid block range params")
        self._check_span(lo, hi)
        return lo, hi, addrs, topics

    def iter_logs(
        self, lo: int, hi: int, addrs: frozenset[str] | None, topics: _TopicFilter
    ) -> Iterator[list[bytes]]:
        """The matching logs of each event block in [lo, hi] (no caps: the streaming path)."""
        cache, ch = self.cache, self.ch
        for n in ch.event_blocks(lo, hi):
            rb = cache.get(ch, n)
            if rb is None:  # pragma: no cover - event_blocks only yields event blocks
                continue
            out = _match(rb, addrs, topics, self._stamp(n))
            if out:
                self.logs_served += len(out)
                yield out

    @staticmethod
    def _address_filter(value: Any) -> frozenset[str] | None:
        if value is None:
            return None
        if isinstance(value, str):
            return frozenset((_address(value, 0),))
        if isinstance(value, list):
            if not value:
                return None
            return frozenset(_address(v, 0) for v in value)
        raise invalid(0, "invalid address")

    @staticmethod
    def _topic_filter(value: Any) -> _TopicFilter:
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid(0, "invalid topics")
        if len(value) > 4:
            raise invalid(0, "exceed max topics")
        out: _TopicFilter = []
        for pos, item in enumerate(value):
            if item is None:
                continue
            options: Iterable[Any] = [item] if isinstance(item, str) else item
            if not isinstance(options, list):
                raise invalid(0, "invalid topic(s)")
            if not options or any(o is None for o in options):
                continue  # an empty or null alternative matches anything
            for o in options:
                if not isinstance(o, str) or len(o) != 66 or not o.startswith("0x"):
                    raise invalid(0, "invalid topic(s)")
            out.append((pos, frozenset(o.lower() for o in options)))
        return out

    def _stamp(self, n: int) -> bytes | None:
        """The blockTimestamp field of block n's logs, if the profile's logs carry one."""
        if not self.profile.logs_block_timestamp:
            return None
        return b',"blockTimestamp":"' + hex(self.ch.timestamp(n)).encode() + b'"}'

    def _check_span(self, lo: int, hi: int) -> None:
        p = self.profile
        span = hi - lo + 1
        if p.logs_max_span is not None and span > p.logs_max_span:
            if p.logs_style == pf.LOGS_INFURA:
                raise RpcError.from_json(pf.infura_span_error(span, p.logs_max_span))
            raise RpcError.from_json(pf.range_error(p.logs_max_span))

    def collect(
        self, lo: int, hi: int, addrs: frozenset[str] | None, topics: _TopicFilter
    ) -> list[bytes]:
        """All matching logs of [lo, hi], or the profile's error if a cap is exceeded."""
        p = self.profile
        span = hi - lo + 1
        cap: int | None = p.logs_max_results
        if p.logs_style == pf.LOGS_ALCHEMY and p.logs_free_span and span <= p.logs_free_span:
            cap = None
        hard = p.logs_hard_max_results
        out: list[bytes] = []
        cache, ch = self.cache, self.ch
        for n in ch.event_blocks(lo, hi):
            rb = cache.get(ch, n)
            if rb is None:  # pragma: no cover - event_blocks only yields event blocks
                continue
            got = _match(rb, addrs, topics, self._stamp(n))
            if not got:
                continue
            out += got
            if cap is not None and len(out) > cap:
                raise RpcError.from_json(self._too_many(lo, hi, n - 1))
            if hard is not None and len(out) > hard:
                raise RpcError.from_json(pf.alchemy_timeout_error(lo, max(lo, n - 1)))
        self.logs_served += len(out)
        return out

    def _too_many(self, lo: int, hi: int, last_ok: int) -> dict[str, Any]:
        p = self.profile
        cap = p.logs_max_results or 0
        if p.logs_style == pf.LOGS_ALCHEMY:
            free = p.logs_free_span or 1
            to = max(last_ok, min(hi, lo + free - 1))
            return pf.alchemy_range_error(lo, to, free, cap)
        return pf.infura_results_error(lo, max(lo, last_ok), cap)

    # ------------------------------------------------------------------ eth_call
    def call(self, params: list[Any]) -> str:
        if not params or not isinstance(params[0], dict):
            raise RpcError(-32602, "missing value for required argument 0")
        tx = params[0]
        n = self.resolve(params[1] if len(params) > 1 else "latest", 1)
        if n > self.head() or n < 0:
            raise RpcError(-32000, "header not found")
        to = tx.get("to")
        if not isinstance(to, str):
            return "0x"
        to = to.lower()
        data = tx.get("data") or tx.get("input") or "0x"
        if not isinstance(data, str):
            raise invalid(0, "invalid call data")
        data = data.lower()
        sel = data[:10]
        ch = self.ch
        if to == ch.spec.oracle:
            return self._oracle_call(sel, data, n)
        ai = ch.asset_index.get(to)
        if ai is not None:
            a = ch.assets[ai]
            if sel == SEL_DECIMALS:
                return abi_uint(a.decimals)
            if sel == SEL_SYMBOL:
                return abi_string(a.symbol)
            if sel == SEL_NAME:
                return abi_string(a.name)
            raise RpcError(-32000, "execution reverted")
        for agg in ch.aggregators:
            if to == agg.address:
                if sel == SEL_DECIMALS:
                    return abi_uint(8)
                if sel == SEL_LATEST_ANSWER:
                    return abi_uint(ch.price(agg.assets[0], n))
                if sel == SEL_DESCRIPTION:
                    return abi_string(agg.description)
                raise RpcError(-32000, "execution reverted")
        if to in (ch.spec.pool, ch.atlas):
            raise RpcError(-32000, "execution reverted")
        return "0x"

    def _oracle_call(self, sel: str, data: str, n: int) -> str:
        ch = self.ch
        if sel == SEL_GET_ASSET_PRICE:
            if len(data) < 74:
                raise RpcError(-32000, "execution reverted")
            ai = ch.asset_index.get("0x" + data[34:74])
            return abi_uint(0 if ai is None else ch.price(ai, n))
        if sel == SEL_GET_ASSETS_PRICES:
            try:
                count = int(data[74:138], 16)
                addrs = ["0x" + data[138 + 64 * i + 24 : 138 + 64 * (i + 1)] for i in range(count)]
            except ValueError:
                raise RpcError(-32000, "execution reverted") from None
            prices = []
            for a in addrs:
                ai = ch.asset_index.get(a)
                prices.append(word(0 if ai is None else ch.price(ai, n)))
            return "0x" + word(32) + word(len(prices)) + "".join(prices)
        if sel == SEL_GET_SOURCE_OF_ASSET:
            ai = ch.asset_index.get("0x" + data[34:74])
            if ai is None:
                return abi_uint(0)
            agg = ch.aggregator_for(ai, n)
            src = agg.address if agg else ch.derive_address(f"feed:{ch.assets[ai].symbol}")
            return "0x" + src[2:].rjust(64, "0")
        if sel == SEL_BASE_CURRENCY_UNIT:
            return abi_uint(100_000_000)
        raise RpcError(-32000, "execution reverted")
