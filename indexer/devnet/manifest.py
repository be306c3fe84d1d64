"""Ground truth and indexer configuration written by the scenario.

Every entry is taken from receipts of transactions the scenario sent (not from a scan of the
chain), and prices from the market's AaveOracle.getAssetPrice at the entry's block, so the
manifest is an independent answer key for the indexer. What stands behind a source comes
from the register of feeds the devnet deployed (feeds.resolve), and whether a liquidation is
SVR (and why not) from what the scenario meant it to be; tests/test_devnet.py checks both
against the chain.

protocol_fee_amount is the collateral aToken's Transfer(user -> treasury) amount in the
liquidation; it equals rayMul(value, index) of the BalanceTransfer emitted with it.
Recaptures carry two fields beyond the indexer's needs: bid_amount (what the searcher or
solver bid; on Ethereum the builder refunds BUILDER_REFUND_BPS of it, on Atlas chains the
winner may pay more than it declared) and builder.

Oracle updates carry their route, read from the order of one aggregator's events in one
transaction as the real DualAggregator emits them (`routes`), and each new secondary report
of an aggregator behind an Aave source at the time whether it was sold (`with_sold`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .chains import PROFILES
from .feeds import FeedInfo, resolve
from .session import Block, ChainSession, Sent

if TYPE_CHECKING:
    from .context import Label
    from .deploy import Deployment

LIQUIDATION_CALL = "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286"
TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
BALANCE_TRANSFER = "0x4beccb90f994c31aced7a23b5611020728a23d8ec5cddd1a3e9d97b96fda8666"
SOLVER_TX_RESULT = "0x94e79da376f3bc5202c947c2466a329832d3e9af2f4e094a18c160868453273c"
SECONDARY_ROUND_ID_UPDATED = "0x8d530b9ddc4b318d28fdd4c3a21fcfecece54c1a72a824f262985b99afef009b"
ASSET_SOURCE_UPDATED = "0x22c5b7b2d8561d39f7f210b6b326a1aa69f15311163082308ac4877db6339dc1"
AGGREGATOR_EVENTS = {
    "0xc797025feeeaf2cd924c99e9205acb8ec04d5cad21c41ce637a38fb6dee6016a": "new_transmission",
    "0x0109fc6f55cf40689f02fbaad7af7fe7bbac8a3d2186600afc7d3e10cac60271": "new_round",
    "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f": "answer_updated",
    SECONDARY_ROUND_ID_UPDATED: "secondary_round_id_updated",
    "0xda2435684a37fba6f7841e49b59e6ad975e462bbebd28ec9da4ed9746a6992be": "primary_feed_unlocked",
}
GET_ASSET_PRICE = "0xb3596f07"
#: Aave V3.3+ Pool events (checked against the compiled V3.6 Pool's ABI in the tests).
DEFICIT_CREATED = "0x2bccfb3fad376d59d7accf970515eb77b2f27b082c90ed0fb15583dd5a942699"
DEFICIT_COVERED = "0x84b203e49f1a4b553088061534231969a68ad1c81be192205e96d23a206cb26a"


def _word(data: str, i: int) -> int:
    return int(data[2 + 64 * i : 2 + 64 * (i + 1)], 16)


def _topic_address(topic: str) -> str:
    return "0x" + topic[-40:]


def _signed(value: int, bits: int = 256) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def liquidation_id(chain_id: int, tx_hash: str, log_index: int) -> str:
    return f"{chain_id}:{tx_hash}:{log_index}"


def liquidation_entries(
    d: Deployment, block: Block, sent: Sent, labels: Sequence[Label] | Label
) -> list[dict[str, Any]]:
    """One entry per LiquidationCall log of the transaction (of any market), with its
    treasury fee; `labels` gives each, in log order, what the scenario meant it to be."""
    markets = {m.pool: m for m in d.markets.values()}
    logs = sent.receipt["logs"]
    out: list[dict[str, Any]] = []
    window_start = 0
    found = [
        i
        for i, log in enumerate(logs)
        if log["address"].lower() in markets and log["topics"][0] == LIQUIDATION_CALL
    ]
    if isinstance(labels, Sequence):
        if len(labels) != len(found):
            raise ValueError(f"{sent.tx_hash}: {len(found)} liquidations, {len(labels)} labels")
        per_log = list(labels)
    else:
        per_log = [labels] * len(found)
    for pos in found:
        log = logs[pos]
        label = per_log[len(out)]
        svr = label.svr
        market = markets[log["address"].lower()]
        atokens = {a.address: a.atoken for a in market.assets.values()}
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
                "market": market.name,
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
                "svr_reason": label.reason,
            }
        )
    return out


def deficit_entries(d: Deployment, block: Block, sent: Sent) -> list[dict[str, Any]]:
    """One entry per DeficitCreated / DeficitCovered log of any market's pool in the
    transaction. A deficit created belongs to the liquidation of its user that follows it in
    the transaction (the Pool books the deficit before it logs the LiquidationCall)."""
    markets = {m.pool: m for m in d.markets.values()}
    logs = sent.receipt["logs"]
    out: list[dict[str, Any]] = []
    for pos, log in enumerate(logs):
        address = log["address"].lower()
        topics = log["topics"]
        if (
            address not in markets
            or not topics
            or topics[0] not in (DEFICIT_CREATED, DEFICIT_COVERED)
        ):
            continue
        created = topics[0] == DEFICIT_CREATED
        user = _topic_address(topics[1]) if created else None
        liquidation = None
        if created:
            liquidation = next(
                (
                    liquidation_id(d.chain_id, sent.tx_hash, int(later["logIndex"], 16))
                    for later in logs[pos + 1 :]
                    if later["address"].lower() == address
                    and later["topics"][0] == LIQUIDATION_CALL
                    and _topic_address(later["topics"][3]) == user
                ),
                None,
            )
        log_index = int(log["logIndex"], 16)
        out.append(
            {
                "id": liquidation_id(d.chain_id, sent.tx_hash, log_index),
                "market": markets[address].name,
                "pool": address,
                "block_number": block.number,
                "block_hash": block.hash,
                "block_time": block.timestamp,
                "tx_hash": sent.tx_hash,
                "tx_index": int(sent.receipt["transactionIndex"], 16),
                "log_index": log_index,
                "kind": "created" if created else "covered",
                "user": user,
                "asset": _topic_address(topics[2] if created else topics[1]),
                "amount": str(_word(log["data"], 0 if created else 1)),
                "caller": None if created else "0x" + log["data"][2 + 24 : 2 + 64],
                "price": None,
                "liquidation_id": liquidation,
            }
        )
    return out


def fill_deficit_prices(
    session: ChainSession, oracles: dict[str, str], entries: list[dict[str, Any]]
) -> None:
    """price = getAssetPrice(asset) of the entry's market's AaveOracle at its block."""
    keys = sorted({(e["market"], e["block_number"], e["asset"]) for e in entries})
    calls = [
        (
            "eth_call",
            [
                {"to": oracles[market], "data": GET_ASSET_PRICE + "0" * 24 + asset[2:]},
                hex(number),
            ],
        )
        for market, number, asset in keys
    ]
    answers = session.rpc.batch(calls) if calls else []
    prices = {key: str(int(r, 16)) for key, r in zip(keys, answers, strict=True)}
    for e in entries:
        e["price"] = prices[(e["market"], e["block_number"], e["asset"])]


def source_entries(
    block: Block, sent: Sent, market: str, oracle: str, feeds: dict[str, FeedInfo]
) -> list[dict[str, Any]]:
    """One entry per AssetSourceUpdated of the market's oracle in the transaction, with what
    stands behind the source (the rows the indexer's asset_sources table holds)."""
    out = []
    for log in sent.receipt["logs"]:
        if log["address"].lower() != oracle or log["topics"][0] != ASSET_SOURCE_UPDATED:
            continue
        source = _topic_address(log["topics"][2])
        behind = resolve(feeds, source)
        out.append(
            {
                "market": market,
                "oracle": oracle,
                "asset": _topic_address(log["topics"][1]),
                "source": source,
                "aggregator": behind.aggregator,
                "is_svr": behind.is_svr,
                "type_and_version": behind.type_and_version,
                "block_number": block.number,
                "block_hash": log["blockHash"],
                "tx_hash": sent.tx_hash,
                "log_index": int(log["logIndex"], 16),
            }
        )
    return out


def oracle_entries(block: Block, sent: Sent, aggregators: set[str]) -> list[dict[str, Any]]:
    """Every DualAggregator event in the transaction, decoded, with its route."""
    out: list[dict[str, Any]] = []
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
        report: dict[str, Any] = dict.fromkeys(REPORT_FIELDS)
        if kind == "new_transmission":
            data = log["data"]
            report = {
                "transmitter": "0x" + data[2 + 64 + 24 : 2 + 128],
                "observations_timestamp": _word(data, 2),
                "epoch_and_round": _word(data, 7),
                "config_digest": "0x" + data[2 + 64 * 6 : 2 + 64 * 7],
            }
        out.append(
            {
                "block_number": block.number,
                "tx_hash": sent.tx_hash,
                "log_index": int(log["logIndex"], 16),
                "aggregator": address,
                "kind": kind,
                "round_id": round_id,
                "answer": answer,
                "route": None,
                **report,
                "sold": None,
            }
        )
    routes(out)
    return out


REPORT_FIELDS = ("transmitter", "observations_timestamp", "epoch_and_round", "config_digest")


def routes(entries: list[dict[str, Any]]) -> None:
    """Set each entry's route from the order of its aggregator's events in its transaction:
    a SecondaryRoundIdUpdated right before a NewTransmission announces a new secondary
    report (its NewRound and AnswerUpdated follow), alone it is a catch-up; other reports
    and PrimaryFeedUnlocked are primary."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in entries:
        groups.setdefault((e["tx_hash"], e["aggregator"]), []).append(e)
    for group in groups.values():
        group.sort(key=lambda e: e["log_index"])
        marked, report = False, "primary"
        for k, e in enumerate(group):
            if e["kind"] == "secondary_round_id_updated":
                following = group[k + 1]["kind"] if k + 1 < len(group) else None
                e["route"] = "secondary" if following == "new_transmission" else "catch_up"
                marked = e["route"] == "secondary"
            elif e["kind"] == "new_transmission":
                e["route"] = report = "secondary" if marked else "primary"
                marked = False
            elif e["kind"] == "primary_feed_unlocked":
                e["route"] = "primary"
            else:
                e["route"] = report


def secondary_round(sent: Sent, aggregator: str) -> int:
    """The round id a new secondary-route report recorded (its SecondaryRoundIdUpdated)."""
    for entry in oracle_entries(Block(0, "", 0, []), sent, {aggregator}):
        if entry["kind"] == "secondary_round_id_updated" and entry["route"] == "secondary":
            return int(entry["round_id"])
    raise ValueError(f"{sent.tx_hash} has no SecondaryRoundIdUpdated for {aggregator}")


def solver_results(sent: Sent, settlement: str) -> list[dict[str, Any]]:
    """The transaction's SolverTxResult logs, decoded (bid_token None: the native coin)."""
    out = []
    for log in sent.receipt["logs"]:
        if log["address"].lower() != settlement or log["topics"][0] != SOLVER_TX_RESULT:
            continue
        data = log["data"]
        token = "0x" + data[2 + 24 : 2 + 64]
        out.append(
            {
                "log_index": int(log["logIndex"], 16),
                "solver": _topic_address(log["topics"][1]),
                "solver_from": _topic_address(log["topics"][2]),
                "dapp_control": _topic_address(log["topics"][3]),
                "bid_token": None if int(token, 16) == 0 else token,
                "bid_amount": _word(data, 1),
                "executed": bool(_word(data, 2)),
                "success": bool(_word(data, 3)),
                "result": _word(data, 4),
            }
        )
    return out


def metacall_entry(
    block: Block, sent: Sent, settlement: str, control: str, declared: Sequence[int]
) -> dict[str, Any]:
    """One Atlas metacall: its DAppControl and every bid in the order tried, as logged
    (`bid_amount`: the net amount received for a winner, else the declared bid), with the
    bid each solver declared."""
    results = solver_results(sent, settlement)
    if len(results) != len(declared):
        raise ValueError(f"{sent.tx_hash}: {len(results)} SolverTxResult, {len(declared)} bids")
    return {
        "block_number": block.number,
        "block_hash": block.hash,
        "tx_hash": sent.tx_hash,
        "dapp_control": control,
        "bids": [
            {**r, "bid_amount": str(r["bid_amount"]), "declared_amount": str(amount)}
            for r, amount in zip(results, declared, strict=True)
        ],
    }


def fill_prices(
    session: ChainSession, oracles: dict[str, str], entries: list[dict[str, Any]]
) -> None:
    """collateral_price / debt_price: what the entry's market's AaveOracle answered at the
    liquidation's position. That is getAssetPrice at the entry's block, except where the
    scenario changed Aave's view of one of its assets after it in the block
    (svr.late_view_change): there the prices it had set when the liquidation ran
    (`seen_prices`; the liquidation's own amounts confirm them: tests/test_pipeline.py).
    The end-of-block answers are kept as *_price_at_block_end for every entry."""
    keys = sorted(
        {
            (e["market"], e["block_number"], e[side])
            for e in entries
            for side in ("collateral_asset", "debt_asset")
        }
    )
    calls = [
        (
            "eth_call",
            [
                {"to": oracles[market], "data": GET_ASSET_PRICE + "0" * 24 + asset[2:]},
                hex(number),
            ],
        )
        for market, number, asset in keys
    ]
    prices = {key: str(int(r, 16)) for key, r in zip(keys, session.rpc.batch(calls), strict=True)}
    for e in entries:
        seen = e.pop("seen_prices", None) or {}
        for side in ("collateral", "debt"):
            asset = e[f"{side}_asset"]
            at_end = prices[(e["market"], e["block_number"], asset)]
            e[f"{side}_price_at_block_end"] = at_end
            e[f"{side}_price"] = str(seen[asset]) if asset in seen else at_end


BALANCE_OF = "0x70a08231"


def fill_closures(session: ChainSession, d: Deployment, entries: list[dict[str, Any]]) -> None:
    """closed_fully: the borrower owes none of the debt asset after the liquidation. The
    debt token balances (variable and stable) at the end of the block hold for the block's
    last liquidation of that borrower, market and asset; an earlier one left debt for it."""
    last: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for e in sorted(entries, key=lambda e: (e["block_number"], e["tx_index"], e["log_index"])):
        last[(e["market"], e["user"], e["debt_asset"], e["block_number"])] = e
    keys = sorted(last)
    calls, asked = [], []
    for key in keys:
        market, user, asset, number = key
        reserve = next(a for a in d.markets[market].assets.values() if a.address == asset)
        for token in (reserve.variable_debt_token, reserve.stable_debt_token):
            if token and int(token, 16):  # V3.2+ reserves have no stable debt token
                data = BALANCE_OF + "0" * 24 + user[2:]
                calls.append(("eth_call", [{"to": token, "data": data}, hex(number)]))
                asked.append(key)
    owed: dict[tuple[str, str, str, int], int] = {}
    for key, answer in zip(asked, session.rpc.batch(calls), strict=True):
        owed[key] = owed.get(key, 0) + int(answer, 16)
    finals = {id(last[key]) for key in keys if owed[key] == 0}
    for e in entries:
        e["closed_fully"] = id(e) in finals


def _chain_order(entry: dict[str, Any]) -> tuple[int, int]:
    return entry["block_number"], entry["log_index"]


def svr_aggregators(sources: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Every aggregator that is SVR behind some source, in any market and window, with the
    assets it is so for."""
    out: dict[str, list[str]] = {}
    for entry in sources:
        if entry["is_svr"]:
            assets = out.setdefault(entry["aggregator"], [])
            if entry["asset"] not in assets:
                assets.append(entry["asset"])
    return out


def _in_force(sources: list[dict[str, Any]], aggregator: str, at: tuple[int, int]) -> bool:
    """Whether `aggregator` stands behind the source in force of some asset of some market
    at position `at` (sources in chain order)."""
    current: dict[tuple[str, str], str | None] = {}
    for s in sources:
        if (s["block_number"], s["log_index"]) >= at:
            break
        current[(s["market"], s["asset"])] = s["aggregator"] if s["is_svr"] else None
    return aggregator in current.values()


def with_sold(
    model: str,
    updates: list[dict[str, Any]],
    sources: list[dict[str, Any]],
    liquidations: list[dict[str, Any]],
    metacalls: list[dict[str, Any]],
    control: str,
) -> list[dict[str, Any]]:
    """The updates with `sold` set on each new secondary report of an aggregator in force:
    MEV-Share, when an SVR liquidation is attributed to it; Atlas, when its metacall has a
    successful bid of Aave's DAppControl. Every other row: None."""
    attributed = {(e["svr_oracle_tx_hash"], e["svr_aggregator"]) for e in liquidations if e["svr"]}
    won = {
        m["tx_hash"]
        for m in metacalls
        if m["dapp_control"] == control and any(b["success"] for b in m["bids"])
    }
    out = []
    for u in updates:
        sold = None
        if (
            u["kind"] == "secondary_round_id_updated"
            and u["route"] == "secondary"
            and _in_force(sources, u["aggregator"], _chain_order(u))
        ):
            if model == "atlas":
                sold = u["tx_hash"] in won
            else:
                sold = (u["tx_hash"], u["aggregator"]) in attributed
        out.append({**u, "sold": sold})
    return out


def chain_manifest(d: Deployment, journal: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    profile = PROFILES[d.chain]
    sources = sorted(journal["sources"], key=_chain_order)
    aggregators = svr_aggregators(sources)
    liquidations = sorted(journal["liquidations"], key=_chain_order)
    metacalls = sorted(journal.get("metacalls", []), key=lambda m: m["block_number"])
    updates = sorted(
        (u for u in journal["oracle_updates"] if u["aggregator"] in aggregators),
        key=_chain_order,
    )
    core = d.core
    svr_model = profile.svr_model != "none"
    return {
        "chain_id": d.chain_id,
        "pool": core.pool,
        "oracle": core.oracle,
        "treasury": d.treasury,
        "markets": {
            name: {
                "pool": m.pool,
                "oracle": m.oracle,
                "pool_block": m.pool_block,
                "provider": m.provider,
                "acl_manager": m.acl_manager,
                "admin": m.admin,
                "assets": {
                    a.address: {
                        "symbol": a.symbol,
                        "atoken": a.atoken,
                        "variable_debt_token": a.variable_debt_token,
                        "price_source": a.source,
                    }
                    for a in m.assets.values()
                },
            }
            for name, m in d.markets.items()
        },
        "assets": {
            a.address: {
                "symbol": a.symbol,
                "decimals": a.decimals,
                "atoken": a.atoken,
                "variable_debt_token": a.variable_debt_token,
                "price_source": a.source,
            }
            for a in core.assets.values()
        },
        "sources": sources,
        "svr": {
            "model": profile.svr_model,
            "recipient": d.svr_recipient if svr_model else None,
            "aggregators": aggregators,
            "foreign_aggregators": [d.foreign_aggregator] if d.foreign_aggregator else [],
            "atlas": d.settlement or None,
            "dapp_control": d.dapp_control or None,
            "other_dapp_control": d.other_dapp_control or None,
            "forwarder": d.forwarder or None,
            "builders": d.builders,
            "searcher_contracts": d.searchers,
            # Who appears as `liquidator` in an SVR LiquidationCall: the searcher's (Ethereum)
            # or winning solver's (Atlas) contract, which calls Pool.liquidationCall itself.
            "svr_liquidator": "searcher_contract" if svr_model else None,
            # The DualAggregators' settings, and the readers that get their SVR view.
            "cutoff_time": d.cutoff_time or None,
            "max_sync_iterations": d.max_sync_iterations or None,
            "secondary_proxies": d.secondary_proxies,
        },
        "liquidations": liquidations,
        # The events of the SVR aggregators only, over the whole history (also before the
        # aggregator became a source): what the indexer reads.
        "oracle_updates": with_sold(
            profile.svr_model, updates, sources, liquidations, metacalls, d.dapp_control
        ),
        "recaptures": sorted(journal["recaptures"], key=lambda r: r["block_number"]),
        "metacalls": metacalls,
        "deficits": sorted(journal.get("deficits", []), key=_chain_order),
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    tmp.replace(path)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


SPLIT = [("2025-03-29", 6500), ("2026-02-02", 6000)]


def devnet_toml(deployments: dict[str, Deployment], urls: dict[str, str]) -> str:
    """The indexer's configuration for the devnet (format of indexer/chains.toml): pools
    named by market and no SVR aggregators (the indexer finds them behind the sources)."""
    lines = [
        "# Written by `aave-indexer devnet scenario`: the indexer configuration for the local",
        "# devnet. Regenerated on every scenario run.",
        "",
    ]
    for name, d in deployments.items():
        p = PROFILES[name]
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
            f'native_price_asset = "{d.tokens["WETH"]}"',
            "",
        ]
        for m in d.markets.values():
            lines += [
                f"[[chains.{name}.pools]]",
                f'market = "{m.name}"',
                f'address = "{m.pool}"',
                f'oracle = "{m.oracle}"',
                "version = 3",
                f"start_block = {m.pool_block}",
                "",
            ]
        lines += [
            f"[chains.{name}.svr]",
            f'model = "{p.svr_model}"',
            f"recipients = {_toml_list([d.svr_recipient] if p.svr_model != 'none' else [])}",
        ]
        if p.svr_model == "atlas":
            lines += [f'atlas = "{d.settlement}"', f'dapp_control = "{d.dapp_control}"']
        split = ", ".join(f'{{ from = "{day}", aave_bps = {bps} }}' for day, bps in SPLIT)
        lines.append(f"split = [{split}]")
        lines.append("")
    return "\n".join(lines)
