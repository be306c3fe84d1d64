"""JSON-RPC over HTTP to a pool of endpoints: batching, rate limits, retries, spreading.

Every call goes through `_attempt`, which chooses an endpoint, waits for its rate-limit
tokens (one per call: providers count every call of a batch), sends one HTTP request (a
single call or a batch) and classifies what came back. The endpoints are used together:
each request goes to the healthy endpoint whose bucket can serve it soonest, so calls
spread in proportion to the endpoints' rate limits (two providers at 300 calls/s give the
chain ~600). A request that names a block (eth_getLogs up to toBlock, a block, a call at a
block) goes only to endpoints whose last reported head has reached that block: a lagging
node answers eth_getLogs above its head with an empty list, which would lose events. A
batch longer than `max_batch` goes out as several requests at once, over the endpoints; a
first attempt still unanswered `hedge_after` seconds after it went out is also sent to
another endpoint and the first answer wins (a hung request then costs that, not a timeout).
tenacity drives the retries with jittered exponential backoff; an endpoint that fails is
cooled down so the next attempt goes elsewhere and the others absorb its share. A 429 is
flow control, not a failure: it cools the endpoint down for its Retry-After and is retried
without spending the attempts meant for real failures, for up to `rate_limit_budget`
seconds.
A caller may pass `check`, which looks at each answer inside the attempt: an answer it
refuses (EndpointFault: null for a block that exists, a block other than the one asked
for, ...) counts against the endpoint that gave it and is retried like a 5xx.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
)

from indexer import metrics
from indexer.config import mask_url
from indexer.rpc.errors import (
    AllEndpointsFailed,
    EndpointFault,
    RangeTooLarge,
    RateLimited,
    ResponseTooLarge,
    RpcError,
    TransientError,
    classify,
)

Call = tuple[str, Sequence[Any]]
Check = Callable[[Call, Any], None]  # raises EndpointFault for an impossible answer

HEAD_REFRESH_S = 1.0  # an endpoint's head is asked for at most this often
HEDGE_LOGS_FACTOR = 3.0  # eth_getLogs of a wide range is slower than other calls
CHUNKS_PER_ENDPOINT = 2  # requests of one long batch in flight at once, per endpoint
# where a method names the block it reads (position in params)
BLOCK_PARAM = {
    "eth_getBlockByNumber": 0,
    "eth_call": 1,
    "eth_getCode": 1,
    "eth_getBalance": 1,
    "eth_getTransactionCount": 1,
    "eth_getStorageAt": 2,
    "eth_getBlockReceipts": 0,
}


def needed_block(calls: Sequence[Call]) -> int | None:
    """The highest block number the calls name (eth_getLogs: its toBlock), None when they
    name none (tags such as latest or finalized are each endpoint's own)."""
    highest: int | None = None
    for method, params in calls:
        value: Any = None
        if method == "eth_getLogs":
            if params and isinstance(params[0], dict):
                value = params[0].get("toBlock")
        else:
            position = BLOCK_PARAM.get(method)
            if position is not None and len(params) > position:
                value = params[position]
                if isinstance(value, dict):  # EIP-1898
                    value = value.get("blockNumber")
        if isinstance(value, str) and value.startswith("0x"):
            try:
                number = int(value, 16)
            except ValueError:
                continue
            highest = number if highest is None else max(highest, number)
    return highest


class TokenBucket:
    """Calls per second with a small burst; waiting is cooperative (asyncio.sleep).

    A batch of N calls takes N tokens, as providers count them. Tokens are reserved when
    asked for (the balance may go below zero) and the caller sleeps until its reservation
    is covered: waiters are served in arrival order, a batch larger than the bucket still
    goes out (at the rate), and `ready_in` tells, without waiting, how soon a request would
    go, which is how the client chooses among endpoints."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 4)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def ready_in(self, count: int = 1, now: float | None = None) -> float:
        """Seconds until `count` tokens would be granted; negative: that much to spare."""
        now = time.monotonic() if now is None else now
        tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        return (max(1, count) - tokens) / self.rate

    async def take(self, count: int = 1) -> None:
        self._refill(time.monotonic())
        self.tokens -= max(1, count)
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)


@dataclass
class RetryBudget:
    """What one request may still spend: `attempts` real failures (5xx, timeouts, broken
    answers), and `rate_limit_s` seconds of 429s counted from the first one. Providers
    answer 429 to say "slower", so 429s must not use up the attempts; the time budget
    still ends a limit that never lifts."""

    attempts: int
    rate_limit_s: float
    failures: int = 0
    rate_limited: int = 0
    limited_since: float | None = None

    def spent(self, error: BaseException | None) -> bool:
        if isinstance(error, RateLimited):
            self.rate_limited += 1
            now = time.monotonic()
            if self.limited_since is None:
                self.limited_since = now
            return now - self.limited_since >= self.rate_limit_s
        self.failures += 1
        return self.failures >= self.attempts


@dataclass
class Endpoint:
    url: str
    limiter: TokenBucket
    failures: int = 0
    cooldown_until: float = 0.0
    last_error: str | None = None
    requests: int = 0
    calls: int = 0
    head: int = -1  # the head it last reported (eth_blockNumber); -1: not known yet
    head_at: float = float("-inf")  # when it was last asked
    refreshing: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        return mask_url(self.url)

    def healthy(self, now: float) -> bool:
        return now >= self.cooldown_until

    def backoff(self, cap: float = 30.0) -> float:
        """The pause after one more failure: growing with the consecutive failures."""
        return min(cap, 0.25 * 2 ** min(self.failures + 1, 7))

    def record_failure(self, error: Exception, pause: float | None = None) -> None:
        backoff = pause if pause is not None else self.backoff()
        self.failures += 1
        self.last_error = str(error)[:300]
        self.cooldown_until = time.monotonic() + backoff

    def record_success(self) -> None:
        self.failures = 0

    def note_head(self, answer: Any) -> None:
        try:
            self.head = int(answer, 16)
        except (TypeError, ValueError):
            return
        self.head_at = time.monotonic()


@dataclass
class RpcStats:
    requests: int = 0
    calls: int = 0
    errors: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    checked_ranges: int = 0  # eth_getLogs answers compared with a second endpoint
    unchecked_ranges: int = 0  # ... for which no second endpoint answered
    log_disagreements: int = 0  # ... where the two answers differed
    hedged: int = 0  # requests also sent to a second endpoint (the first was slow)
    hedges_won: int = 0  # ... where the second endpoint answered first


class RpcClient:
    """One chain's endpoints. `call` and `batch` retry transient failures; RangeTooLarge and
    RpcError are returned to the caller, who knows what to do with them."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        chain: str = "",
        requests_per_second: float = 25,
        rates: Sequence[float | None] | None = None,
        timeout: float = 20.0,
        max_attempts: int = 8,
        max_batch: int = 100,
        max_wait: float = 10.0,
        rate_limit_budget: float = 300.0,
        first_attempt_timeout: float | None = 5.0,
        hedge_after: float | None = 1.0,
    ) -> None:
        if not urls:
            raise ValueError(f"{chain or 'chain'}: no RPC URL configured")
        if rates is not None and len(rates) != len(urls):
            raise ValueError(f"{chain or 'chain'}: {len(rates)} rate limits for {len(urls)} URLs")
        self.chain = chain
        # Each endpoint has its own limit (rates[i]; None: requests_per_second).
        self.endpoints = [
            Endpoint(url, TokenBucket(rate or requests_per_second))
            for url, rate in zip(urls, rates or [None] * len(urls), strict=True)
        ]
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.rate_limit_budget = rate_limit_budget
        # A call that usually answers in milliseconds and is silent this long is most likely
        # lost (a hung upstream): its first attempt gives up early and the retry gets the
        # full timeout. eth_getLogs always gets the full timeout (big ranges are slow).
        self.first_attempt_timeout = first_attempt_timeout
        # With several endpoints, a request still unanswered this long after it went out
        # (eth_getLogs: HEDGE_LOGS_FACTOR times longer) is also sent to another endpoint,
        # and the first answer wins: a hung request costs this, not its timeout.
        self.hedge_after = hedge_after
        self.stats = RpcStats()
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for endpoint in self.endpoints:
            if endpoint.refreshing is not None:
                endpoint.refreshing.cancel()
                endpoint.refreshing = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=300),
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
            )
        return self._session

    @staticmethod
    def _pick(candidates: Sequence[Endpoint], count: int) -> Endpoint:
        """The healthy endpoint whose bucket can serve `count` calls soonest (ties: the
        first in configured order), else the one whose cooldown ends soonest. Serving each
        request where it goes out first fills the buckets in proportion to their rates."""
        now = time.monotonic()
        healthy = [e for e in candidates if e.healthy(now)]
        if not healthy:
            return min(candidates, key=lambda e: e.cooldown_until)
        return min(healthy, key=lambda e: e.limiter.ready_in(count, now))

    async def _choose(self, calls: list[Call], exclude: Endpoint | None = None) -> Endpoint:
        """Where to send `calls`: any endpoint, or, for calls that name a block, one whose
        reported head has reached it (heads of the others are asked for in the background,
        or awaited when none has). Raises TransientError when no endpoint has the block.
        With `exclude` (a hedge): a healthy endpoint other than that one, now, or none."""
        needed = needed_block(calls) if len(self.endpoints) > 1 else None
        if exclude is not None:
            now = time.monotonic()
            others = [
                e
                for e in self.endpoints
                if e is not exclude and e.healthy(now) and (needed is None or e.head >= needed)
            ]
            if not others:
                raise TransientError(f"{self.chain}: no other endpoint to ask")
            return self._pick(others, len(calls))
        if needed is None:
            return self._pick(self.endpoints, len(calls))
        ready: list[Endpoint] = []
        for waited in (False, True):
            now = time.monotonic()
            ready = [e for e in self.endpoints if e.head >= needed]
            for endpoint in self.endpoints:
                if endpoint.head < needed:
                    self._refresh_head(endpoint)
            if any(e.healthy(now) for e in ready):
                break
            pending = [e.refreshing for e in self.endpoints if e.refreshing is not None]
            if waited or not pending:
                break
            await asyncio.wait(pending, timeout=self.first_attempt_timeout or self.timeout)
        if not ready:
            heads = ", ".join(f"{e.label} at {e.head}" for e in self.endpoints)
            raise TransientError(f"{self.chain}: no endpoint has reached block {needed} ({heads})")
        return self._pick(ready, len(calls))

    def _refresh_head(self, endpoint: Endpoint) -> None:
        """Ask a healthy endpoint for its head in the background, at most once a second."""
        now = time.monotonic()
        if (
            endpoint.refreshing is not None
            or now - endpoint.head_at < HEAD_REFRESH_S
            or not endpoint.healthy(now)
        ):
            return
        endpoint.head_at = now
        endpoint.refreshing = asyncio.create_task(self._ask_head(endpoint))

    async def _ask_head(self, endpoint: Endpoint) -> None:
        try:
            await self._single("eth_blockNumber", (), only=endpoint, attempts=1)
        except (TransientError, AllEndpointsFailed, RpcError):
            pass  # it stays where it was; asked again when needed
        finally:
            endpoint.refreshing = None

    def mark_faulty(self, endpoint_url: str, reason: str, pause: float | None = 60.0) -> None:
        """Stop using an endpoint for a while (e.g. its head went back past finality);
        pause None: the usual backoff, growing with its consecutive failures."""
        for endpoint in self.endpoints:
            if endpoint.url == endpoint_url:
                endpoint.record_failure(EndpointFault(reason), pause)

    # -- public API -------------------------------------------------------------------

    async def call(
        self,
        method: str,
        params: Sequence[Any] = (),
        *,
        check: Check | None = None,
        attempts: int | None = None,
    ) -> Any:
        """One call with retries and failover; `attempts` overrides the client's default
        (fewer where failing fast is worth more than riding out an outage)."""
        return await self._single(method, params, check=check, attempts=attempts)

    async def batch(self, calls: Sequence[Call], *, check: Check | None = None) -> list[Any]:
        """Results in order; a call the node refused for good comes back as its RpcError
        (e.g. a reverted eth_call), so one bad call does not sink its neighbours."""
        chunks = [
            list(calls[start : start + self.max_batch])
            for start in range(0, len(calls), self.max_batch)
        ]
        if len(chunks) <= 1:
            return await self._with_retries(chunks[0], single=False, check=check) if chunks else []
        # A long batch goes out as several requests at once (spread over the endpoints),
        # a few per endpoint, so that it does not queue ahead of every other caller.
        gate = asyncio.Semaphore(CHUNKS_PER_ENDPOINT * len(self.endpoints))

        async def one(chunk: list[Call]) -> list[Any]:
            async with gate:
                return await self._with_retries(chunk, single=False, check=check)

        tasks = [asyncio.ensure_future(one(chunk)) for chunk in chunks]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [answer for part in parts for answer in part]

    async def call_with_endpoint(
        self,
        method: str,
        params: Sequence[Any] = (),
        *,
        check: Check | None = None,
        max_bytes: int | None = None,
    ) -> tuple[Any, str]:
        """Like call, but also says which endpoint answered (for head sanity checks and
        log cross-checks). max_bytes: a longer answer raises ResponseTooLarge, unread."""
        holder: dict[str, str] = {}
        result = await self._single(method, params, holder=holder, check=check, max_bytes=max_bytes)
        return result, holder.get("url", "")

    def second_opinions(self, url: str, reached: int | None = None) -> list[Endpoint]:
        """The healthy endpoints other than `url` (and, with `reached`, whose head has
        reached that block), in configured order: whom to ask when an answer should be
        checked against another node."""
        now = time.monotonic()
        out = []
        for endpoint in self.endpoints:
            if endpoint.url == url or not endpoint.healthy(now):
                continue
            if reached is not None and endpoint.head < reached:
                self._refresh_head(endpoint)
                continue
            out.append(endpoint)
        return out

    async def ask_each(
        self, method: str, params: Sequence[Any] = ()
    ) -> list[tuple[str, Any | Exception]]:
        """The same call to every healthy endpoint at once, one attempt each: (url, answer
        or the exception it raised), e.g. every endpoint's head."""
        now = time.monotonic()
        asked = [e for e in self.endpoints if e.healthy(now)]

        async def one(endpoint: Endpoint) -> Any:
            return await self._single(method, params, only=endpoint, attempts=1)

        answers = await asyncio.gather(*(one(e) for e in asked), return_exceptions=True)
        out: list[tuple[str, Any | Exception]] = []
        for endpoint, answer in zip(asked, answers, strict=True):
            if isinstance(answer, BaseException) and not isinstance(answer, Exception):
                raise answer
            out.append((endpoint.url, answer))
        return out

    async def call_on(
        self,
        endpoint: Endpoint,
        method: str,
        params: Sequence[Any] = (),
        *,
        attempts: int = 2,
        check: Check | None = None,
    ) -> Any:
        """One call to this endpoint only (no failover), with a few retries."""
        return await self._single(method, params, check=check, only=endpoint, attempts=attempts)

    # -- internals --------------------------------------------------------------------

    async def _single(self, method: str, params: Sequence[Any], **options: Any) -> Any:
        """One call through _with_retries; a refusal for good (RpcError) is raised."""
        results = await self._with_retries([(method, params)], single=True, **options)
        if isinstance(results[0], Exception):
            raise results[0]
        return results[0]

    def _wait(self, state: RetryCallState, budget: RetryBudget, only: Endpoint | None) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited):
            # The endpoint that said 429 is cooled down (Retry-After, else a growing backoff):
            # wait until some endpoint may be asked again, which is at once if another is.
            asked = [only] if only is not None else self.endpoints
            now = time.monotonic()
            return max(0.0, min(min(e.cooldown_until for e in asked) - now, 60.0))
        # Jittered exponential backoff over the real failures only, so a run of 429s
        # before a 5xx does not make the next wait long.
        failed = max(1, state.attempt_number - budget.rate_limited)
        return random.uniform(0, min(self.max_wait, 0.2 * 2 ** min(failed - 1, 30)))

    async def _with_retries(
        self,
        calls: list[Call],
        *,
        single: bool,
        holder: dict[str, str] | None = None,
        check: Check | None = None,
        only: Endpoint | None = None,
        attempts: int | None = None,
        max_bytes: int | None = None,
    ) -> list[Any]:
        last: Exception | None = None
        # One endpoint only (a second opinion, a sanity check) is optional work: it waits
        # out a rate limit for a shorter while.
        limit_s = self.rate_limit_budget if only is None else min(self.rate_limit_budget, 30.0)
        budget = RetryBudget(attempts or self.max_attempts, limit_s)
        try:
            async for attempt in AsyncRetrying(
                stop=lambda state: budget.spent(
                    state.outcome.exception() if state.outcome else None
                ),
                wait=lambda state: self._wait(state, budget, only),
                retry=retry_if_exception_type(TransientError),
                reraise=True,
            ):
                with attempt:
                    try:
                        first = attempt.retry_state.attempt_number == 1
                        if first and only is None and self._may_hedge():
                            return await self._hedged(
                                calls,
                                single=single,
                                holder=holder,
                                check=check,
                                max_bytes=max_bytes,
                            )
                        return await self._attempt(
                            calls,
                            single=single,
                            holder=holder,
                            check=check,
                            only=only,
                            first=first,
                            max_bytes=max_bytes,
                        )
                    except TransientError as exc:
                        last = exc
                        raise
        except TransientError:
            pass
        asked = [only] if only is not None else self.endpoints
        labels = ", ".join(f"{e.label} ({e.last_error})" for e in asked)
        if isinstance(last, RateLimited):
            raise AllEndpointsFailed(
                f"{self.chain}: {calls[0][0]} still rate-limited (HTTP 429) after "
                f"{budget.rate_limit_s:g} s of waiting on every endpoint; lower "
                f"requests_per_second below the provider's limit: {labels or last}"
            )
        raise AllEndpointsFailed(
            f"{self.chain}: {calls[0][0]} failed on every endpoint after "
            f"{budget.failures} attempts: {labels or last}"
        )

    def _may_hedge(self) -> bool:
        if self.hedge_after is None or len(self.endpoints) < 2:
            return False
        now = time.monotonic()
        return sum(1 for e in self.endpoints if e.healthy(now)) >= 2

    async def _hedged(
        self,
        calls: list[Call],
        *,
        single: bool,
        holder: dict[str, str] | None,
        check: Check | None,
        max_bytes: int | None,
    ) -> list[Any]:
        """A first attempt that, if still unanswered `hedge_after` seconds after it went out
        (not counting its wait for tokens), is also sent to another endpoint; the first
        good answer wins and the other request is dropped. The slow endpoint is cooled
        down briefly, as if it had failed."""
        assert self.hedge_after is not None
        sent: list[Endpoint] = []
        went_out = asyncio.Event()

        def note(endpoint: Endpoint) -> None:
            sent.append(endpoint)
            went_out.set()

        holders: list[dict[str, str]] = [{}, {}]
        options: dict[str, Any] = {"single": single, "check": check, "max_bytes": max_bytes}
        primary = asyncio.ensure_future(
            self._attempt(calls, holder=holders[0], first=True, on_sent=note, **options)
        )
        tasks = [primary]
        try:
            waiter = asyncio.ensure_future(went_out.wait())
            await asyncio.wait({primary, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            delay = self.hedge_after
            if any(m == "eth_getLogs" for m, _ in calls):
                delay *= HEDGE_LOGS_FACTOR
            if not primary.done():
                await asyncio.wait({primary}, timeout=delay)
            if not primary.done() and sent:
                self.stats.hedged += 1
                tasks.append(
                    asyncio.ensure_future(
                        self._attempt(calls, holder=holders[1], exclude=sent[0], **options)
                    )
                )
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    if task in done and task.exception() is None:
                        if task is not primary:
                            self.stats.hedges_won += 1
                            sent[0].record_failure(
                                TransientError(f"no answer within {delay:g} s"), pause=None
                            )
                        if holder is not None:
                            holder.update(holders[tasks.index(task)])
                        return task.result()
            error = primary.exception()
            assert error is not None
            raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _attempt(
        self,
        calls: list[Call],
        *,
        single: bool,
        holder: dict[str, str] | None,
        check: Check | None = None,
        only: Endpoint | None = None,
        first: bool = False,
        max_bytes: int | None = None,
        exclude: Endpoint | None = None,
        on_sent: Callable[[Endpoint], None] | None = None,
    ) -> list[Any]:
        endpoint = only or await self._choose(calls, exclude)
        now = time.monotonic()
        if not endpoint.healthy(now):
            await asyncio.sleep(min(endpoint.cooldown_until - now, self.max_wait))
        await endpoint.limiter.take(len(calls))
        if on_sent is not None:
            on_sent(endpoint)
        ids = [next(self._ids) for _ in calls]
        if single:
            payload: Any = {
                "jsonrpc": "2.0",
                "id": ids[0],
                "method": calls[0][0],
                "params": list(calls[0][1]),
            }
        else:
            payload = [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                for i, (m, p) in zip(ids, calls, strict=True)
            ]
        method = calls[0][0] if single or len({m for m, _ in calls}) == 1 else "batch"
        started = time.perf_counter()
        self.stats.requests += 1
        self.stats.calls += len(calls)
        self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
        endpoint.requests += 1
        endpoint.calls += len(calls)
        if holder is not None:
            holder["url"] = endpoint.url
        timeout = None
        # A second opinion (one endpoint only, with others about) is not hedged: its
        # eth_getLogs gets the short first timeout too.
        short = all(m != "eth_getLogs" for m, _ in calls) or (
            only is not None and len(self.endpoints) > 1
        )
        if first and self.first_attempt_timeout and short:
            timeout = min(self.timeout, self.first_attempt_timeout)
        try:
            body = await self._post(endpoint, payload, timeout, max_bytes)
            results = self._unpack(body, ids, calls)
            if check is not None:
                for call, result in zip(calls, results, strict=True):
                    if not isinstance(result, Exception):
                        check(call, result)
        except TransientError as exc:
            self.stats.errors += 1
            pause = None
            if isinstance(exc, RateLimited):
                # Retry-After when the provider says it; else a short backoff that grows
                # with the endpoint's consecutive failures, at most max_wait.
                pause = exc.retry_after
                if pause is None:
                    pause = endpoint.backoff(self.max_wait)
            endpoint.record_failure(exc, pause)
            metrics.RPC_ERRORS.labels(self.chain, endpoint.label, type(exc).__name__).inc()
            raise
        finally:
            metrics.RPC_LATENCY.labels(self.chain, endpoint.label, method).observe(
                time.perf_counter() - started
            )
        endpoint.record_success()
        if single and method == "eth_blockNumber":
            endpoint.note_head(results[0])
        return results

    async def _post(
        self,
        endpoint: Endpoint,
        payload: Any,
        timeout: float | None = None,
        max_bytes: int | None = None,
    ) -> Any:
        data = orjson.dumps(payload)
        options: dict[str, Any] = {}
        if timeout is not None:
            options["timeout"] = aiohttp.ClientTimeout(total=timeout)
        try:
            async with self._http().post(
                endpoint.url, data=data, headers={"Content-Type": "application/json"}, **options
            ) as response:
                if max_bytes is None or response.status != 200:
                    raw = await response.read()
                else:
                    raw = await _read_at_most(response, max_bytes, endpoint.label)
                if response.status == 429:
                    retry_after = response.headers.get("Retry-After")
                    try:
                        delay = float(retry_after) if retry_after else None
                    except ValueError:
                        delay = None
                    raise RateLimited(f"HTTP 429 from {endpoint.label}", delay)
                if response.status >= 500:
                    raise TransientError(f"HTTP {response.status} from {endpoint.label}")
                if response.status >= 400 and not raw.strip().startswith((b"{", b"[")):
                    raise TransientError(f"HTTP {response.status} from {endpoint.label}")
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            raise TransientError(
                f"{type(exc).__name__} talking to {endpoint.label}: {exc}"
            ) from None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise TransientError(f"invalid JSON from {endpoint.label}: {raw[:80]!r}") from None

    def _unpack(self, body: Any, ids: list[int], calls: list[Call]) -> list[Any]:
        if isinstance(body, dict) and len(ids) > 1 and body.get("error") is not None:
            raise TransientError(f"batch refused: {str(body['error'])[:200]}")
        items = body if isinstance(body, list) else [body]
        by_id: dict[Any, Any] = {}
        for item in items:
            if isinstance(item, dict):
                by_id[item.get("id")] = item
        results: list[Any] = []
        for request_id, (method, _params) in zip(ids, calls, strict=True):
            item = by_id.get(request_id)
            if item is None:
                raise TransientError(f"{method}: answer missing or with the wrong id")
            if item.get("error") is not None:
                error = classify(item["error"], method)
                if isinstance(error, TransientError | RangeTooLarge):
                    if isinstance(error, RangeTooLarge) and len(calls) == 1:
                        results.append(error)
                        continue
                    raise error if isinstance(error, TransientError) else TransientError(str(error))
                results.append(error)
                continue
            if "result" not in item:
                raise TransientError(f"{method}: answer without result")
            results.append(item["result"])
        return results


async def _read_at_most(response: aiohttp.ClientResponse, limit: int, label: str) -> bytes:
    """The body, unless it is longer than `limit` bytes: then stop reading (the connection
    is dropped) and raise ResponseTooLarge, so a huge answer never sits in memory."""
    length = response.content_length
    if length is not None and length > limit:
        raise ResponseTooLarge(f"answer of {length} bytes from {label} (limit {limit})")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"answer over {limit} bytes from {label}")
        chunks.append(chunk)
    return b"".join(chunks)


__all__ = [
    "AllEndpointsFailed",
    "RangeTooLarge",
    "RpcClient",
    "RpcError",
    "TransientError",
]
