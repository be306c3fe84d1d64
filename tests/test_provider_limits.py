"""Working within a provider's limits: calls counted per call, 429s as flow control, spans
sized by the logs they return, a bounded price cache with one oracle call per block."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from bench.replay import History, ReplayServer, get_profile
from indexer.decode.topics import LIQUIDATION_CALL
from indexer.enrich.prices import PriceOracle
from indexer.fetch import ranges
from indexer.fetch.ranges import LogFilter, RangeSizer, fetch_range, fetch_some
from indexer.rpc.client import RpcClient, TokenBucket
from indexer.rpc.errors import AllEndpointsFailed
from tests.faultproxy import FaultProxy


@pytest.fixture
async def proxy(plain_anvil: str) -> AsyncIterator[FaultProxy]:
    fp = FaultProxy(plain_anvil, hang_seconds=3)
    await fp.start()
    yield fp
    await fp.stop()


@pytest.fixture(scope="module")
def history() -> History:
    return History(seed=3, total_events=3000, blocks=20_000, chains=["polygon"])


@pytest.fixture(scope="module")
async def replay(history: History) -> AsyncIterator[ReplayServer]:
    srv = ReplayServer(history, get_profile("none"))
    await srv.start("127.0.0.1", 0)
    yield srv
    await srv.stop()


# --------------------------------------------------------------------------- rate limit
async def test_bucket_charges_one_token_per_call_and_passes_big_batches() -> None:
    bucket = TokenBucket(rate=100, burst=10)
    started = time.monotonic()
    await bucket.take(10)  # the full bucket: at once
    assert time.monotonic() - started < 0.05
    await bucket.take(50)  # five times the bucket: goes through, at the rate
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 1.5


async def test_client_waits_for_every_call_of_a_batch(plain_anvil: str) -> None:
    async with RpcClient([plain_anvil], chain="test", requests_per_second=200) as rpc:
        started = time.monotonic()
        for _ in range(3):  # 300 calls in 3 requests; the bucket holds 50, refills 200/s
            answers = await rpc.batch([("eth_chainId", [])] * 100)
            assert answers == ["0x1"] * 100
        elapsed = time.monotonic() - started
    assert rpc.stats.requests == 3
    assert elapsed >= 1.1  # (300 - 50) / 200 s; one token per request would take no time


@pytest.mark.parametrize("fault", ["429", "429-bare"])
async def test_429_storm_does_not_use_up_the_attempts(proxy: FaultProxy, fault: str) -> None:
    proxy.inject(*[fault] * 12)
    async with RpcClient(
        [proxy.url], chain="test", requests_per_second=1000, max_attempts=3, max_wait=0.2
    ) as rpc:
        assert await rpc.call("eth_chainId") == "0x1"
        answers = await rpc.batch([("eth_blockNumber", [])] * 5)
    assert proxy.injected == 12
    assert len(answers) == 5


async def test_429_storm_still_leaves_room_for_real_failures(proxy: FaultProxy) -> None:
    proxy.inject(*["429"] * 6, "500", "502")
    async with RpcClient(
        [proxy.url], chain="test", requests_per_second=1000, max_attempts=3, max_wait=0.2
    ) as rpc:
        assert await rpc.call("eth_chainId") == "0x1"
    assert proxy.injected == 8


async def test_a_limit_that_never_lifts_fails_with_a_clear_line(proxy: FaultProxy) -> None:
    proxy.sticky.add("429")
    started = time.monotonic()
    async with RpcClient(
        [proxy.url],
        chain="test",
        requests_per_second=1000,
        max_wait=0.2,
        rate_limit_budget=1.0,
    ) as rpc:
        with pytest.raises(AllEndpointsFailed, match=r"rate-limited .*requests_per_second"):
            await rpc.call("eth_chainId")
    assert time.monotonic() - started < 5


async def test_rate_limited_endpoint_fails_over(proxy: FaultProxy, plain_anvil: str) -> None:
    proxy.sticky.add("429-bare")
    async with RpcClient(
        [proxy.url, plain_anvil], chain="test", requests_per_second=1000, max_wait=0.2
    ) as rpc:
        for _ in range(5):
            assert await rpc.call("eth_chainId") == "0x1"
    assert proxy.requests <= 2


# --------------------------------------------------------------------------- span sizing
def test_sizer_narrows_spans_that_bring_many_logs() -> None:
    sizer = RangeSizer(10_000, target_logs=1000)
    sizer.success(10_000, 50_000)  # a crash window: 5 logs per block
    assert sizer.size == 200
    sizer.success(200, 100)  # sparse again: grows, but not past what fits the target
    assert sizer.size == 400
    sizer.success(400, 0)
    assert sizer.size == 800
    sizer.success(800, 1000)
    assert sizer.size == 800  # at the target: stays
    sizer.success(800)  # logs not counted: the old rule, double
    assert sizer.size == 1600


async def test_ranges_stop_near_the_log_target(replay: ReplayServer, history: History) -> None:
    ch = history["polygon"]
    log_filter = LogFilter([ch.spec.pool], [[LIQUIDATION_CALL]])
    async with RpcClient([replay.url("polygon")], chain="polygon", timeout=30) as rpc:
        whole = await fetch_range(rpc, log_filter, ch.start, ch.last, RangeSizer(ch.window))
        assert len(whole) > 2000
        sizer = RangeSizer(ch.window, initial=1000, target_logs=200)
        pieces: list[dict[str, object]] = []
        cursor, ranges, largest = ch.start, 0, 0
        while cursor <= ch.last:
            logs, last = await fetch_some(rpc, log_filter, cursor, ch.last, sizer, 200)
            assert cursor <= last <= ch.last
            ranges += 1
            if ranges > 1:  # the first span knows nothing of the density yet
                largest = max(largest, len(logs))
            pieces += logs
            cursor = last + 1
    assert pieces == whole
    assert ranges >= 5
    assert largest < 1000


async def test_an_answer_too_long_to_hold_is_split_unread(
    replay: ReplayServer, history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    ch = history["polygon"]
    log_filter = LogFilter([ch.spec.pool], [[LIQUIDATION_CALL]])
    async with RpcClient([replay.url("polygon")], chain="polygon", timeout=30) as rpc:
        whole = await fetch_range(rpc, log_filter, ch.start, ch.last, RangeSizer(ch.window))
        monkeypatch.setattr(ranges, "MAX_ANSWER_BYTES", 100_000)  # about 100 logs
        sizer = RangeSizer(ch.window)
        parts = await fetch_range(rpc, log_filter, ch.start, ch.last, sizer)
    assert parts == whole
    assert sizer.refusals >= 3  # 20,000 blocks, 3,000 logs: halved until an answer fits


# --------------------------------------------------------------------------- prices
async def test_one_price_call_per_block_and_a_bounded_cache(
    replay: ReplayServer, history: History
) -> None:
    ch = history["polygon"]
    blocks = list(ch.event_blocks(ch.start, ch.last))[:120]
    assets = [a.address for a in ch.assets[:3]]
    async with RpcClient([replay.url("polygon")], chain="polygon") as rpc:
        oracle = PriceOracle(rpc, ch.spec.oracle, cache_size=100)
        pairs = [(a, n) for n in blocks for a in assets]
        prices = await oracle.prices(pairs)
        assert rpc.stats.calls == len(blocks)  # one getAssetsPrices per block
        assert len(oracle.cache) == 100
        for i, asset in enumerate(assets):
            for n in blocks:
                assert prices[(asset, n)] == ch.price(i, n)
        calls = rpc.stats.calls
        recent = await oracle.prices(pairs[-60:])  # still cached: no call
        assert rpc.stats.calls == calls
        assert recent == {p: prices[p] for p in pairs[-60:]}
        single = await oracle.prices([(assets[0], blocks[0])])  # evicted: one getAssetPrice
        assert rpc.stats.calls == calls + 1
        assert single == {(assets[0], blocks[0]): ch.price(0, blocks[0])}
