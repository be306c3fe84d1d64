"""Ground truth and indexer configuration written by the scenario.

Every entry is taken from receipts of transactions the scenario sent (not from a scan of the
chain), and prices from AaveOracle.getAssetPrice at the entry's block, so the manifest is an
independent answer key for the indexer.

protocol_fee_amount is the collateral aToken's Transfer(user -> treasury) amount in the
liquidation; it equals rayMul(value, index) of the BalanceTransfer emitted with it.
Recaptures carry two fields beyond the indexer's needs: bid_amount (what the searcher or
solver bid; on Ethereum the builder refunds BUILDER_REFUND_BPS of it) and builder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from .chains import PROFILES
from .deploy import Deployment
from .session import Block, ChainSession, Sent

LIQUIDATION_CALL = "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286"
TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
BALANCE_TRANSFER = "0x4beccb90f994c31aced7a23b5611020728a23d8ec5cddd1a3e9d97b96fda8666"
SOLVER_TX_RESULT = "0x94e79da376f3bc5202c947c2466a329832d3e9af2f4e094a18c160868453273c"
SECONDARY_ROUND_ID_UPDATED = "0x8d530b9ddc4b318d28fdd4c3a21fcfecece54c1a72a824f262985b99afef009b"
AGGREGATOR_EVENTS = {
    "0xc797025feeeaf2cd924c99e9205acb8ec04d5cad21c41ce637a38fb6dee6016a": "new_transmission",
    "0x0109fc6f55cf40689f02fbaad7af7fe7bbac8a3d2186600afc7d3e10cac60271": "new_round",
    "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f": "answer_updated",
    SECONDARY_ROUND_ID_UPDATED: "secondary_round_id_updated",
    "0xda2435684a37fba6f7841e49b59e6ad975e462bbebd28ec9da4ed9746a6992be": "primary_feed_unlocked",
}
GET_ASSET_PRICE = "0xb3596f07"


def _word(data: str, i: int) -> int:
    return int(data[2 + 64 * i : 2 + 64 * (i + 1)], 16)


def _topic_address(topic: str) -> str:
    return "0x" + topic[-40:]


def _signed(value: int, bits: int = 256) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def liquidation_id(chain_id: int, tx_hash: str, log_index: int) -> str:
    return f"{chain_id}:{tx_hash}:{log_index}"


def liquidation_entries(
    d: Deployment, block: Block, sent: Sent, svr: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """One entry per LiquidationCall log of the transaction, with its treasury fee."""
    atokens = {a.address: a.atoken for a in d.assets.values()}
    logs = sent.receipt["logs"]
    pool = d.pool
    out: list[dict[str, Any]] = []
    window_start = 0
    for pos, log in enumerate(logs):
        if (
            log["address"].lower() != pool
            or not log["topics"]
            or log["topics"][0] != LIQUIDATION_CALL
        ):
            continue
        topics, data = log["topics"], log["data"]
        collateral = _topic_address(topics[1])
        user = _topic_address(topics[3])
        fee = 0
        for earlier in logs[window_start:pos]:
            et = earlier["topics"]
            if (
                earlier["address"].lower() == atokens[collateral]
                and et
                and et[0] == TRANSFER
                and _topic_address(et[1]) == user
                and _topic_address(et[2]) == d.treasury
            ):
                fee += int(earlier["data"], 16)
        window_start = pos + 1
        log_index = int(log["logIndex"], 16)
        out.append(
            {
                "id": liquidation_id(d.chain_id, sent.tx_hash, log_index),
                "block_number": block.number,
                "block_hash": block.hash,
                "block_time": block.timestamp,
                "tx_hash": sent.tx_hash,
                "tx_index": int(sent.receipt["transactionIndex"], 16),
                "log_index": log_index,
                "collateral_asset": collateral,
                "debt_asset": _topic_address(topics[2]),
                "user": user,
                "liquidator": "0x" + data[2 + 64 * 2 + 24 : 2 + 64 * 3],
                "debt_to_cover": str(_word(data, 0)),
                "liquidated_collateral_amount": str(_word(data, 1)),
                "receive_atoken": bool(_word(data, 3)),
                "collateral_price": None,
                "debt_price": None,
                "protocol_fee_amount": str(fee),
                "svr": svr is not None,
                "svr_aggregator": svr["aggregator"] if svr else None,
                "svr_round_id": svr["round_id"] if svr else None,
                "svr_oracle_tx_hash": svr["oracle_tx_hash"] if svr else None,
            }
        )
    return out


def oracle_entries(block: Block, sent: Sent, aggregators: set[str]) -> list[dict[str, Any]]:
    """Every DualAggregator event in the transaction, decoded."""
    out = []
    for log in sent.receipt["logs"]:
        address = log["address"].lower()
        topics = log["topics"]
        if address not in aggregators or not topics or topics[0] not in AGGREGATOR_EVENTS:
            continue
        kind = AGGREGATOR_EVENTS[topics[0]]
        answer: str | None = None
        if kind == "new_transmission":
            answer = str(_signed(_word(log["data"], 0)))
        elif kind == "answer_updated":
            answer = str(_signed(int(topics[1], 16)))
        round_id = int(topics[2] if kind == "answer_updated" else topics[1], 16)
        out.append(
            {
                "block_number": block.number,
                "tx_hash": sent.tx_hash,
                "log_index": int(log["logIndex"], 16),
                "aggregator": address,
                "kind": kind,
                "round_id": round_id,
                "answer": answer,
            }
        )
    return out


def secondary_round(sent: Sent, aggregator: str) -> int:
    """The round id a secondary-route update recorded (its SecondaryRoundIdUpdated)."""
    for entry in oracle_entries(Block(0, "", 0, []), sent, {aggregator}):
        if entry["kind"] == "secondary_round_id_updated":
            return int(entry["round_id"])
    raise ValueError(f"{sent.tx_hash} has no SecondaryRoundIdUpdated for {aggregator}")


def solver_results(sent: Sent, settlement: str) -> list[dict[str, Any]]:
    out = []
    for log in sent.receipt["logs"]:
        if log["address"].lower() != settlement or log["topics"][0] != SOLVER_TX_RESULT:
            continue
        data = log["data"]
        out.append(
            {
                "log_index": int(log["logIndex"], 16),
                "solver": _topic_address(log["topics"][1]),
                "bid_token": "0x" + data[2 + 24 : 2 + 64],
                "bid_amount": _word(data, 1),
                "success": bool(_word(data, 3)),
            }
        )
    return out


def fill_prices(session: ChainSession, oracle: str, entries: list[dict[str, Any]]) -> None:
    """collateral_price / debt_price = AaveOracle.getAssetPrice at the entry's block."""
    keys = sorted(
        {
            (e["block_number"], e[side])
            for e in entries
            for side in ("collateral_asset", "debt_asset")
        }
    )
    calls = [
        ("eth_call", [{"to": oracle, "data": GET_ASSET_PRICE + "0" * 24 + asset[2:]}, hex(number)])
        for number, asset in keys
    ]
    prices = {key: str(int(r, 16)) for key, r in zip(keys, session.rpc.batch(calls), strict=True)}
    for e in entries:
        e["collateral_price"] = prices[(e["block_number"], e["collateral_asset"])]
        e["debt_price"] = prices[(e["block_number"], e["debt_asset"])]


