"""The replay JSON-RPC server (bench/replay): a generated history served like a paid provider."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import tomllib
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal, localcontext
from typing import Any

import aiohttp
import pytest
from eth_abi import decode

from bench.replay import (
    History,
    Profile,
    ReplayServer,
    get_profile,
    liquidations,
    render_config,
)
from bench.replay.abi import (
    SEL_DECIMALS,
    SEL_GET_ASSET_PRICE,
    SEL_GET_ASSETS_PRICES,
    SEL_SYMBOL,
    T_LIQUIDATION_CALL,
    T_RESERVE_DATA_UPDATED,
    T_SECONDARY_ROUND_ID_UPDATED,
    T_SOLVER_TX_RESULT,
    addr_topic,
)

SEED = 7
FAST = get_profile("none")


def quiet(name: str, **changes: Any) -> Profile:
    """A profile with its limits but without latency or random failures."""
    base = get_profile(name).with_overrides(
        latency_s=0.0,
        latency_jitter_s=0.0,
        error_5xx_rate=0.0,
        timeout_rate=0.0,
        requests_per_second=None,
    )
    return base.with_overrides(**changes)


async def rpc(session: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with session.post(url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        out = await resp.json(content_type=None)
    if "error" in out:
        raise RpcFailure(out["error"])
    return out["result"]


class RpcFailure(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


async def get_logs(session: aiohttp.ClientSession, url: str, **flt: Any) -> list[dict[str, Any]]:
    for k in ("fromBlock", "toBlock"):
        if isinstance(flt.get(k), int):
            flt[k] = hex(flt[k])
    result: list[dict[str, Any]] = await rpc(session, url, "eth_getLogs", flt)
    return result


def log_key(log: dict[str, Any]) -> tuple[int, int]:
    return int(log["blockNumber"], 16), int(log["logIndex"], 16)


@pytest.fixture(scope="module")
def history() -> History:
    return History(seed=SEED, total_events=4000, blocks=20_000)


@pytest.fixture(scope="module")
async def server(history: History) -> AsyncIterator[ReplayServer]:
    srv = ReplayServer(history, FAST)
    await srv.start("127.0.0.1", 0)
    yield srv
    await srv.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        yield s


# --------------------------------------------------------------------------- headers
async def test_headers_link_by_parent_hash(
    server: ReplayServer, history: History, session: aiohttp.ClientSession
) -> None:
    for ch in history:
        url = server.url(ch.name)
        first = next(ch.event_blocks(ch.start, ch.last))
        numbers = list(range(first - 3, first + 4))
        batch = [
            {"jsonrpc": "2.0", "id": n, "method": "eth_getBlockByNumber", "params": [hex(n), False]}
            for n in numbers
        ]
        async with session.post(url, json=batch) as resp:
            answers = {a["id"]: a["result"] for a in await resp.json()}
        blocks = [answers[n] for n in numbers]
        for prev, cur in itertools.pairwise(blocks):
            assert cur["parentHash"] == prev["hash"]
            assert int(cur["number"], 16) == int(prev["number"], 16) + 1
            dt = int(cur["timestamp"], 16) - int(prev["timestamp"], 16)
            assert dt in (ch.spec.block_time_ms // 1000, 0, 1)
        with_events = answers[first]
        assert with_events["transactions"] and with_events["logsBloom"] != "0x" + "0" * 512
        by_hash = await rpc(session, url, "eth_getBlockByHash", with_events["hash"], False)
        assert by_hash == with_events
        latest = await rpc(session, url, "eth_getBlockByNumber", "latest", False)
        assert (
            int(latest["number"], 16)
            == ch.last
            == int(await rpc(session, url, "eth_blockNumber"), 16)
        )
        final = await rpc(session, url, "eth_getBlockByNumber", "finalized", False)
        assert int(final["number"], 16) == ch.last - ch.spec.finality_depth
        assert await rpc(session, url, "eth_getBlockByNumber", hex(ch.last + 1), False) is None
        assert await rpc(session, url, "eth_chainId") == hex(ch.chain_id)
        assert await rpc(session, url, "net_version") == str(ch.chain_id)


async def test_full_transactions_and_receipts_agree_with_logs(
    server: ReplayServer, history: History, session: aiohttp.ClientSession
) -> None:
    ch = history["ethereum"]
    url = server.url("ethereum")
    n = next(ch.event_blocks(ch.start, ch.last))
    block = await rpc(session, url, "eth_getBlockByNumber", hex(n), True)
    logs = await get_logs(session, url, fromBlock=n, toBlock=n)
    for i, tx in enumerate(block["transactions"]):
        assert tx["transactionIndex"] == hex(i) and tx["blockHash"] == block["hash"]
        receipt = await rpc(session, url, "eth_getTransactionReceipt", tx["hash"])
        assert receipt["transactionHash"] == tx["hash"] and receipt["status"] == "0x1"
        assert receipt["logs"] == [lg for lg in logs if lg["transactionHash"] == tx["hash"]]
        assert await rpc(session, url, "eth_getTransactionByHash", tx["hash"]) == tx
    assert [int(lg["logIndex"], 16) for lg in logs] == list(range(len(logs)))
    unknown = "0x" + "ab" * 32
    assert await rpc(session, url, "eth_getTransactionReceipt", unknown) is None


# --------------------------------------------------------------------------- logs
async def test_get_logs_filters_by_address_and_topics(
    server: ReplayServer, history: History, session: aiohttp.ClientSession
) -> None:
    for ch in history:
        url = server.url(ch.name)
        lo, hi = ch.start, ch.start + 9_999
        everything = await get_logs(session, url, fromBlock=lo, toBlock=hi)
        assert everything, ch.name
        assert all(lg["removed"] is False for lg in everything)
        assert all(lo <= int(lg["blockNumber"], 16) <= hi for lg in everything)
        pool = ch.spec.pool

        def expect(
            addresses: set[str] | None,
            topics: list[Any],
            everything: list[dict[str, Any]] = everything,
        ) -> list[dict[str, Any]]:
            out = []
            for lg in everything:
                if addresses is not None and lg["address"] not in addresses:
                    continue
                ok = True
                for pos, want in enumerate(topics):
                    if want is None:
                        continue
                    options = {want} if isinstance(want, str) else set(want)
                    if pos >= len(lg["topics"]) or lg["topics"][pos] not in options:
                        ok = False
                if ok:
                    out.append(lg)
            return out

        weth = addr_topic(ch.assets[ch.native_index].address)
        cases: list[tuple[Any, list[Any]]] = [
            (pool, []),
            (pool.upper().replace("0X", "0x"), [T_LIQUIDATION_CALL]),
            ([pool], [[T_LIQUIDATION_CALL, T_RESERVE_DATA_UPDATED]]),
            (None, [T_LIQUIDATION_CALL, weth]),
            (None, [T_LIQUIDATION_CALL, None, [weth, addr_topic(ch.assets[0].address)]]),
            (None, [None, None, None, None]),
            (
                [pool, *(a.address for a in ch.aggregators)],
                [[T_LIQUIDATION_CALL, T_SECONDARY_ROUND_ID_UPDATED]],
            ),
        ]
        for address, topics in cases:
            flt: dict[str, Any] = {"fromBlock": hex(lo), "toBlock": hex(hi), "topics": topics}
            if address is not None:
                flt["address"] = address
            got = await rpc(session, url, "eth_getLogs", flt)
            if isinstance(address, str):
                want_addrs: set[str] | None = {address.lower()}
            elif address is None:
                want_addrs = None
            else:
                want_addrs = {a.lower() for a in address}
            assert got == expect(want_addrs, topics), (ch.name, address, topics)
        liq = expect({pool}, [T_LIQUIDATION_CALL])
        assert liq and len(liq) < len(everything)


async def test_sub_ranges_union_equals_full_range(
    server: ReplayServer, history: History, session: aiohttp.ClientSession
) -> None:
    ch = history["polygon"]
    url = server.url("polygon")
    lo, hi = ch.start + 100, ch.start + 12_345
    full = await get_logs(session, url, fromBlock=lo, toBlock=hi, topics=[T_LIQUIDATION_CALL])
    cuts = [lo, lo + 1, lo + 777, lo + 4000, lo + 4001, lo + 9000, hi + 1]
    parts: list[dict[str, Any]] = []
    for a, b in itertools.pairwise(cuts):
        parts += await get_logs(
            session, url, fromBlock=a, toBlock=b - 1, topics=[T_LIQUIDATION_CALL]
        )
    assert parts == full
    assert [log_key(lg) for lg in full] == sorted(log_key(lg) for lg in full)
    n = int(full[0]["blockNumber"], 16)
    by_hash = await get_logs(session, url, blockHash=full[0]["blockHash"])
    assert by_hash == await get_logs(session, url, fromBlock=n, toBlock=n)


# --------------------------------------------------------------------------- limits
@pytest.fixture(scope="module")
def dense() -> History:
    """One chain with enough logs that 10,000-result caps bite."""
    return History(seed=SEED, total_events=30_000, blocks=50_000, chains=["polygon"])


async def test_alchemy_range_error_text_and_suggestion(
    dense: History, session: aiohttp.ClientSession
) -> None:
    ch = dense["polygon"]
    async with ReplayServer(dense, quiet("default")) as srv:
        url = srv.url("polygon")
        lo, hi = ch.start, ch.start + 30_000
        with pytest.raises(RpcFailure) as err:
            await get_logs(session, url, fromBlock=lo, toBlock=hi)
        e = err.value.error
        assert e["code"] == -32602
        assert e["message"].startswith(
            "Log response size exceeded. You can make eth_getLogs requests with up to a 2K "
            "block range and no limit on the response size, or you can request any block range "
            "with a cap of 10K logs in the response."
        )
        tail = e["message"].split("this block range should work: ")[1]
        a, b = (int(x, 16) for x in tail.strip("[]").split(", "))
        assert a == lo and lo + 1999 <= b < hi
        logs = await get_logs(session, url, fromBlock=a, toBlock=b)
        assert 0 < len(logs) <= 10_000
        # a 2K span is never capped
        assert len(await get_logs(session, url, fromBlock=lo, toBlock=lo + 1999)) > 0


async def test_oversized_free_span_times_out_with_a_suggestion(
    dense: History, session: aiohttp.ClientSession
) -> None:
    ch = dense["polygon"]
    async with ReplayServer(dense, quiet("default", logs_hard_max_results=500)) as srv:
        url = srv.url("polygon")
        lo = ch.start
        with pytest.raises(RpcFailure) as err:
            await get_logs(session, url, fromBlock=lo, toBlock=lo + 1999)
        e = err.value.error
        assert e["code"] == -32000
        assert e["message"].startswith(
            "Query timeout exceeded. Consider reducing your block range."
        )
        tail = e["message"].split("this block range should work: ")[1]
        a, b = (int(x, 16) for x in tail.strip("[]").split(", "))
        assert a == lo and b < lo + 1999
        assert 0 < len(await get_logs(session, url, fromBlock=a, toBlock=b)) <= 500


async def test_infura_result_cap_text_and_suggestion(
    dense: History, session: aiohttp.ClientSession
) -> None:
    ch = dense["polygon"]
    async with ReplayServer(dense, quiet("infura")) as srv:
        url = srv.url("polygon")
        lo = ch.start
        with pytest.raises(RpcFailure) as err:
            await get_logs(session, url, fromBlock=lo, toBlock=lo + 9_999)
        e = err.value.error
        assert e["code"] == -32005
        assert e["message"].startswith(
            "query returned more than 10000 results. Try with this block range [0x"
        )
        assert e["data"]["limit"] == 10_000
        a, b = int(e["data"]["from"], 16), int(e["data"]["to"], 16)
        assert e["message"].endswith(f"[{e['data']['from']}, {e['data']['to']}].")
        assert a == lo and b < lo + 9_999
        assert 0 < len(await get_logs(session, url, fromBlock=a, toBlock=b)) <= 10_000
        with pytest.raises(RpcFailure) as err:
            await get_logs(session, url, fromBlock=lo, toBlock=lo + 20_000)
        assert err.value.error == {"code": -32602, "message": "range 20001 exceeds limit of 10000"}


async def test_hard_span_limit_and_beyond_head(
    dense: History, session: aiohttp.ClientSession
) -> None:
    ch = dense["polygon"]
    async with ReplayServer(dense, quiet("flaky")) as srv:
        url = srv.url("polygon")
        with pytest.raises(RpcFailure) as err:
            await get_logs(session, url, fromBlock=ch.start, toBlock=ch.start + 1000)
        assert err.value.error == {
            "code": -32614,
            "message": "eth_getLogs is limited to a 1,000 range",
        }
        await get_logs(session, url, fromBlock=ch.start, toBlock=ch.start + 999)
        with pytest.raises(RpcFailure) as err:
            await get_logs(session, url, fromBlock=ch.last - 10, toBlock=ch.last + 5)
        assert err.value.error["message"].startswith(
            "block range extends beyond current head block"
        )
    async with ReplayServer(dense, FAST) as srv:  # the default: clamp to the head
        logs = await get_logs(
            session, srv.url("polygon"), fromBlock=ch.last - 5000, toBlock=ch.last + 50
        )
        assert logs == await get_logs(
            session, srv.url("polygon"), fromBlock=ch.last - 5000, toBlock=ch.last
        )


@pytest.mark.parametrize("profile", ["none", "default"])  # streamed, and collected
async def test_logs_carry_block_timestamp_only_when_the_profile_says(
    history: History, session: aiohttp.ClientSession, profile: str
) -> None:
    ch = history["polygon"]
    lo, hi = ch.start, ch.start + 1999
    for stamped in (False, True):
        spec = quiet(profile, logs_block_timestamp=stamped)
        async with ReplayServer(history, spec) as srv:
            url = srv.url("polygon")
            logs = await get_logs(session, url, fromBlock=lo, toBlock=hi)
            assert logs
            for lg in logs[:50]:
                if not stamped:
                    assert "blockTimestamp" not in lg
                    continue
                header = await rpc(session, url, "eth_getBlockByNumber", lg["blockNumber"], False)
                assert lg["blockTimestamp"] == header["timestamp"]
    assert get_profile("default-ts").logs_block_timestamp
    assert not get_profile("default").logs_block_timestamp


async def test_rate_limit_answers_429_with_retry_after(
    history: History, session: aiohttp.ClientSession
) -> None:
    async with ReplayServer(history, quiet("default", requests_per_second=5.0)) as srv:
        url = srv.url("base")
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}

        async def one() -> tuple[int, str | None, Any]:
            async with session.post(url, json=body) as resp:
                return resp.status, resp.headers.get("Retry-After"), await resp.json()

        answers = await asyncio.gather(*(one() for _ in range(20)))
        limited = [a for a in answers if a[0] == 429]
        granted = [a for a in answers if a[0] == 200]
        # a burst of one second's worth, plus what refills while the burst is served
        assert 5 <= len(granted) <= 7 and len(granted) + len(limited) == 20
        for _, retry_after, payload in limited:
            assert retry_after is not None and int(retry_after) >= 1
            assert payload["error"]["code"] == 429
            assert "exceeded its compute units per second capacity" in payload["error"]["message"]
        assert srv.stats()["chains"]["base"]["http_429"] == len(limited)


async def test_injected_5xx_and_timeouts(history: History) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    async with (
        ReplayServer(history, quiet("default", error_5xx_rate=1.0)) as srv,
        aiohttp.ClientSession() as s,
    ):
        for _ in range(6):
            async with s.post(srv.url("ethereum"), json=body) as resp:
                assert resp.status in (500, 502, 503)
    srv = ReplayServer(history, quiet("default", timeout_rate=1.0, hang_s=30.0))
    await srv.start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as s:
        with pytest.raises(asyncio.TimeoutError):
            async with s.post(srv.url("ethereum"), json=body) as resp:
                await resp.read()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await srv.stop()  # hung requests are released, not waited out
    assert loop.time() - t0 < 5
    assert srv.stats()["totals"]["timeouts"] == 1


# --------------------------------------------------------------------------- JSON-RPC
async def test_batches_and_json_rpc_errors(
    server: ReplayServer, session: aiohttp.ClientSession
) -> None:
    url = server.url("arbitrum")
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_nope", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "web3_clientVersion"},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_getBlockByNumber", "params": ["0xzz", False]},
        {"jsonrpc": "2.0", "id": 5},
    ]
    async with session.post(url, json=batch) as resp:
        out = await resp.json()
    assert [a["id"] for a in out] == ["a", 2, 3, 4, 5]
    assert out[0]["result"] == hex(42161)
    assert out[1]["error"]["code"] == -32601
    assert "eth_nope" in out[1]["error"]["message"]
    assert isinstance(out[2]["result"], str)
    assert out[3]["error"]["code"] == -32602
    assert out[4]["error"]["code"] == -32600
    # eth_getLogs inside a batch answers what the single (streamed) requests answer
    ch = server.history["arbitrum"]
    ranges = [(ch.start, ch.start + 4999), (ch.start + 5000, ch.start + 9999)]
    batch = [
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "eth_getLogs",
            "params": [{"fromBlock": hex(a), "toBlock": hex(b)}],
        }
        for i, (a, b) in enumerate(ranges)
    ]
    async with session.post(url, json=batch) as resp:
        out = await resp.json()
    for (a, b), answer in zip(ranges, out, strict=True):
        assert answer["result"] == await get_logs(session, url, fromBlock=a, toBlock=b)
        assert answer["result"]
    async with session.post(url, data=b"{not json") as resp:
        assert (await resp.json())["error"]["code"] == -32700
    async with session.post(url, json=[]) as resp:
        assert (await resp.json())["error"]["code"] == -32600
    async with session.post(server.base_url + "/solana", json=batch[0]) as resp:
        assert resp.status == 404


async def test_eth_call_prices_decimals_symbols(
    server: ReplayServer, history: History, session: aiohttp.ClientSession
) -> None:
    for ch in history:
        url = server.url(ch.name)
        n = next(ch.event_blocks(ch.start, ch.last))
        plan = ch.plan(n)
        assert plan is not None
        for i, a in enumerate(ch.assets):
            word = "0" * 24 + a.address[2:]
            call = {"to": ch.spec.oracle, "data": SEL_GET_ASSET_PRICE + word}
            (price,) = decode(
                ["uint256"], bytes.fromhex((await rpc(session, url, "eth_call", call, hex(n)))[2:])
            )
            assert price == ch.price(i, n) > 0
            if a.stable:
                assert 99_000_000 < price < 101_000_000
            dec_hex = await rpc(session, url, "eth_call", {"to": a.address, "data": SEL_DECIMALS})
            assert decode(["uint8"], bytes.fromhex(dec_hex[2:]))[0] == a.decimals
            sym_hex = await rpc(
                session, url, "eth_call", {"to": a.address, "data": SEL_SYMBOL}, "latest"
            )
            assert decode(["string"], bytes.fromhex(sym_hex[2:]))[0] == a.symbol
        # the liquidation amounts are consistent with the oracle at that block
        liq = plan.liqs[0]
        assert liq.debt_price == ch.price(liq.debt, n)
        # getAssetsPrices(address[]) in one call
        addrs = [a.address for a in ch.assets]
        data = (
            SEL_GET_ASSETS_PRICES
            + f"{32:064x}"
            + f"{len(addrs):064x}"
            + "".join("0" * 24 + x[2:] for x in addrs)
        )
        out = await rpc(
            session, url, "eth_call", {"to": ch.spec.oracle, "data": data}, {"blockNumber": hex(n)}
        )
        (prices,) = decode(["uint256[]"], bytes.fromhex(out[2:]))
        assert list(prices) == [ch.price(i, n) for i in range(len(addrs))]
        with pytest.raises(RpcFailure) as err:
            await rpc(
                session,
                url,
                "eth_call",
                {"to": ch.spec.oracle, "data": SEL_DECIMALS},
                hex(ch.last + 1),
            )
        assert err.value.error["message"] == "header not found"


# --------------------------------------------------------------------------- ground truth
async def test_expected_counts_equal_a_full_get_logs_walk(
    server: ReplayServer, history: History, session: aiohttp.ClientSession
) -> None:
    """Walk every chain like an indexer would and apply the project's SVR rule from logs and
    blocks alone; the totals must equal History.expected_counts()."""
    config = tomllib.loads(render_config(history, server.base_url, FAST))
    expected = history.expected_counts()
    for ch in history:
        cfg = config["chains"][ch.name]
        url = cfg["rpc_urls"][0]
        svr = cfg["svr"]
        agg_assets = {a["address"]: set(a["assets"]) for a in svr["aggregators"]}
        addresses = [p["address"] for p in cfg["pools"]] + list(agg_assets)
        if svr["model"] == "atlas":
            addresses.append(svr["atlas"])
        topics = [[T_LIQUIDATION_CALL, T_SECONDARY_ROUND_ID_UPDATED, T_SOLVER_TX_RESULT]]
        logs: list[dict[str, Any]] = []
        for lo in range(cfg["start_block"], ch.last + 1, 2000):
            logs += await get_logs(
                session,
                url,
                fromBlock=lo,
                toBlock=min(ch.last, lo + 1999),
                address=addresses,
                topics=topics,
            )
        liquidations = svr_liqs = recaptures = 0
        recaptured = 0
        debt: dict[str, int] = defaultdict(int)
        prices_needed: list[tuple[str, int, int]] = []  # asset, block, amount
        updated: dict[str, set[str]] = defaultdict(set)  # block or tx -> updated assets
        svr_blocks: set[int] = set()
        dapp = addr_topic(svr.get("dapp_control", "0x" + "0" * 40))
        for lg in logs:
            t = lg["topics"]
            scope = lg["blockHash"] if svr["model"] == "mev-share" else lg["transactionHash"]
            if t[0] == T_SECONDARY_ROUND_ID_UPDATED:
                updated[scope] |= agg_assets[lg["address"]]
                svr_blocks.add(int(lg["blockNumber"], 16))
            elif t[0] == T_SOLVER_TX_RESULT:
                if t[3] == dapp:
                    _, bid, _, success, _ = decode(
                        ["address", "uint256", "bool", "bool", "uint256"],
                        bytes.fromhex(lg["data"][2:]),
                    )
                    if success:
                        recaptures += 1
                        recaptured += bid
            else:
                liquidations += 1
                coll, dbt = "0x" + t[1][26:], "0x" + t[2][26:]
                amount = int(lg["data"][2:66], 16)
                debt[dbt] += amount
                prices_needed.append((dbt, int(lg["blockNumber"], 16), amount))
                if coll in updated[scope] or dbt in updated[scope]:
                    svr_liqs += 1
        if svr["model"] == "mev-share":
            for n in sorted(svr_blocks):
                block = await rpc(session, url, "eth_getBlockByNumber", hex(n), True)
                for tx in block["transactions"]:
                    if tx["to"] in svr["recipients"]:
                        recaptures += 1
                        recaptured += int(tx["value"], 16)
        # USD value of the debt repaid, priced by eth_call at each liquidation's block
        batch = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "eth_call",
                "params": [
                    {
                        "to": cfg["pools"][0]["oracle"],
                        "data": SEL_GET_ASSET_PRICE + "0" * 24 + a[2:],
                    },
                    hex(n),
                ],
            }
            for i, (a, n, _) in enumerate(prices_needed)
        ]
        async with session.post(url, json=batch) as resp:
            answers = sorted(await resp.json(), key=lambda r: r["id"])
        decimals = {a.address: a.decimals for a in ch.assets}
        with localcontext() as ctx:
            ctx.prec = 120
            usd = sum(
                (
                    Decimal(amount * int(r["result"], 16)) / Decimal(10) ** (decimals[a] + 8)
                    for (a, _, amount), r in zip(prices_needed, answers, strict=True)
                ),
                Decimal(0),
            )
        want = expected[ch.name]
        assert liquidations == want.liquidations == ch.index.total, ch.name
        assert svr_liqs == want.svr_liquidations, ch.name
        assert recaptures == want.recaptures, ch.name
        assert recaptured == want.recaptured_wei, ch.name
        assert dict(debt) == want.debt_to_cover, ch.name
        assert usd == want.debt_usd, ch.name
        if ch.spec.svr_model == "none":
            assert want.svr_liquidations == 0
        else:
            assert want.svr_liquidations > 0 and want.recaptured_wei > 0, ch.name
    json.dumps({k: v.to_json() for k, v in expected.items()})  # serializable


def test_row_level_truth_matches_the_served_logs(history: History) -> None:
    ch = history["arbitrum"]
    rows = list(liquidations(ch))
    assert len(rows) == ch.index.total
    counts = history.expected_counts()["arbitrum"]
    assert sum(r.svr for r in rows) == counts.svr_liquidations
    assert sum(r.recaptured_wei for r in rows) == counts.recaptured_wei
    keys = [(r.block_number, r.log_index) for r in rows]
    assert keys == sorted(keys) and len(set(r.tx_hash for r in rows)) == len(rows)
    r = rows[0]
    assert ch.locate_tx(r.tx_hash) is not None and ch.number_of_hash(r.block_hash) == r.block_number


async def test_set_head_moves_latest_and_finalized(
    history: History, session: aiohttp.ClientSession
) -> None:
    async with ReplayServer(history, FAST) as srv:
        ch = history["avalanche"]
        srv.set_head("avalanche", ch.last - 1000)
        url = srv.url("avalanche")
        assert int(await rpc(session, url, "eth_blockNumber"), 16) == ch.last - 1000
        final = await rpc(session, url, "eth_getBlockByNumber", "finalized", False)
        assert int(final["number"], 16) == ch.last - 1000 - ch.spec.finality_depth
        assert await rpc(session, url, "eth_getBlockByNumber", hex(ch.last), False) is None


def test_expected_counts_through_a_block() -> None:
    h = History(seed=SEED, total_events=3000, blocks=20_000, chains=["polygon", "base"])
    full = h.expected_counts()
    ch = h["polygon"]
    mid = ch.start + 10_000
    part = h.expected_counts({"polygon": mid})
    assert part["polygon"].liquidations == ch.index.events_between(0, mid - ch.start)
    assert 0 < part["polygon"].liquidations < full["polygon"].liquidations
    assert part["base"] == full["base"]


# --------------------------------------------------------------------------- determinism
def test_history_is_deterministic_by_seed() -> None:
    from bench.replay.blocks import render_block

    def fingerprint(seed: int) -> list[Any]:
        h = History(seed=seed, total_events=2000, blocks=10_000)
        out: list[Any] = []
        for ch in h:
            blocks = list(ch.event_blocks(ch.start, ch.last))
            out.append((ch.name, blocks[:50], ch.block_hash(ch.start)))
            for n in blocks[:20]:
                plan = ch.plan(n)
                assert plan is not None
                rb = render_block(ch, plan)
                out.append([rb.log_json(i) for i in range(len(rb.logs))])
        out.append({k: v.to_json() for k, v in h.expected_counts().items()})
        return out

    assert fingerprint(11) == fingerprint(11)
    assert fingerprint(11) != fingerprint(12)


def test_distribution_is_realistic() -> None:
    h = History(seed=1, total_events=20_000, blocks=100_000)
    counts = h.expected_counts()
    assert sum(c.liquidations for c in counts.values()) == 20_000
    most = max(counts.values(), key=lambda c: c.liquidations)
    assert most.chain == "polygon"
    richest = max(counts.values(), key=lambda c: c.debt_usd)
    assert richest.chain == "ethereum"
    # bursts: the busiest 3% of a chain's window holds far more than 3% of its events
    ch = h["avalanche"]
    per_bucket = [0] * 100
    for n in ch.event_blocks(ch.start, ch.last):
        per_bucket[(n - ch.start) * 100 // ch.window] += ch.event_count(n)
    assert sum(sorted(per_bucket)[-3:]) > 0.3 * ch.index.total


# --------------------------------------------------------------------------- operations
async def test_stats_and_moving_head(history: History, session: aiohttp.ClientSession) -> None:
    srv = ReplayServer(history, FAST, moving_head=True, speed=600.0)  # 50 Ethereum blocks/s
    await srv.start()
    try:
        url = srv.url("ethereum")
        ch = history["ethereum"]
        h0 = int(await rpc(session, url, "eth_blockNumber"), 16)
        assert ch.start <= h0 < ch.last
        await asyncio.sleep(0.3)
        h1 = int(await rpc(session, url, "eth_blockNumber"), 16)
        assert h1 > h0
        async with session.get(srv.base_url + "/stats") as resp:
            stats = await resp.json()
        assert stats["chains"]["ethereum"]["methods"]["eth_blockNumber"] == 2
        assert stats["totals"]["http_requests"] == 2
    finally:
        await srv.stop()


def test_config_matches_the_indexer_format(history: History) -> None:
    text = render_config(history, "http://127.0.0.1:9", get_profile("default"))
    cfg = tomllib.loads(text)
    assert set(cfg["chains"]) == {"ethereum", "polygon", "avalanche", "arbitrum", "base"}
    eth = cfg["chains"]["ethereum"]
    assert eth["chain_id"] == 1 and eth["rpc_urls"] == ["http://127.0.0.1:9/ethereum"]
    assert eth["max_block_range"] == 2000 and eth["requests_per_second"] == 300
    assert eth["use_finalized_tag"] is True and eth["block_time_seconds"] == 12
    assert eth["pools"][0]["address"] == "0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2"
    assert eth["svr"]["model"] == "mev-share" and len(eth["svr"]["recipients"]) == 1
    assert eth["svr"]["split"] == [{"from": "2025-03-29", "aave_bps": 6500}]
    assert eth["native_price_asset"] == "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    base = cfg["chains"]["base"]
    assert base["svr"]["model"] == "atlas"
    assert base["svr"]["dapp_control"] == "0xa5e1a36938769cbd5a26f5e19d8fcb379f597c83"
    assert cfg["chains"]["polygon"]["svr"] == {
        "model": "none",
        "recipients": [],
        "split": [{"from": "2025-03-29", "aave_bps": 6500}],
        "aggregators": [],
    }
    assert cfg["chains"]["arbitrum"]["block_time_seconds"] == 0.25
    for chain in cfg["chains"].values():
        for agg in chain["svr"]["aggregators"]:
            assert 1 <= len(agg["assets"]) <= 2 and agg["start_block"] >= chain["start_block"]


def test_command_line_prints_ready_line_and_writes_config(tmp_path: Any) -> None:
    out = tmp_path / "replay.toml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.replay",
            "--port",
            "0",
            "--profile",
            "none",
            "--seed",
            "3",
            "--events",
            "2000",
            "--blocks",
            "10000",
            "--config-out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["url"] == f"http://127.0.0.1:{ready['port']}"
        cfg = tomllib.loads(out.read_text())
        url = cfg["chains"]["avalanche"]["rpc_urls"][0]
        assert url == ready["chains"]["avalanche"]

        async def ask() -> Any:
            async with aiohttp.ClientSession() as s:
                return await rpc(s, url, "eth_chainId")

        assert asyncio.run(ask()) == hex(43114)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
