"""A fault-injecting JSON-RPC proxy in front of a real node (anvil).

Real providers fail in ways a local node never does: 429s, 5xx, hangs, resets, truncated
or invalid JSON, answers with the wrong id, nulls for blocks that exist, "header not
found", missing logs, a head that goes backwards. This proxy forwards to a real node and
injects exactly those faults on demand, so the client's handling is tested against real
answers everywhere else.

Three ways to inject:
- `inject(*faults)`: a queue; the next matching requests get these faults, in order.
- `inject_any(*faults)`: each of these once, on every fourth request, to the first
  request it applies to: every kind is met early, spaced between good answers.
- `sticky`: a set of faults applied to every matching request.
- `chaos(rate, faults, seed)`: each request gets, with probability `rate`, one fault drawn
  (seeded, so a run can be replayed) from those of `faults` that apply to its methods.
`counts` says how many times each fault was injected. `ThreadedFaultProxy` runs a proxy on
its own event loop in a thread, for clients in another process (the real CLI).
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

FAULTS = {
    "429",  # HTTP 429 with Retry-After: 0.1
    "429-bare",  # HTTP 429 without Retry-After
    "500",
    "502",
    "503",
    "timeout",  # hang longer than the client waits
    "reset",  # close the connection without an answer
    "truncated",  # half a JSON body
    "invalid-json",
    "empty-body",  # 200 with nothing in it
    "wrong-id",
    "partial-batch",  # a batch answer with its last item missing
    "shuffled-batch",  # a batch answer in another order (legal: clients match by id)
    "batch-refused",  # one JSON-RPC error object for a whole batch
    "null-result",  # result: null (for a block that exists, an eth_call, eth_getLogs)
    "wrong-block",  # eth_getBlockByNumber answers with another block than asked for
    "header-not-found",  # JSON-RPC error the way geth says it
    "missing-trie-node",
    "drop-logs",  # eth_getLogs answers with an empty list
    "drop-one-log",  # eth_getLogs answers with one log (of several) missing
    "head-back",  # eth_blockNumber far below the real head
    "head-lag",  # eth_blockNumber a few blocks (lag_blocks) below the real head
    "range-too-large",  # eth_getLogs refused with a suggested range
    "slow",  # answer correctly after slow_seconds
}

# Faults a correct client must survive without being told: everything above except the
# ones that make a node silently give a different answer (those need a second opinion).
TRANSPORT_FAULTS = (
    "429",
    "429-bare",
    "500",
    "502",
    "503",
    "timeout",
    "reset",
    "truncated",
    "invalid-json",
    "empty-body",
    "wrong-id",
    "partial-batch",
    "shuffled-batch",
    "batch-refused",
    "header-not-found",
    "missing-trie-node",
    "range-too-large",
    "slow",
)
DETECTABLE_DATA_FAULTS = ("null-result", "wrong-block", "head-back")
SILENT_DATA_FAULTS = ("drop-logs", "drop-one-log")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FaultProxy:
    upstream: str
    hang_seconds: float = 30.0
    slow_seconds: float = 0.3
    lag_blocks: int = 3
    faults: deque[str] = field(default_factory=deque)
    pending: list[str] = field(default_factory=list)
    sticky: set[str] = field(default_factory=set)  # applied to every matching request
    requests: int = 0
    injected: int = 0
    methods: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    rate: float = 0.0
    chaos_faults: tuple[str, ...] = ()
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    url: str = ""

    async def start(self, port: int | None = None) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = port or free_port()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self._session = aiohttp.ClientSession()
        self.url = f"http://127.0.0.1:{port}/"
        return self.url

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def inject(self, *faults: str) -> None:
        for fault in faults:
            assert fault in FAULTS, fault
            self.faults.append(fault)

    def inject_any(self, *faults: str) -> None:
        assert all(f in FAULTS for f in faults), faults
        self.pending.extend(faults)

    def chaos(self, rate: float, faults: Iterable[str], seed: int = 0) -> None:
        """From now on, fault a `rate` share of requests at random (seeded)."""
        chosen = tuple(faults)
        assert all(f in FAULTS for f in chosen), chosen
        self.rate = rate
        self.chaos_faults = chosen
        self.rng = random.Random(seed)

    def calm(self) -> None:
        self.rate = 0.0
        self.sticky.clear()
        self.faults.clear()
        self.pending.clear()

    def _next_fault(self, methods: list[str]) -> str | None:
        for fault in sorted(self.sticky):
            if _applies(fault, methods):
                return fault
        if self.faults and _applies(self.faults[0], methods):
            return self.faults.popleft()
        if self.pending and self.requests % 4 == 0:
            # every fourth request until each pending fault has fired: sure to happen in
            # a short run, yet spaced so retries never meet several faults in a row
            for i, fault in enumerate(self.pending):
                if _applies(fault, methods):
                    return self.pending.pop(i)
        if self.rate and self.rng.random() < self.rate:
            usable = [f for f in self.chaos_faults if _applies(f, methods)]
            if usable:
                return self.rng.choice(usable)
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        body = await request.read()
        payload = orjson.loads(body)
        items = payload if isinstance(payload, list) else [payload]
        methods = [str(item.get("method")) for item in items]
        self.methods.extend(methods)
        fault = self._next_fault(methods)
        if fault is not None:
            self.injected += 1
            self.counts[fault] += 1
        if fault in ("429", "429-bare"):
            headers = {"Retry-After": "0.1"} if fault == "429" else {}
            return web.Response(status=429, text="Too Many Requests", headers=headers)
        if fault in ("500", "502", "503"):
            return web.Response(status=int(fault), text="upstream error")
        if fault == "timeout":
            await asyncio.sleep(self.hang_seconds)
            return web.Response(status=504)
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        if fault == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if fault == "invalid-json":
            return web.Response(status=200, body=b"<html>bad gateway</html>")
        if fault == "empty-body":
            return web.Response(status=200, body=b"", content_type="application/json")
        if fault == "batch-refused":
            return _json(
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": -32603, "message": "internal error: batch dropped"},
                }
            )
        if fault in ("header-not-found", "missing-trie-node", "range-too-large"):
            message = {
                "header-not-found": "header not found",
                "missing-trie-node": "missing trie node 1234abcd (path ) state is not available",
                "range-too-large": "query returned more than 10000 results. Try with this "
                "block range [0x0, 0x1].",
            }[fault]
            code = -32005 if fault == "range-too-large" else -32000
            answers = [
                {
                    "jsonrpc": "2.0",
                    "id": item.get("id"),
                    "error": {"code": code, "message": message},
                }
                for item in items
            ]
            return _json(answers if isinstance(payload, list) else answers[0])
        assert self._session is not None
        async with self._session.post(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        ) as upstream:
            raw = await upstream.read()
        if fault == "truncated":
            return web.Response(status=200, body=raw[: len(raw) // 2])
        answer: Any = orjson.loads(raw)
        answers = answer if isinstance(answer, list) else [answer]
        if fault == "partial-batch" and isinstance(answer, list) and len(answer) > 1:
            answer.pop()
            return _json(answer)
        if fault == "shuffled-batch" and isinstance(answer, list):
            self.rng.shuffle(answer)
            return _json(answer)
        for item, (request_item, method) in zip(
            answers, zip(items, methods, strict=True), strict=False
        ):
            if fault == "wrong-id":
                item["id"] = 987654321
            elif fault == "null-result" and "result" in item:
                item["result"] = None
            elif fault == "wrong-block" and method.startswith("eth_getBlockBy"):
                if isinstance(item.get("result"), dict):
                    await self._swap_block(item, request_item)
            elif fault == "drop-logs" and method == "eth_getLogs":
                item["result"] = []
            elif fault == "drop-one-log" and method == "eth_getLogs":
                logs = item.get("result")
                if isinstance(logs, list) and len(logs) > 1:
                    logs.pop(self.rng.randrange(len(logs)))
            elif fault == "head-back" and method == "eth_blockNumber":
                item["result"] = "0x1"
            elif fault == "head-lag" and method == "eth_blockNumber" and "result" in item:
                item["result"] = hex(max(0, int(item["result"], 16) - self.lag_blocks))
        return _json(answer)

    async def _swap_block(self, item: dict[str, Any], request_item: dict[str, Any]) -> None:
        """Replace a block answer by the previous block (what a confused backend returns)."""
        number = int(item["result"]["number"], 16)
        if number == 0:
            return
        params = list(request_item.get("params", []))
        query = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_getBlockByNumber",
            "params": [hex(number - 1), *(params[1:] or [False])],
        }
        assert self._session is not None
        async with self._session.post(self.upstream, json=query) as upstream:
            other = orjson.loads(await upstream.read())
        item["result"] = other.get("result")


def _applies(fault: str, methods: list[str]) -> bool:
    if fault in ("drop-logs", "drop-one-log", "range-too-large"):
        return "eth_getLogs" in methods
    if fault in ("head-back", "head-lag"):
        return "eth_blockNumber" in methods
    if fault == "null-result":
        return any(
            m.startswith("eth_getBlockBy") or m in ("eth_call", "eth_getLogs") for m in methods
        )
    if fault == "wrong-block":
        return any(m.startswith("eth_getBlockBy") for m in methods)
    if fault in ("partial-batch", "shuffled-batch", "batch-refused"):
        return len(methods) > 1
    return True  # header-not-found / missing-trie-node: seen on state calls, and on any call


def _json(data: Any) -> web.Response:
    return web.Response(status=200, body=orjson.dumps(data), content_type="application/json")


class ThreadedFaultProxy:
    """A FaultProxy on its own event loop in a daemon thread (for another process's client).
    Its settings may be changed from the test thread through `call`."""

    def __init__(self, upstream: str, **options: Any) -> None:
        self.proxy = FaultProxy(upstream, **options)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.url = ""

    def start(self, port: int | None = None) -> str:
        self.thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self.proxy.start(port), self.loop).result(10)
        return self.url

    def call(self, fn: Any, *args: Any) -> Any:
        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
