"""Prices on the real AaveOracle of the devnet: one getAssetsPrices per block gives exactly
what getAssetPrice gives asset by asset, including for an asset the oracle cannot price."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from indexer.config import load_config
from indexer.enrich.prices import GET_ASSET_PRICE, PriceOracle
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import RpcError

STRANGER = "0x" + "12" * 20  # no reserve, no price source


async def per_asset(rpc: RpcClient, oracle: str, pairs: list[tuple[str, int]]) -> list[Any]:
    answers = await rpc.batch(
        [
            ("eth_call", [{"to": oracle, "data": GET_ASSET_PRICE.encode(a)}, hex(n)])
            for a, n in pairs
        ]
    )
    return [None if isinstance(x, RpcError) else int(x, 16) for x in answers]


async def test_assets_prices_equal_per_asset_prices(devnet: tuple[Path, dict[str, Any]]) -> None:
    workdir, manifest = devnet
    config = load_config(workdir / ".devnet" / "devnet.toml")
    checked = 0
    for name, chain in config.chains.items():
        truth = manifest["chains"][name]
        assets = sorted(truth["assets"])
        blocks = sorted({liq["block_number"] for liq in truth["liquidations"]})[:15]
        if not blocks:
            continue
        oracle = chain.pools[0].oracle
        async with RpcClient(chain.endpoints(), chain=name) as rpc:
            pairs = [(a, n) for n in blocks for a in assets]
            batched = await PriceOracle(rpc, oracle).prices(pairs)
            assert rpc.stats.calls == len(blocks)  # one call per block, all assets in it
            expected = await per_asset(rpc, oracle, pairs)
            assert [batched[p] for p in pairs] == expected
            assert all(price for price in expected)

            for liq in truth["liquidations"]:
                if liq["block_number"] in blocks:
                    n = liq["block_number"]
                    assert batched[(liq["collateral_asset"], n)] == int(
                        liq["collateral_price_at_block_end"]
                    )
                    assert batched[(liq["debt_asset"], n)] == int(liq["debt_price_at_block_end"])

            # An asset the oracle cannot price: the block's answer falls back asset by asset.
            odd = [(a, n) for n in blocks[:3] for a in [*assets[:2], STRANGER]]
            got = await PriceOracle(rpc, oracle).prices(odd)
            assert [got[p] for p in odd] == await per_asset(rpc, oracle, odd)
            checked += len(pairs)
    assert checked > 0
