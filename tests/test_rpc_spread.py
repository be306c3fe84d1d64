"""Several endpoints per chain used together: calls spread in proportion to the endpoints'
rate limits, one that dies mid-backfill leaves its share to the others, and an endpoint
whose head lags is never asked for blocks it has not reached (its eth_getLogs would answer
them with nothing, and events would be lost). Real HTTP servers: two replay servers serving
the same history, as two providers serve the same chain."""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bench.backfill import compare, stored_counts
from bench.replay import History, ReplayServer, get_profile, render_config
from indexer.config import ChainConfig, parse_config
from indexer.decode.topics import LIQUIDATION_CALL
from indexer.fetch import ranges
from indexer.fetch.ranges import LogFilter, RangeSizer, fetch_range
from indexer.pipeline import ChainIndexer
from indexer.rpc.client import RpcClient, needed_block
from tests.conftest import drop_database, make_database
from tests.faultproxy import FaultProxy
from tests.reliability_support import invariant_violations

NONE = get_profile("none")


def chain_config(history: History, name: str, urls: list[str], rates: list[float]) -> ChainConfig:
    """The replay server's generated config for `name`, with these endpoints and limits."""
    data = tomllib.loads(render_config(history, "http://127.0.0.1:1", NONE))
    body = data["chains"][name]
    del body["rpc_urls"]
    body["rpc_endpoints"] = [
        {"url": url, "requests_per_second": rate} for url, rate in zip(urls, rates, strict=True)
    ]
    return parse_config({"chains": {name: body}}).chains[name]


async def servers(history: History, count: int, **options: Any) -> list[ReplayServer]:
    out = []
    for i in range(count):
        srv = ReplayServer(history, NONE, fault_seed=i, **options)
        await srv.start("127.0.0.1", 0)
        out.append(srv)
    return out


async def backfill(chain: ChainConfig, dsn: str, to_block: int | None = None) -> ChainIndexer:
    ix = ChainIndexer(chain, dsn)
    try:
        await ix.open()
        await ix.backfill(to_block)
    finally:
        await ix.close()
    return ix


async def check_database(dsn: str, history: History, finalized: dict[str, int]) -> None:
    """Every liquidation, SVR liquidation and recapture up to `finalized`, once; rollups
    equal to the base rows (what `aave-indexer verify` checks)."""
    expected = {k: v.to_json() for k, v in history.expected_counts(finalized).items()}
    assert expected and all(v["liquidations"] > 0 for v in expected.values())
    assert compare(expected, await stored_counts(dsn)) == []
    assert await invariant_violations(dsn) == []


@pytest.fixture
async def dsn(pg_template: str) -> AsyncIterator[str]:
    name = await asyncio.to_thread(make_database, pg_template)
    yield name
    await asyncio.to_thread(drop_database, name)


# --------------------------------------------------------------------------- unit
def test_the_block_a_request_needs() -> None:
    assert needed_block([("eth_getLogs", [{"fromBlock": "0x1", "toBlock": "0x20"}])]) == 0x20
    assert needed_block([("eth_getLogs", [{"blockHash": "0xab"}])]) is None
    assert needed_block([("eth_getBlockByNumber", ["0x10", False])]) == 16
    assert needed_block([("eth_getBlockByNumber", ["finalized", False])]) is None
    assert needed_block([("eth_call", [{"to": "0x0"}, {"blockNumber": "0x7"}])]) == 7
    batch = [("eth_call", [{}, hex(n)]) for n in (5, 900, 40)] + [("eth_chainId", [])]
    assert needed_block(batch) == 900
    assert needed_block([("eth_blockNumber", [])]) is None


