"""A generated, deterministic five-chain Aave V3 liquidation history, derived on demand.

Nothing per event is stored. Each chain keeps an `EventIndex` (which blocks hold how many
liquidations) and a few small tables; the content of block n is a pure function of
(seed, chain, n): keyed BLAKE2b digests drive every choice. `ChainHistory.plan(n)` gives the
light numeric plan of a block (what the ground truth is computed from); `blocks.render_block`
turns a plan into transactions and hex-encoded logs.

SVR is generated the way the project's attribution rule reads it: on Ethereum (MEV-Share) an
SVR liquidation follows, in the same block, an oracle-update transaction whose aggregator
emits SecondaryRoundIdUpdated, and a builder refund to the configured recipient closes the
block; on Arbitrum/Base (Atlas) oracle update, liquidation and the winning SolverTxResult share
one transaction. The `svr` flag of each planned liquidation is computed by that rule, so
ground truth and rule agree by construction.
"""

from __future__ import annotations

import copy
import hashlib
import math
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from statistics import NormalDist
from typing import Any, NamedTuple

from .abi import addr_topic
from .chains import CHAIN_NAMES, CHAINS, END_TIMESTAMP, AssetSpec, ChainSpec
from .counts import ChainCounts, count_chain
from .index import EventIndex, build_index

DEFAULT_SEED = 1
DEFAULT_EVENTS = 300_000
DEFAULT_BLOCKS = 1_000_000

# the aggregators go live this far into the window (fraction), in order
_AGG_START_FRACTIONS = (0.03, 0.12, 0.25, 0.40)
_TABLE = 1024  # size of the lookup tables the event digests index into


class Aggregator(NamedTuple):
    number: int  # position in the chain's aggregator list
    address: str
    assets: tuple[int, ...]  # asset indices of the chain
    start_block: int
    description: str
    transmitters: tuple[str, ...]
    config_digest: str  # 64 hex digits


class Liq(NamedTuple):
    """One planned liquidation (numbers only; addresses are looked up when rendering)."""

    collateral: int  # asset index
    debt: int  # asset index
    user: int  # user index
    liquidator: int  # liquidator index
    debt_amount: int  # debtToCover, raw units
    collateral_amount: int  # liquidatedCollateralAmount, raw units
    receive_atoken: bool
    debt_price: int  # AaveOracle price of the debt asset at the block, 8 decimals
    collateral_price: int
    route: int  # index of the SVR aggregator whose update it back-runs, -1 if none
    secondary_only: bool  # drawn, no longer used: a routed update is always a new report
    bid_wei: int  # recaptured value in the native coin (0 unless routed through SVR)
    failed_solver: bool  # Atlas: a losing solver attempt precedes the winner
    svr: bool  # SVR liquidation by the project's attribution rule


class BlockPlan(NamedTuple):
    number: int
    liqs: tuple[Liq, ...]
    primary_agg: int  # an aggregator with a primary-route update in this block, -1 if none
    unlock_agg: int  # an aggregator emitting PrimaryFeedUnlocked, -1 if none
    foreign_atlas: bool  # an Atlas metacall of some other dApp in this block
    proposer_wei: int  # Ethereum: builder payment to the proposer (not a recapture)


