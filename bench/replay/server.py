"""The HTTP side of the replay node, the project's stand-in for a paid JSON-RPC provider (none
can be reached from this offline machine): one aiohttp server, one path per chain
(http://HOST:PORT/ethereum ...), JSON-RPC single and batch requests, and the provider
behaviour of a `Profile`: latency, a token-bucket rate limit answered with HTTP 429 and
Retry-After, a share of 5xx answers and of requests that hang past a client's timeout.
GET /stats reports per-chain, per-method request counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiohttp import web

from .history import History
from .profiles import GATEWAY_TIMEOUT, SERVER_ERRORS, Profile, get_profile, rate_limit_body
from .rpc import ChainEndpoint, RpcError

log = logging.getLogger(__name__)


class TokenBucket:
    """`rate` tokens per second, bursts up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self, cost: float) -> float:
        """Take `cost` tokens; 0.0 if granted, else the seconds until it would be."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        cost = min(cost, self.capacity)
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class HeadClock:
    """The head of one chain: fixed, or advancing at the chain's block time (x speed)."""

    def __init__(
        self, initial: int, last: int, block_time_ms: int, moving: bool, speed: float
    ) -> None:
        self.initial = initial
        self.last = last
        self.block_time_ms = block_time_ms
        self.moving = moving
        self.speed = speed
        self.t0 = time.monotonic()

    def __call__(self) -> int:
        if not self.moving:
            return self.initial
        elapsed_ms = (time.monotonic() - self.t0) * 1000 * self.speed
        return min(self.last, self.initial + int(elapsed_ms // self.block_time_ms))


class ChainStats:
    __slots__ = ("batches", "calls", "http_5xx", "http_429", "http_requests", "timeouts")

    def __init__(self) -> None:
        self.http_requests = 0
        self.batches = 0
        self.calls = 0
        self.http_429 = 0
        self.http_5xx = 0
        self.timeouts = 0


class ReplayServer:
    """A stand-in JSON-RPC provider serving a `History` under a `Profile`."""

    def __init__(
        self,
        history: History,
        profile: Profile | str = "default",
        *,
        moving_head: bool = False,
        speed: float = 1.0,
        initial_heads: Mapping[str, int] | None = None,
        fault_seed: int | None = None,
    ) -> None:
        self.history = history
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        self.moving_head = moving_head
        self._rng = random.Random(history.seed if fault_seed is None else fault_seed)
        self.clocks: dict[str, HeadClock] = {}
        self.endpoints: dict[str, ChainEndpoint] = {}
        self.stats_by_chain: dict[str, ChainStats] = {}
        self.buckets: dict[str, TokenBucket | None] = {}
        for ch in history:
            if initial_heads and ch.name in initial_heads:
                initial = initial_heads[ch.name]
            elif moving_head:
                initial = max(ch.start, ch.last - ch.window // 10)
            else:
                initial = ch.last
            clock = HeadClock(initial, ch.last, ch.spec.block_time_ms, moving_head, speed)
            self.clocks[ch.name] = clock
            self.endpoints[ch.name] = ChainEndpoint(ch, self.profile, clock)
            self.stats_by_chain[ch.name] = ChainStats()
        self._reset_buckets()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._started = time.monotonic()
        self.host = "127.0.0.1"
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_get("/stats", self._handle_stats)
        app.router.add_get("/health", self._handle_health)
        app.router.add_post("/{chain}", self._handle_rpc)
        app.router.add_post("/{chain}/", self._handle_rpc)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.host = host
        self.port = int(self._runner.addresses[0][1])
        self._started = time.monotonic()
        for clock in self.clocks.values():
            clock.t0 = self._started
        return self.base_url

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ReplayServer:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, chain: str) -> str:
        return f"{self.base_url}/{chain}"

    def urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in self.endpoints}

    def head(self, chain: str) -> int:
        return self.clocks[chain]()

    def finalized(self, chain: str) -> int:
        return self.endpoints[chain].finalized()

    def set_head(self, chain: str, number: int) -> None:
        """Move a chain's head now (it keeps advancing from there if the head moves)."""
        clock = self.clocks[chain]
        clock.initial = max(0, min(number, clock.last))
        clock.t0 = time.monotonic()

    def set_profile(self, profile: Profile | str) -> None:
        """Switch provider behaviour while running (e.g. to start failing mid-test)."""
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        for ep in self.endpoints.values():
            ep.profile = self.profile
        self._reset_buckets()

    def _reset_buckets(self) -> None:
        rps = self.profile.requests_per_second
        self.buckets = {name: (TokenBucket(rps) if rps else None) for name in self.endpoints}

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict[str, Any]:
        chains: dict[str, Any] = {}
        totals: dict[str, int] = {}
        methods_total: dict[str, int] = {}
        for name, ep in self.endpoints.items():
            st = self.stats_by_chain[name]
            entry: dict[str, Any] = {
                "head": ep.head(),
                "finalized": ep.finalized(),
                "http_requests": st.http_requests,
                "batches": st.batches,
                "calls": st.calls,
                "http_429": st.http_429,
                "http_5xx": st.http_5xx,
                "timeouts": st.timeouts,
                "logs_served": ep.logs_served,
                "rpc_errors": {str(k): v for k, v in sorted(ep.errors.items())},
                "methods": dict(sorted(ep.methods.items())),
            }
            chains[name] = entry
            for k in (
                "http_requests",
                "batches",
                "calls",
                "http_429",
                "http_5xx",
                "timeouts",
                "logs_served",
            ):
                totals[k] = totals.get(k, 0) + int(entry[k])
            for m, c in ep.methods.items():
                methods_total[m] = methods_total.get(m, 0) + c
        totals["rpc_errors"] = sum(sum(ep.errors.values()) for ep in self.endpoints.values())
        return {
            "profile": self.profile.name,
            "uptime_s": round(time.monotonic() - self._started, 3),
            "totals": totals,
            "methods": dict(sorted(methods_total.items())),
            "chains": chains,
        }

    def reset_stats(self) -> None:
        for name, ep in self.endpoints.items():
            ep.methods.clear()
            ep.errors.clear()
            ep.logs_served = 0
            self.stats_by_chain[name] = ChainStats()

    # ------------------------------------------------------------------ handlers
    async def _handle_stats(self, request: web.Request) -> web.Response:
        if request.query.get("reset") in ("1", "true"):
            out = self.stats()
            self.reset_stats()
            return _json(out)
        return _json(self.stats())

    async def _handle_health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _handle_rpc(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["chain"]
        ep = self.endpoints.get(name)
        if ep is None:
            return web.Response(status=404, text=f"unknown chain {name!r}\n")
        st = self.stats_by_chain[name]
        st.http_requests += 1
        body = await request.read()
        p = self.profile
        if p.latency_s or p.latency_jitter_s:
            await asyncio.sleep(p.latency_s + self._rng.random() * p.latency_jitter_s)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _json(_error(None, -32700, "parse error"))
        batch = isinstance(payload, list)
        calls: list[Any] = payload if batch else [payload]
        if batch:
            st.batches += 1
            if not calls:
                return _json(_error(None, -32600, "empty batch"))
            if p.max_batch is not None and len(calls) > p.max_batch:
                return _json(
                    _error(None, -32600, f"batch size too large: {len(calls)} > {p.max_batch}")
                )
        bucket = self.buckets.get(name)
        if bucket is not None:
            wait = bucket.take(len(calls))
            if wait > 0:
                st.http_429 += 1
                return web.Response(
                    status=429,
                    body=orjson.dumps(rate_limit_body(p.rate_limit_style, bucket.rate)),
                    content_type="application/json",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        roll = self._rng.random()
        if roll < p.timeout_rate:
            st.timeouts += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=p.hang_s)
            return _raw(GATEWAY_TIMEOUT)
        if roll < p.timeout_rate + p.error_5xx_rate:
            st.http_5xx += 1
            return _raw(SERVER_ERRORS[self._rng.randrange(len(SERVER_ERRORS))])
        st.calls += len(calls)
        if not batch and isinstance(payload, dict) and payload.get("method") == "eth_getLogs":
            return await self._stream_logs(request, ep, payload)
        results = [self._one(ep, c) for c in calls]
        return _json(results if batch else results[0])

    async def _stream_logs(
        self, request: web.Request, ep: ChainEndpoint, call: dict[str, Any]
    ) -> web.StreamResponse:
        """Answer a single eth_getLogs request in pieces, so that memory stays flat however
        many logs a range holds. Without a result cap the logs are produced block by block
        while being sent; with one they are collected first (the cap must be checked before
        anything is sent) and then written out without building one big body."""
        ep.methods["eth_getLogs"] += 1
        cid = call.get("id")
        params = call.get("params")
        chunks: Iterable[list[bytes]]
        try:
            query = ep.logs_query(params if isinstance(params, list) else [])
            if query is None:
                chunks = []
            elif ep.streams_logs:
                chunks = ep.iter_logs(*query)
            else:
                chunks = [ep.collect(*query)]
        except RpcError as e:
            ep.errors[e.code] += 1
            return _json({"jsonrpc": "2.0", "id": cid, "error": e.to_json()})
        except Exception:  # a bug here must not take the server down
            log.exception("internal error answering eth_getLogs")
            ep.errors[-32603] += 1
            return _json(_error(cid, -32603, "internal error"))
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        # a client that gave up (its timeout, or an answer longer than it reads) drops the
        # connection; nothing more to answer
        with contextlib.suppress(ConnectionError):
            await self._write_logs(request, resp, cid, chunks)
        return resp

    @staticmethod
    async def _write_logs(
        request: web.Request, resp: web.StreamResponse, cid: Any, chunks: Iterable[list[bytes]]
    ) -> None:
        await resp.prepare(request)
        await resp.write(b'{"jsonrpc":"2.0","id":' + orjson.dumps(cid) + b',"result":[')
        parts: list[bytes] = []
        size = 0
        first = True
        for logs in chunks:
            for i in range(0, len(logs), 512):
                piece = b",".join(logs[i : i + 512])
                if not first:
                    parts.append(b",")
                first = False
                parts.append(piece)
                size += len(piece)
                if size >= 1 << 18:
                    await resp.write(b"".join(parts))
                    parts, size = [], 0
            if isinstance(chunks, list):
                logs.clear()  # let the collected logs go as they are sent
        if parts:
            await resp.write(b"".join(parts))
        await resp.write(b"]}")
        await resp.write_eof()

    def _one(self, ep: ChainEndpoint, call: Any) -> dict[str, Any]:
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            ep.errors[-32600] += 1
            return _error(
                call.get("id") if isinstance(call, dict) else None, -32600, "invalid request"
            )
        cid = call.get("id")
        try:
            result = ep.handle(call["method"], call.get("params"))
        except RpcError as e:
            ep.errors[e.code] += 1
            return {"jsonrpc": "2.0", "id": cid, "error": e.to_json()}
        except Exception:  # a bug here must not take the server down
            log.exception("internal error answering %s", call.get("method"))
            ep.errors[-32603] += 1
            return _error(cid, -32603, "internal error")
        return {"jsonrpc": "2.0", "id": cid, "result": result}


def _error(cid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": cid, "error": {"code": code, "message": message}}


def _json(obj: Any) -> web.Response:
    return web.Response(body=orjson.dumps(obj), content_type="application/json")


def _raw(answer: tuple[int, str, bytes]) -> web.Response:
    status, ctype, body = answer
    return web.Response(status=status, body=body, content_type=ctype)
