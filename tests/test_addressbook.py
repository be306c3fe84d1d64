"""The shipped configuration is the Aave address book's, and a pool without a confirmed
start block is dated on-chain once and kept."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from indexer import addressbook
from indexer.config import DEFAULT_CONFIG, load_config, parse_config
from indexer.fetch.deployment import NoCode, deployment_block
from indexer.pipeline import ChainIndexer
from indexer.rpc.client import RpcClient
from tests.conftest import drop_database, make_database


def test_shipped_config_is_the_address_books() -> None:
    book = addressbook.read_address_book()
    assert (
        book["version"] == json.loads((addressbook.PACKAGE / "package.json").read_text())["version"]
    )
    assert DEFAULT_CONFIG.read_text() == addressbook.render(book), (
        "run `python -m indexer.addressbook --write`"
    )
    result = subprocess.run(
        [sys.executable, "-m", "indexer.addressbook", "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_a_changed_address_book_is_noticed() -> None:
    book = addressbook.read_address_book()
    book["markets"]["AaveV3EthereumLido"]["pool"] = "0x" + "11" * 20
    assert addressbook.render(book) != DEFAULT_CONFIG.read_text()


def test_every_market_and_svr_feed_is_configured() -> None:
    config = load_config(DEFAULT_CONFIG)
    markets = {(c.name, p.market): p.address for c in config.chains.values() for p in c.pools}
    assert set(markets) == {
        ("ethereum", "core"),
        ("ethereum", "prime"),
        ("ethereum", "etherfi"),
        ("ethereum", "horizon"),
        ("polygon", "core"),
        ("avalanche", "core"),
        ("arbitrum", "core"),
        ("base", "core"),
    }
    assert markets[("ethereum", "prime")] == "0x4e033931ad43597d96d6bcc25c280717730b58b1"
    feeds = {c.name: {f.name: f.address for f in c.svr.feeds} for c in config.chains.values()}
    assert (len(feeds["ethereum"]), len(feeds["arbitrum"]), len(feeds["base"])) == (12, 24, 24)
    assert feeds["polygon"] == feeds["avalanche"] == {}
    assert feeds["ethereum"]["LINK/USD"] == "0xc7e9b623ed51f033b32ae7f1282b1ad62c28c183"
    assert feeds["ethereum"]["LINK/USD base"] == "0x76f8c9e423c228e83dcb11d17f0bd8aeb0ca01bb"
    # The confirmed start blocks are kept; the markets without one are dated on-chain.
    starts = {(c.name, p.market): p.start_block for c in config.chains.values() for p in c.pools}
    assert starts[("ethereum", "core")] == 16291127 and starts[("base", "core")] == 2357134
    assert starts[("ethereum", "prime")] is None
    assert config.chains["ethereum"].first_block is None


def test_config_check_lists_markets_and_feeds_with_rpc_urls_only() -> None:
    env = {k: v for k, v in os.environ.items() if k != "AAVE_INDEXER_CONFIG"}
    env.update({f"RPC_URL_{c.upper()}": f"https://{c}.example/KEY" for c in addressbook.CHAIN_IDS})
    result = subprocess.run(
        [sys.executable, "-m", "indexer.cli", "config", "check"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    chains = json.loads(result.stdout)["chains"]
    assert [p["market"] for p in chains["ethereum"]["pools"]] == [
        "core",
        "prime",
        "etherfi",
        "horizon",
    ]
    assert sum(len(c["svr"]["feeds"]) for c in chains.values()) == 60
    assert "KEY" not in result.stdout


def test_pool_key_name_still_reads_as_market() -> None:
    pool = {"name": "prime", "address": "0x" + "22" * 20, "oracle": "0x" + "33" * 20}
    config = parse_config({"chains": {"x": {"chain_id": 5, "pools": [pool]}}})
    assert config.chains["x"].pools[0].market == "prime"


async def test_deployment_block_is_the_first_block_with_code(
    devnet: tuple[Path, dict[str, Any]],
) -> None:
    workdir, _ = devnet
    chain = load_config(workdir / ".devnet" / "devnet.toml").chains["polygon"]
    client = RpcClient(chain.endpoints(), chain="test")
    try:
        head = int(await client.call("eth_blockNumber"), 16)
        pool = chain.pools[0].address
        found = await deployment_block(client, pool, head)
        assert await client.call("eth_getCode", [pool, hex(found)]) != "0x"
        assert await client.call("eth_getCode", [pool, hex(found - 1)]) == "0x"
        try:
            await deployment_block(client, "0x" + "44" * 20, head)
        except NoCode as exc:
            assert "has no code" in str(exc)
        else:
            raise AssertionError("an address without code was dated")
    finally:
        await client.close()


async def test_a_pool_without_start_block_is_dated_once_and_kept(
    devnet: tuple[Path, dict[str, Any]], pg_template: str
) -> None:
    workdir, _ = devnet
    chain = load_config(workdir / ".devnet" / "devnet.toml").chains["polygon"]
    pools = [p.model_copy(update={"start_block": None}) for p in chain.pools]
    undated = chain.model_copy(update={"pools": pools, "start_block": None})
    assert undated.first_block is None
    dsn = await asyncio.to_thread(make_database, pg_template)
    try:
        first = ChainIndexer(undated, dsn)
        try:
            await first.open()
            # one request checks that the pool and oracle have code; the rest is the search
            assert first.client.stats.by_method.get("eth_getCode", 0) > 1
            found = first.first_block
            assert found == chain.pools[0].start_block  # the block the devnet made the proxy in
            assert await first.checkpoint() == found - 1
        finally:
            await first.close()
        conn = await asyncpg.connect(dsn)
        try:
            kept = await conn.fetchval("SELECT block_number FROM pool_deployments")
        finally:
            await conn.close()
        assert kept == found
        again = ChainIndexer(undated, dsn)
        try:
            await again.open()
            assert again.first_block == found
            assert again.client.stats.by_method.get("eth_getCode", 0) == 1  # no search
        finally:
            await again.close()
    finally:
        await asyncio.to_thread(drop_database, dsn)