def _mask(prefix: bytes) -> int:
    """64 bits that hide a block/tx number in the tail of a hash (recoverable from the head)."""
    return (int.from_bytes(prefix[:8], "big") * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF


def _keyed(prepared: Any, data: bytes) -> Any:
    """A keyed BLAKE2b of `data` (copying a prepared keyed state is cheaper than re-keying)."""
    h = prepared.copy()
    h.update(data)
    return h


def _key(seed: int, chain: str, label: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{chain}:{label}".encode(), digest_size=32).digest()


def _weighted_table(weights: Sequence[float], size: int = _TABLE) -> list[int]:
    """A lookup table of `size` entries holding index i in proportion to weights[i]."""
    total = float(sum(weights))
    table: list[int] = []
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        table.extend([i] * (round(acc / total * size) - len(table)))
    table.extend([len(weights) - 1] * (size - len(table)))
    return table[:size]


class ChainHistory:
    """One chain's generated history: headers for any block, events inside the window."""

    def __init__(
        self,
        spec: ChainSpec,
        *,
        seed: int,
        window: int,
        head: int,
        events: int,
        recipient: str | None = None,
    ) -> None:
        if window <= 0 or head < window:
            raise ValueError(f"{spec.name}: need 0 < window <= head")
        self.spec = spec
        self.name = spec.name
        self.chain_id = spec.chain_id
        self.seed = seed
        self.window = window
        self.last = head  # last block of the window (the static head)
        self.start = head - window + 1
        self.genesis_ts = END_TIMESTAMP - head * spec.block_time_ms // 1000
        self._k_hash = _key(seed, spec.name, "block-hash")
        self._k_tx = _key(seed, spec.name, "tx-hash")
        self._k_event = _key(seed, spec.name, "event")
        self._k_block = _key(seed, spec.name, "block")
        self._k_user = _key(seed, spec.name, "user")
        self._k_addr = _key(seed, spec.name, "address")
        self._h_hash = hashlib.blake2b(key=self._k_hash, digest_size=24)
        self._h_tx = hashlib.blake2b(key=self._k_tx, digest_size=24)
        self._h_event = hashlib.blake2b(key=self._k_event, digest_size=32)
        self._h_user = hashlib.blake2b(key=self._k_user, digest_size=20)
        self.index: EventIndex = build_index(f"{seed}:{spec.name}:index", window, events)

        self.assets: tuple[AssetSpec, ...] = spec.assets
        self.asset_index = {a.address: i for i, a in enumerate(self.assets)}
        self.asset_topics = tuple(addr_topic(a.address) for a in self.assets)
        self.native_index = next(
            i for i, a in enumerate(self.assets) if a.symbol == spec.native_asset
        )
        self._decimals_pow = [10**a.decimals for a in self.assets]
        self._bonus_bps = [450 if a.stable else 750 for a in self.assets]
        self._amp_ppm = [400 if a.stable else 60_000 for a in self.assets]
        self._phase = [
            int.from_bytes(_key(seed, spec.name, f"phase:{a.symbol}")[:4], "big")
            for a in self.assets
        ]
        self._crash_centers = [c.center for c in self.index.crashes]  # ascending
        self._crash_reach = max((2 * c.half_width for c in self.index.crashes), default=0)
        # a full price swing every ~5 days of blocks
        self._period = max(16, 5 * 86_400_000 // spec.block_time_ms)
        self._coll_table = _weighted_table([a.collateral_weight for a in self.assets])
        self._debt_table = _weighted_table([a.debt_weight for a in self.assets])
        stables = [i for i, a in enumerate(self.assets) if a.stable]
        self._alt_debt = [
            next((s for s in stables if s != i), stables[0]) for i in range(len(self.assets))
        ]
        median_e8 = spec.median_usd * 100_000_000
        nd = NormalDist()
        self._value_table = [
            max(10 * 100_000_000, int(median_e8 * math.exp(1.4 * z)))
            for z in (nd.inv_cdf((i + 0.5) / _TABLE) for i in range(_TABLE))
        ]
        self.n_users = max(256, events // 3)
        self.liquidators = tuple(self.derive_address(f"liquidator:{i}") for i in range(256))
        self.liquidator_eoas = tuple(self.derive_address(f"searcher:{i}") for i in range(256))
        self._liq_table = _weighted_table([1 / (i + 1) ** 1.1 for i in range(256)])

        aggs: list[Aggregator] = []
        for i, symbols in enumerate(spec.svr_aggregators):
            idx = tuple(self.assets.index(spec.asset(s)) for s in symbols)
            frac = _AGG_START_FRACTIONS[i % len(_AGG_START_FRACTIONS)]
            aggs.append(
                Aggregator(
                    number=i,
                    address=self.derive_address(f"svr-aggregator:{i}"),
                    assets=idx,
                    start_block=self.start + int(window * frac),
                    description=f"{symbols[0]} / USD",
                    transmitters=tuple(
                        self.derive_address(f"transmitter:{i}:{t}") for t in range(4)
                    ),
                    config_digest="0001" + _key(seed, spec.name, f"digest:{i}").hex()[4:],
                )
            )
        self.aggregators: tuple[Aggregator, ...] = tuple(aggs)
        self._agg_of_asset: dict[int, Aggregator] = {}
        for agg in aggs:
            for a in agg.assets:
                self._agg_of_asset.setdefault(a, agg)
        self._route_threshold = int(spec.svr_route_share * 65536)
        self.atlas = spec.atlas
        self.dapp_control = spec.dapp_control
        self.recipients: tuple[str, ...] = ()
        if spec.svr_model == "mev-share":
            self.recipients = ((recipient or self.derive_address("mev-share-refund")).lower(),)
        self.forwarder = self.derive_address("svr-forwarder")
        self.bundler = self.derive_address("atlas-bundler")
        self.foreign_dapp = self.derive_address("other-dapp-control")
        self.fee_recipients = tuple(self.derive_address(f"proposer:{i}") for i in range(16))
        self.coinbase = self.derive_address("coinbase")

    # ----------------------------------------------------------------- identities
    def derive_address(self, label: str) -> str:
        return "0x" + hashlib.blake2b(label.encode(), key=self._k_addr, digest_size=20).hexdigest()

    def user_address(self, user: int) -> str:
        return "0x" + _keyed(self._h_user, user.to_bytes(4, "big")).hexdigest()

    def block_hash(self, n: int) -> str:
        """Block hash: 24 keyed-hash bytes, then the number masked by them (so it inverts)."""
        if n < 0:
            return "0x" + "0" * 64
        p = _keyed(self._h_hash, n.to_bytes(8, "big")).digest()
        return "0x" + p.hex() + f"{n ^ _mask(p):016x}"

    def number_of_hash(self, block_hash: str) -> int | None:
        h = block_hash.lower()
        if len(h) != 66 or not h.startswith("0x"):
            return None
        try:
            n = int(h[50:], 16) ^ _mask(bytes.fromhex(h[2:18]))
        except ValueError:
            return None
        return n if self.block_hash(n) == h else None

    def tx_hash(self, n: int, i: int) -> str:
        p = _keyed(self._h_tx, n.to_bytes(8, "big") + i.to_bytes(2, "big")).digest()
        return "0x" + p.hex() + f"{((n << 16) | i) ^ _mask(p):016x}"

    def locate_tx(self, tx_hash: str) -> tuple[int, int] | None:
        h = tx_hash.lower()
        if len(h) != 66 or not h.startswith("0x"):
            return None
        try:
            v = int(h[50:], 16) ^ _mask(bytes.fromhex(h[2:18]))
        except ValueError:
            return None
        n, i = v >> 16, v & 0xFFFF
        return (n, i) if self.tx_hash(n, i) == h else None

    def timestamp(self, n: int) -> int:
        return self.genesis_ts + n * self.spec.block_time_ms // 1000

    # ----------------------------------------------------------------- prices
    def price(self, asset: int, n: int) -> int:
        """AaveOracle.getAssetPrice at block n, USD with 8 decimals (integer arithmetic only)."""
        a = self.assets[asset]
        amp = self._amp_ppm[asset]
        period = self._period
        pos = (n + self._phase[asset]) % period
        ppm = 1_000_000 + abs(2 * pos - period) * 2 * amp // period - amp
        if not a.stable:
            off = n - self.start
            crashes = self.index.crashes
            i = bisect_left(self._crash_centers, off - self._crash_reach)
            while i < len(crashes) and crashes[i].center < off + self._crash_reach:
                c = crashes[i]
                reach = 2 * c.half_width
                d = abs(off - c.center)
                if d < reach:
                    ppm -= c.dip_ppm * (reach - d) // reach
                i += 1
        return a.price_e8 * ppm // 1_000_000

    def aggregator_for(self, asset: int, n: int) -> Aggregator | None:
        agg = self._agg_of_asset.get(asset)
        return agg if agg is not None and n >= agg.start_block else None

    # ----------------------------------------------------------------- events
    def event_count(self, n: int) -> int:
        off = n - self.start
        if off < 0 or off >= self.window:
            return 0
        return self.index.count_at(off)

    def event_blocks(self, lo: int, hi: int) -> Iterator[int]:
        """Block numbers in [lo, hi] that hold liquidations, ascending."""
        i, j = self.index.span(lo - self.start, hi - self.start)
        start = self.start
        offsets = self.index.offsets
        for k in range(i, j):
            yield start + offsets[k]

    def plan(self, n: int) -> BlockPlan | None:
        k = self.event_count(n)
        return self._plan(n, k) if k else None

    def _plan(self, n: int, k: int) -> BlockPlan:
        blake2b = hashlib.blake2b
        nb = n.to_bytes(8, "big")
        y = int.from_bytes(blake2b(nb, key=self._k_block, digest_size=32).digest(), "little")
        active = [a for a in self.aggregators if n >= a.start_block]
        primary_agg = unlock_agg = -1
        if active:
            if (y & 0xFF) < 20:
                primary_agg = active[(y >> 8) % len(active)].number
            if ((y >> 16) & 0xFF) < 8:
                unlock_agg = active[(y >> 24) % len(active)].number
        model = self.spec.svr_model
        foreign_atlas = model == "atlas" and ((y >> 32) & 0xFF) < 13
        proposer_wei = (1 + ((y >> 40) & 0xFFFF) % 200) * 10**15 if model == "mev-share" else 0

        price = self.price
        coll_table, debt_table = self._coll_table, self._debt_table
        value_table, liq_table = self._value_table, self._liq_table
        pow10, bonus = self._decimals_pow, self._bonus_bps
        n_users = self.n_users
        threshold = self._route_threshold if active else -1
        native_price = price(self.native_index, n) if active else 0
        prices: dict[int, int] = {}
        updated: set[int] = set()  # assets with a SecondaryRoundIdUpdated earlier in the block
        liqs: list[Liq] = []
        event_hash = self._h_event
        for j in range(k):
            x = int.from_bytes(_keyed(event_hash, nb + j.to_bytes(2, "big")).digest(), "little")
            coll = coll_table[x & 1023]
            debt = debt_table[(x >> 10) & 1023]
            if debt == coll:
                debt = self._alt_debt[coll]
            user = ((x >> 20) & 0xFFFFFF) % n_users
            liquidator = liq_table[(x >> 44) & 1023]
            v = value_table[(x >> 54) & 1023]
            v += (v * ((x >> 64) & 0xFFFF)) >> 18
            receive = ((x >> 80) & 0xFF) < 20
            route_roll = (x >> 88) & 0xFFFF
            secondary_only = ((x >> 104) & 0xFF) < 38
            bid_bps = 40 + ((((x >> 112) & 0x1FF) * 3) >> 2)
            failed_solver = ((x >> 121) & 0xFF) < 77
            pd = prices.get(debt)
            if pd is None:
                pd = prices[debt] = price(debt, n)
            pc = prices.get(coll)
            if pc is None:
                pc = prices[coll] = price(coll, n)
            debt_amount = v * pow10[debt] // pd
            coll_amount = v * (10_000 + bonus[coll]) // 10_000 * pow10[coll] // pc
            route = -1
            bid = 0
            if route_roll < threshold:
                agg = self.aggregator_for(coll, n) or self.aggregator_for(debt, n)
                if agg is not None:
                    route = agg.number
                    bid = v * bid_bps // 10_000 * 10**18 // native_price
            if model == "atlas":
                svr = route >= 0
            elif model == "mev-share":
                if route >= 0:
                    updated.update(self.aggregators[route].assets)
                svr = coll in updated or debt in updated
            else:
                svr = False
            liqs.append(
                Liq(
                    coll,
                    debt,
                    user,
                    liquidator,
                    debt_amount,
                    coll_amount,
                    receive,
                    pd,
                    pc,
                    route,
                    secondary_only,
                    bid,
                    failed_solver,
                    svr,
                )
            )
        return BlockPlan(n, tuple(liqs), primary_agg, unlock_agg, foreign_atlas, proposer_wei)


def split_events(total: int, chains: Sequence[str]) -> dict[str, int]:
    """Share `total` liquidations over the chains by their event_share, exactly."""
    shares = [CHAINS[c].event_share for c in chains]
    s = sum(shares)
    out: dict[str, int] = {}
    assigned = 0
    for i, c in enumerate(chains):
        n = total - assigned if i == len(chains) - 1 else round(total * shares[i] / s)
        out[c] = n
        assigned += n
    return out


class History:
    """The whole generated history: one `ChainHistory` per chain, from one seed."""

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        total_events: int = DEFAULT_EVENTS,
        blocks: int | Mapping[str, int] = DEFAULT_BLOCKS,
        chains: Sequence[str] | None = None,
        heads: Mapping[str, int] | None = None,
        recipient: str | None = None,
    ) -> None:
        names = tuple(chains) if chains else CHAIN_NAMES
        for c in names:
            if c not in CHAINS:
                raise ValueError(f"unknown chain {c!r}; known: {', '.join(CHAIN_NAMES)}")
        self.seed = seed
        self.total_events = total_events
        per_chain = split_events(total_events, names)
        self.chains: dict[str, ChainHistory] = {}
        self._counts: dict[tuple[str, int], ChainCounts] = {}
        for c in names:
            spec = CHAINS[c]
            window = blocks if isinstance(blocks, int) else blocks.get(c, DEFAULT_BLOCKS)
            head = (heads or {}).get(c, spec.default_head)
            self.chains[c] = ChainHistory(
                spec,
                seed=seed,
                window=window,
                head=head,
                events=per_chain[c],
                recipient=recipient,
            )

    def __getitem__(self, chain: str) -> ChainHistory:
        return self.chains[chain]

    def __iter__(self) -> Iterator[ChainHistory]:
        return iter(self.chains.values())

    def expected_counts(self, through: Mapping[str, int] | None = None) -> dict[str, ChainCounts]:
        """Exact ground truth per chain, for blocks up to `through[chain]` (default: all).

        Computed from block plans (about 4 us of CPU per liquidation: ~1 s for the default
        300,000, ~40 s for ten million) and remembered per chain and bound."""
        out: dict[str, ChainCounts] = {}
        for name, ch in self.chains.items():
            bound = min((through or {}).get(name, ch.last), ch.last)
            key = (name, bound)
            if key not in self._counts:
                self._counts[key] = count_chain(ch, bound)
            out[name] = copy.deepcopy(self._counts[key])
        return out

    def index_bytes(self) -> int:
        return sum(ch.index.nbytes() for ch in self.chains.values())
