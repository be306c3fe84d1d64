"""Which price feed stands behind each asset of each market, and since when: SVR feeds dated
on-chain rather than listed by hand.

An AaveOracle emits AssetSourceUpdated(asset, source) whenever an asset's source is set (in
its constructor, by governance, by an SVR steward). The source is seldom the aggregator that
receives the reports: an SVR feed proxy answers aggregator(), a CAPO adapter
BASE_TO_USD_AGGREGATOR() (exchange-rate assets such as wstETH) or ASSET_TO_USD_AGGREGATOR()
(stablecoins). `resolve` follows those answers a few levels deep, at the block the source was
set, and takes the first aggregator whose typeAndVersion() names a DualAggregator as the SVR
feed behind the source. `SourceBook` keeps the result as windows: which SVR aggregator, if
any, stood behind an asset's source in a market at any log position. An aggregator behind
no Aave source (Chainlink runs SVR feeds for other protocols too) is never in the book, so
its updates are never read and never attributed.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from indexer.abi import BadAnswer, Function
from indexer.config import AggregatorConfig
from indexer.decode.events import SourceUpdate
from indexer.enrich.prices import check_call_result
from indexer.records import AssetSourceRow
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import RpcError

log = logging.getLogger("aave_indexer.sources")

TYPE_AND_VERSION = Function("typeAndVersion()", returns=("string",))
#: What a contract in front of an aggregator answers: a feed proxy, a CAPO adapter's base
#: feed (exchange-rate assets), a stable CAPO adapter's feed.
BEHIND = (
    Function("aggregator()", returns=("address",)),
    Function("BASE_TO_USD_AGGREGATOR()", returns=("address",)),
    Function("ASSET_TO_USD_AGGREGATOR()", returns=("address",)),
)
SVR_TYPE = "DualAggregator"
MAX_DEPTH = 4  # source -> CAPO adapter -> proxy -> aggregator, and one level to spare
_ZERO = "0x" + "0" * 40


@dataclass(frozen=True, slots=True)
class Resolved:
    """What stands behind a source: the SVR DualAggregator if one was found, else the
    deepest contract that answered typeAndVersion() or stood behind a proxy (None when the
    source answered no probe at all)."""

    aggregator: str | None
    is_svr: bool
    type_and_version: str | None


@dataclass(frozen=True, slots=True)
class _Probe:
    type_and_version: str | None
    behind: tuple[str, ...]


def _decode_string(answer: object) -> str | None:
    if isinstance(answer, RpcError) or not isinstance(answer, str) or len(answer) <= 2:
        return None
    try:
        return str(TYPE_AND_VERSION.decode_value(answer))
    except BadAnswer:
        return None


def _decode_address(function: Function, answer: object) -> str | None:
    if isinstance(answer, RpcError) or not isinstance(answer, str) or len(answer) != 66:
        return None
    try:
        value = str(function.decode_value(answer)).lower()
    except BadAnswer:
        return None
    return None if value == _ZERO else value


async def _probe(
    client: RpcClient, targets: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], _Probe]:
    """typeAndVersion() and the three "what is behind you" getters of each (address, block),
    in batched eth_calls; a revert or an empty answer is simply "no"."""
    functions = (TYPE_AND_VERSION, *BEHIND)
    calls = [
        ("eth_call", [{"to": address, "data": f.encode()}, hex(block)])
        for address, block in targets
        for f in functions
    ]
    answers = await client.batch(calls, check=check_call_result)
    probes: dict[tuple[str, int], _Probe] = {}
    width = len(functions)
    for i, target in enumerate(targets):
        row = answers[i * width : (i + 1) * width]
        behind = tuple(
            dict.fromkeys(
                a
                for f, answer in zip(BEHIND, row[1:], strict=True)
                if (a := _decode_address(f, answer)) is not None and a != target[0]
            )
        )
        probes[target] = _Probe(_decode_string(row[0]), behind)
    return probes


async def resolve(
    client: RpcClient, wanted: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], Resolved]:
    """What stands behind each (source, block): probed level by level, every source of one
    level in one batch, at the block the source was set."""
    keys = sorted(set(wanted))
    found: dict[tuple[str, int], Resolved] = {}
    fallback: dict[tuple[str, int], tuple[str, str | None]] = {}  # the best non-SVR answer
    seen = {key: {key[0]} for key in keys}
    frontier = {key: [key[0]] for key in keys}
    for depth in range(MAX_DEPTH):
        targets = sorted({(a, key[1]) for key, addresses in frontier.items() for a in addresses})
        if not targets:
            break
        probes = await _probe(client, targets)
        following: dict[tuple[str, int], list[str]] = {}
        for key, addresses in frontier.items():
            deeper: list[str] = []
            for address in addresses:
                probe = probes[(address, key[1])]
                version = probe.type_and_version
                if version is not None and version.startswith(SVR_TYPE):
                    found[key] = Resolved(address, True, version)
                    break
                # Else the deepest contract with a typeAndVersion(), or at least one that
                # a proxy points at, is what stands behind the source.
                if version is not None:
                    fallback[key] = (address, version)
                elif depth > 0 and fallback.get(key, (None, None))[1] is None:
                    fallback[key] = (address, None)
                deeper += [a for a in probe.behind if a not in seen[key]]
            if key in found:
                continue
            if deeper:
                seen[key].update(deeper)
                following[key] = deeper
        frontier = following
    for key in keys:
        if key not in found:
            behind = fallback.get(key)
            found[key] = (
                Resolved(behind[0], False, behind[1]) if behind else Resolved(None, False, None)
            )
    return found


class SourceBook:
    """Every source an asset had in each market, with the SVR aggregator behind it (if any),
    by position; plus the configured aggregators, which count from their start_block in
    every market of the chain (an override for what the chain does not say)."""

    def __init__(self, overrides: Sequence[AggregatorConfig] = ()) -> None:
        self._rows: dict[tuple[str, str, int], AssetSourceRow] = {}
        self._windows: dict[tuple[str, str], list[tuple[int, int, str | None]]] = {}
        self._overrides: dict[str, list[tuple[str, int]]] = {}
        for agg in overrides:
            for asset in agg.assets:
                self._overrides.setdefault(asset, []).append((agg.address, agg.start_block))
        self._configured = frozenset(agg.address for agg in overrides)
        self._svr: frozenset[str] = self._configured

    def __len__(self) -> int:
        return len(self._rows)

    def known(self, market: str, tx_hash: str, log_index: int) -> AssetSourceRow | None:
        return self._rows.get((market, tx_hash, log_index))

    def add(self, rows: Iterable[AssetSourceRow]) -> None:
        touched: set[tuple[str, str]] = set()
        for row in rows:
            position = (row.market, row.tx_hash, row.log_index)
            if position in self._rows:
                continue
            self._rows[position] = row
            window = (row.block_number, row.log_index, row.aggregator if row.is_svr else None)
            self._windows.setdefault((row.market, row.asset), []).append(window)
            touched.add((row.market, row.asset))
        for key in touched:
            self._windows[key].sort(key=lambda w: (w[0], w[1]))
        self._svr = self._configured | {
            r.aggregator for r in self._rows.values() if r.is_svr and r.aggregator
        }

    def extended(self, rows: Sequence[AssetSourceRow]) -> SourceBook:
        """This book with `rows` added, leaving this one as it is (a batch's rows count for
        its own attribution before they are written)."""
        if not rows:
            return self
        other = SourceBook.__new__(SourceBook)
        other._rows = dict(self._rows)
        other._windows = {key: list(windows) for key, windows in self._windows.items()}
        other._overrides = self._overrides
        other._configured = self._configured
        other._svr = self._svr
        other.add(rows)
        return other

    def aggregators(self) -> frozenset[str]:
        """Every SVR aggregator that is, was or will be behind a source (their updates are
        read over the whole history: one address set for every range)."""
        return self._svr

    def svr_aggregators(
        self, market: str, asset: str, block: int, log_index: int
    ) -> tuple[str, ...]:
        """The SVR aggregators behind `asset`'s source in `market` at a log position: the
        source set by the asset's last AssetSourceUpdated before that position, and any
        configured aggregator of the asset."""
        out: tuple[str, ...] = ()
        windows = self._windows.get((market, asset))
        if windows:
            i = bisect.bisect_left(windows, (block, log_index), key=lambda w: (w[0], w[1]))
            if i and windows[i - 1][2] is not None:
                out = (windows[i - 1][2],)  # type: ignore[assignment]
        for address, start in self._overrides.get(asset, ()):
            if block >= start and address not in out:
                out += (address,)
        return out

    def in_force(self, aggregator: str, block: int, log_index: int) -> bool:
        """Whether `aggregator` stood behind some asset's source, in some market, at that
        position (an update of an SVR feed before any Aave source used it is not Aave's)."""
        if aggregator not in self._svr:
            return False
        for market, asset in self._windows:
            if aggregator in self.svr_aggregators(market, asset, block, log_index):
                return True
        return any(
            address == aggregator and block >= start
            for entries in self._overrides.values()
            for address, start in entries
        )


def source_rows(
    chain_id: int,
    markets: dict[str, list[str]],
    updates: Sequence[SourceUpdate],
    resolved: dict[tuple[str, int], Resolved],
) -> list[AssetSourceRow]:
    """One row per (update, market of its oracle)."""
    rows = []
    for update in updates:
        pos = update.pos
        found = resolved[(update.source, pos.block_number)]
        for market in markets.get(pos.address, ()):
            rows.append(
                AssetSourceRow(
                    chain_id,
                    market,
                    pos.address,
                    pos.block_number,
                    pos.block_hash,
                    pos.tx_hash,
                    pos.log_index,
                    update.asset,
                    update.source,
                    found.aggregator,
                    found.is_svr,
                    found.type_and_version,
                )
            )
    return rows


async def rows_for(
    client: RpcClient,
    chain: str,
    chain_id: int,
    markets: dict[str, list[str]],
    updates: Sequence[SourceUpdate],
    book: SourceBook,
) -> list[AssetSourceRow]:
    """The rows of source updates the book does not hold yet, their sources resolved."""
    new = [
        u
        for u in updates
        if any(
            book.known(m, u.pos.tx_hash, u.pos.log_index) is None
            for m in markets.get(u.pos.address, ())
        )
    ]
    if not new:
        return []
    resolved = await resolve(client, {(u.source, u.pos.block_number) for u in new})
    rows = source_rows(chain_id, markets, new, resolved)
    for row in rows:
        if row.aggregator is None:
            log.info(
                "%s %s: source %s of asset %s (block %d) answers none of typeAndVersion(), "
                "aggregator(), BASE_TO_USD_AGGREGATOR(), ASSET_TO_USD_AGGREGATOR(): "
                "not an SVR feed",
                chain,
                row.market,
                row.source,
                row.asset,
                row.block_number,
            )
    return rows