# --------------------------------------------------------------------------- spreading
async def test_calls_spread_in_proportion_to_the_limits() -> None:
    """Two servers, limits 400 and 200 calls/s: 1,800 calls, ten batches at a time, go 2:1
    and take about 1,800 / 600 s, where the faster endpoint alone would need 4.5 s."""
    history = History(seed=5, total_events=200, blocks=2_000, chains=["polygon"])
    fast, slow = await servers(history, 2)
    try:
        async with RpcClient(
            [fast.url("polygon"), slow.url("polygon")], chain="polygon", rates=[400, 200]
        ) as rpc:
            queue: asyncio.Queue[list[tuple[str, list[Any]]]] = asyncio.Queue()
            for _ in range(180):
                queue.put_nowait([("eth_chainId", [])] * 10)

            async def worker() -> None:
                while not queue.empty():
                    assert await rpc.batch(queue.get_nowait()) == ["0x89"] * 10

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(10)))
            elapsed = time.monotonic() - started
        served = [s.stats()["totals"]["calls"] for s in (fast, slow)]
    finally:
        await fast.stop()
        await slow.stop()
    assert sum(served) == 1800
    assert [e.calls for e in rpc.endpoints] == served
    assert served[0] / served[1] == pytest.approx(2.0, rel=0.1)
    assert 2.4 < elapsed < 4.0  # (1800 - the two bursts) / 600 s, far below 4.5 s


async def test_spread_backfill_then_one_endpoint_dies(dsn: str) -> None:
    """A backfill through two endpoints at equal limits; early on one stops
    answering at all. The other takes every call from then on, nothing is lost or doubled,
    the rollups agree with the rows."""
    history = History(seed=11, total_events=3_000, blocks=30_000, chains=["polygon"])
    first, second = await servers(history, 2)
    chain = chain_config(
        history, "polygon", [first.url("polygon"), second.url("polygon")], [600, 600]
    )
    stopped_at: dict[str, int] = {}

    async def kill_second() -> None:
        while second.stats()["totals"]["calls"] < 400:
            await asyncio.sleep(0.01)
        stopped_at["second"] = second.stats()["totals"]["calls"]
        stopped_at["first"] = first.stats()["totals"]["calls"]
        await second.stop()

    killer = asyncio.create_task(kill_second())
    try:
        ix = await backfill(chain, dsn)
        assert killer.done()
        finalized = {"polygon": first.finalized("polygon")}
        first_calls = first.stats()["totals"]["calls"]
    finally:
        killer.cancel()
        await first.stop()
        await second.stop()
    await check_database(dsn, history, finalized)
    # both shared the work while both answered, then the first did the rest
    assert stopped_at["first"] > 0.5 * stopped_at["second"]
    assert first_calls - stopped_at["first"] > 1_000
    assert ix.client.stats.errors > 0  # the dead endpoint was met, and failed over


