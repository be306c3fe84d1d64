"""The RPC client against a real node behind a fault-injecting proxy."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from indexer.rpc.client import RpcClient
from indexer.rpc.errors import (
    AllEndpointsFailed,
    RangeTooLarge,
    RpcError,
    classify,
    suggested_range,
)
from tests.faultproxy import FaultProxy


@pytest.fixture
async def proxy(plain_anvil: str) -> AsyncIterator[FaultProxy]:
    fp = FaultProxy(plain_anvil, hang_seconds=3)
    await fp.start()
    yield fp
    await fp.stop()


def client(*urls: str, attempts: int = 6) -> RpcClient:
    return RpcClient(
        list(urls),
        chain="test",
        requests_per_second=1000,
        timeout=1.0,
        max_attempts=attempts,
        max_wait=0.2,
    )


@pytest.mark.parametrize(
    "fault",
    [
        "429",
        "429-bare",
        "500",
        "502",
        "503",
        "timeout",
        "reset",
        "truncated",
        "invalid-json",
        "wrong-id",
        "header-not-found",
        "missing-trie-node",
    ],
)
async def test_transient_faults_are_retried(proxy: FaultProxy, fault: str) -> None:
    proxy.inject(fault, fault)
    async with client(proxy.url) as rpc:
        assert int(await rpc.call("eth_chainId"), 16) == 1
    assert proxy.injected == 2
    assert rpc.stats.errors == 2


async def test_batch_retried_as_a_whole_and_ordered(proxy: FaultProxy) -> None:
    proxy.inject("wrong-id")
    async with client(proxy.url) as rpc:
        answers = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in range(10)])
    assert [int(a["number"], 16) for a in answers] == list(range(10))


async def test_reverts_come_back_per_call(proxy: FaultProxy) -> None:
    async with client(proxy.url) as rpc:
        answers = await rpc.batch(
            [
                ("eth_chainId", []),
                ("eth_nonexistentMethod", []),
            ]
        )
    assert answers[0] == "0x1"
    assert isinstance(answers[1], RpcError)


async def test_failover_to_the_good_endpoint(proxy: FaultProxy, plain_anvil: str) -> None:
    proxy.sticky.add("503")
    async with client(proxy.url, plain_anvil) as rpc:
        for _ in range(5):
            assert await rpc.call("eth_chainId") == "0x1"
    # The bad endpoint is cooled down after its failure, so it is not asked every time.
    assert proxy.requests <= 2


async def test_gives_up_with_one_clear_line(proxy: FaultProxy) -> None:
    proxy.sticky.add("500")
    started = time.monotonic()
    async with client(proxy.url, attempts=3) as rpc:
        with pytest.raises(AllEndpointsFailed, match="eth_chainId failed on every endpoint"):
            await rpc.call("eth_chainId")
    assert time.monotonic() - started < 5


async def test_range_refusal_is_not_retried(proxy: FaultProxy) -> None:
    proxy.inject("range-too-large")
    async with client(proxy.url) as rpc:
        with pytest.raises(RangeTooLarge) as info:
            await rpc.call("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "0x10"}])
    assert info.value.suggested == (0, 1)
    assert proxy.requests == 1


@pytest.mark.parametrize(
    ("message", "kind", "suggested"),
    [
        (
            "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block "
            "range and no limit on the response size, or you can request any block range with a "
            "cap of 10K logs in the response. Based on your parameters, this block range should "
            "work: [0x1b4, 0x5dc]",
            RangeTooLarge,
            (0x1B4, 0x5DC),
        ),
        (
            "query returned more than 10000 results. Try with this block range [0x10, 0x20].",
            RangeTooLarge,
            (0x10, 0x20),
        ),
        ("eth_getLogs is limited to a 10,000 range", RangeTooLarge, None),
        ("block range too large", RangeTooLarge, None),
        ("execution reverted", RpcError, None),
    ],
)
def test_error_texts_of_real_providers(message: str, kind: type, suggested: object) -> None:
    error = classify({"code": -32005, "message": message}, "eth_getLogs")
    assert isinstance(error, kind)
    if isinstance(error, RangeTooLarge):
        assert error.suggested == suggested
    assert suggested_range("no range here") is None
