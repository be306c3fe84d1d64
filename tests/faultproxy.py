"""A fault-injecting JSON-RPC proxy in front of a real node (anvil).

Real providers fail in ways a local node never does: 429s, 5xx, hangs, resets, truncated
or invalid JSON, answers with the wrong id, nulls for blocks that exist, "header not
found", missing logs, a head that goes backwards. This proxy forwards to a real node and
injects exactly those faults on demand, so the client's handling is tested against real
answers everywhere else.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
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
    "wrong-id",
    "null-result",  # result: null (e.g. for a block that exists)
    "header-not-found",  # JSON-RPC error the way geth says it
    "missing-trie-node",
    "drop-logs",  # eth_getLogs answers with an empty list
    "head-back",  # eth_blockNumber far below the real head
    "range-too-large",  # eth_getLogs refused with a suggested range
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FaultProxy:
    upstream: str
    hang_seconds: float = 30.0
    faults: deque[str] = field(default_factory=deque)
    sticky: set[str] = field(default_factory=set)  # applied to every matching request
    requests: int = 0
    injected: int = 0
    methods: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
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

    def _next_fault(self, methods: list[str]) -> str | None:
        for fault in self.sticky:
            if _applies(fault, methods):
                return fault
        if self.faults and _applies(self.faults[0], methods):
            return self.faults.popleft()
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
        if fault in ("429", "429-bare"):
            headers = {"Retry-After": "0.1"} if fault == "429" else {}
            return web.Response(status=429, text="Too Many Requests", headers=headers)
        if fault in ("500", "502", "503"):
            return web.Response(status=int(fault), text="upstream error")
        if fault == "timeout":
            await asyncio.sleep(self.hang_seconds)
            return web.Response(status=504)
        if fault == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if fault == "invalid-json":
            return web.Response(status=200, body=b"<html>bad gateway</html>")
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
        for item, method in zip(answers, methods, strict=False):
            if fault == "wrong-id":
                item["id"] = 987654321
            elif fault == "null-result" and "result" in item:
                item["result"] = None
            elif fault == "drop-logs" and method == "eth_getLogs":
                item["result"] = []
            elif fault == "head-back" and method == "eth_blockNumber":
                item["result"] = "0x1"
        return _json(answer)


def _applies(fault: str, methods: list[str]) -> bool:
    if fault in ("drop-logs", "range-too-large"):
        return "eth_getLogs" in methods
    if fault == "head-back":
        return "eth_blockNumber" in methods
    if fault == "null-result":
        return any(m.startswith("eth_getBlockBy") for m in methods)
    return True


def _json(data: Any) -> web.Response:
    return web.Response(status=200, body=orjson.dumps(data), content_type="application/json")