def _chain_order(entry: dict[str, Any]) -> tuple[int, int]:
    return entry["block_number"], entry["log_index"]


def chain_manifest(d: Deployment, journal: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    profile = PROFILES[d.chain]
    aggregators = {a.source: [a.address] for a in d.assets.values() if a.svr}
    return {
        "chain_id": d.chain_id,
        "pool": d.pool,
        "oracle": d.oracle,
        "treasury": d.treasury,
        "assets": {
            a.address: {
                "symbol": a.symbol,
                "decimals": a.decimals,
                "atoken": a.atoken,
                "variable_debt_token": a.variable_debt_token,
                "price_source": a.source,
            }
            for a in d.assets.values()
        },
        "svr": {
            "model": profile.svr_model,
            "recipient": d.svr_recipient if profile.svr_model != "none" else None,
            "aggregators": aggregators,
            "atlas": d.settlement or None,
            "dapp_control": d.dapp_control or None,
            "forwarder": d.forwarder or None,
            "builders": d.builders,
            "searcher_contracts": d.searchers,
            # Who appears as `liquidator` in an SVR LiquidationCall: the searcher's (Ethereum)
            # or winning solver's (Atlas) contract, which calls Pool.liquidationCall itself.
            "svr_liquidator": "searcher_contract" if profile.svr_model != "none" else None,
        },
        "liquidations": sorted(journal["liquidations"], key=_chain_order),
        "oracle_updates": sorted(journal["oracle_updates"], key=_chain_order),
        "recaptures": sorted(journal["recaptures"], key=lambda r: r["block_number"]),
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    tmp.replace(path)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


SPLIT = [("2025-03-29", 6500), ("2026-02-02", 6000)]


def devnet_toml(deployments: dict[str, Deployment], urls: dict[str, str]) -> str:
    """The indexer's configuration for the devnet (format of indexer/chains.toml)."""
    lines = [
        "# Written by `aave-indexer devnet scenario`: the indexer configuration for the local",
        "# devnet. Regenerated on every scenario run.",
        "",
    ]
    for name, d in deployments.items():
        p = PROFILES[name]
        weth = d.assets["WETH"].address
        lines += [
            f"[chains.{name}]",
            f"chain_id = {d.chain_id}",
            f"rpc_urls = {_toml_list([urls[name]])}",
            f"start_block = {d.first_block}",
            "finality_depth = 8",
            "use_finalized_tag = false",
            "max_block_range = 2000",
            "requests_per_second = 1000",
            "max_in_flight = 4",
            f"block_time_seconds = {p.block_time}",
            f'native_price_asset = "{weth}"',
            "",
            f"[[chains.{name}.pools]]",
            'name = "devnet"',
            f'address = "{d.pool}"',
            f'oracle = "{d.oracle}"',
            "version = 3",
            f"start_block = {d.pool_block}",
            "",
            f"[chains.{name}.svr]",
            f'model = "{p.svr_model}"',
            f"recipients = {_toml_list([d.svr_recipient] if p.svr_model != 'none' else [])}",
        ]
        if p.svr_model == "atlas":
            lines += [f'atlas = "{d.settlement}"', f'dapp_control = "{d.dapp_control}"']
        split = ", ".join(f'{{ from = "{day}", aave_bps = {bps} }}' for day, bps in SPLIT)
        lines.append(f"split = [{split}]")
        aggs = [
            f'{{ address = "{a.source}", assets = ["{a.address}"], '
            f"start_block = {a.source_block} }}"
            for a in d.assets.values()
            if a.svr
        ]
        lines.append("aggregators = [" + ", ".join(aggs) + "]")
        lines.append("")
    return "\n".join(lines)