# --------------------------------------------------------------------------- lagging head
@pytest.mark.parametrize("cross_check", [True, False], ids=["cross-checked", "alone"])
async def test_a_lagging_endpoint_is_not_asked_above_its_head(
    dsn: str, cross_check: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two endpoints of one chain, one far behind the other (below the leader's finalized
    block): the backfill to the leader's finalized block spreads its ranges over both, yet
    sends the lagging one no request for a block above its head, so no event is lost; also
    without the second opinion on every range (`alone`), which could otherwise make up for
    an empty answer."""
    if not cross_check:

        async def no_second_opinion(*args: Any) -> Any:
            return args[4]

        monkeypatch.setattr(ranges, "second_opinion", no_second_opinion)
    history = History(seed=13, total_events=3_000, blocks=30_000, chains=["base"])
    ch = history["base"]
    lag_head = ch.start + (ch.last - ch.start) // 2
    (lead,) = await servers(history, 1)
    lagging = ReplayServer(history, NONE, fault_seed=7, initial_heads={"base": lag_head})
    await lagging.start("127.0.0.1", 0)
    endpoint = lagging.endpoints["base"]
    asked: list[int] = []
    logs_query = endpoint.logs_query

    def spy(params: list[Any]) -> Any:
        asked.append(int(params[0]["toBlock"], 16))
        return logs_query(params)

    endpoint.logs_query = spy  # type: ignore[method-assign]
    blocks_asked: list[int] = []
    handle = endpoint.handle

    def spy_handle(method: str, params: Any) -> Any:
        block = needed_block([(method, params or [])])
        if block is not None:
            blocks_asked.append(block)
        return handle(method, params)

    endpoint.handle = spy_handle  # type: ignore[method-assign]
    finalized = lead.finalized("base")
    assert finalized > lag_head
    # the hazard is real: this node answers a range above its head with fewer logs
    log_filter = LogFilter([ch.spec.pool], [[LIQUIDATION_CALL]])
    top = (lag_head - 2_000, finalized)
    async with RpcClient([lagging.url("base")], chain="base") as alone:
        short = await fetch_range(alone, log_filter, *top, RangeSizer(2_000))
    async with RpcClient([lead.url("base")], chain="base") as leader:
        full = await fetch_range(leader, log_filter, *top, RangeSizer(2_000))
    assert len(short) < len(full)
    asked.clear()
    blocks_asked.clear()
    urls = [lagging.url("base"), lead.url("base")]  # the lagging one first in order
    try:
        ix = await backfill(chain_config(history, "base", urls, [2_000, 2_000]), dsn, finalized)
    finally:
        await lead.stop()
        await lagging.stop()
    await check_database(dsn, history, {"base": finalized})
    assert asked and max(asked) <= lag_head  # spread to it, and never above its head
    assert blocks_asked and max(blocks_asked) <= lag_head
    lagging_ep = next(e for e in ix.client.endpoints if e.url == urls[0])
    assert lagging_ep.head == lag_head
    assert lagging_ep.calls > 100


# --------------------------------------------------------------------------- hedging
async def test_a_hung_request_is_hedged_on_the_other_endpoint(plain_anvil: str) -> None:
    """The first endpoint hangs (longer than the client's timeout would allow for); the
    request also goes to the second after `hedge_after`, whose answer is taken."""
    proxy = FaultProxy(plain_anvil, hang_seconds=2.5)
    await proxy.start()
    try:
        async with RpcClient(
            [proxy.url, plain_anvil], chain="test", timeout=20, hedge_after=0.2, rates=[2000, 500]
        ) as rpc:
            assert len(await rpc.ask_each("eth_blockNumber")) == 2  # both heads known
            proxy.inject("timeout")  # the next request, which goes to the roomier proxy
            started = time.monotonic()
            logs = await rpc.call("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "0x0"}])
            elapsed = time.monotonic() - started
            assert logs == []
            assert rpc.stats.hedged == rpc.stats.hedges_won == 1
            assert not rpc.endpoints[0].healthy(time.monotonic())  # the slow one rests
            # a quick answer is not hedged
            assert await rpc.call("eth_chainId") == "0x1"
            assert rpc.stats.hedged == 1
    finally:
        await proxy.stop()
    assert proxy.injected == 1
    assert elapsed < 1.5  # 3 x 0.2 s for eth_getLogs, not the 2.5 s hang


async def test_a_long_batch_goes_out_in_parallel_pieces_in_order(plain_anvil: str) -> None:
    proxy = FaultProxy(plain_anvil)
    await proxy.start()
    try:
        async with RpcClient(
            [proxy.url, plain_anvil], chain="test", max_batch=25, requests_per_second=1000
        ) as rpc:
            calls = [("eth_getBlockByNumber", [hex(0), False])] * 250
            answers = await rpc.batch(calls)
            assert [a["number"] for a in answers] == ["0x0"] * 250
            ids = await rpc.batch([("eth_chainId", [])] * 199 + [("eth_blockNumber", [])])
            assert ids[:199] == ["0x1"] * 199 and ids[199].startswith("0x")
        assert all(e.requests >= 3 for e in rpc.endpoints)  # 18 pieces over both
        heads = rpc.stats.by_method.get("eth_blockNumber", 0)  # heads asked for block 0
        assert sum(e.calls for e in rpc.endpoints) == 450 + heads
    finally:
        await proxy.stop()
