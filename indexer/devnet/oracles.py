"""The chain's price feeds as the scenario drives them.

MockFeeds and PlainAggregators get their price from the setter's transaction, queued first in
the next block, so the block runs with it and its state shows it (a storage write between
blocks would show in the block before too). DualAggregators get OCR2-style reports by the
primary (public) route or the secondary (SVR) route.

`now` is the price Aave sees. Through a DualAggregator that is not the latest report: its
SVR readers (Aave's sources) get a new secondary report at once, a public one only once it is
older than the aggregator's cutoff time (or when the secondary route catches up on it). The
scenario moves `now`, and an asset's written feeds with it, in the block where Aave's view of
the asset's DualAggregator changes, so whichever source a market reads, at whatever moment,
Aave sees the one price.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from .context import ChainContext
from .market import (
    MAX_SYNC_ITERATIONS,
    ORACLE_PRIMARY,
    ORACLE_SECONDARY,
    OTHER_SECONDARY,
    PRICE_SETTER,
)
from .session import Sent

TRANSMIT_GAS = 500_000
#: The feed name of the other protocol's ETH / USD DualAggregator (behind no Aave source).
FOREIGN = "ETH (other protocol)"


@dataclass(frozen=True)
class Report:
    """One OCR report: what transmit / transmitSecondary carry."""

    data: bytes
    epoch_and_round: int
    price: int


@dataclass
class Feed:
    """What the scenario knows about one DualAggregator's reports."""

    address: str
    digest: bytes
    epoch: int
    report: Report | None = None  # the last report made
    #: Reports stored as new rounds in this run, oldest first, with whether the primary
    #: route stored them (a catch-up can only follow those).
    rounds: list[tuple[Report, bool]] = field(default_factory=list)
    primary_pending: bool = False  # secondary stored the last report, primary has not yet
    #: the primary route stored the last report itself (re-landing it would store it again)
    public_latest: bool = False


class Oracles:
    def __init__(self, ctx: ChainContext) -> None:
        self.ctx = ctx
        self.now: dict[str, int] = {}  # price per symbol as Aave sees it now
        names = dict(ctx.d.duals)
        if ctx.d.foreign_aggregator:
            names[FOREIGN] = ctx.d.foreign_aggregator
        # Config digest and epoch from the chain: a second run continues the epochs.
        call = ctx.c.aggregator.encode("latestConfigDigestAndEpoch")
        answers = ctx.s.eth_calls([(a, call) for a in names.values()])
        self.feeds: dict[str, Feed] = {}
        for (name, address), answer in zip(names.items(), answers, strict=True):
            _, digest, epoch = abi_decode(["bool", "bytes32", "uint32"], bytes.fromhex(answer[2:]))
            self.feeds[name] = Feed(address, digest, epoch)
        self.written = {s: ctx.d.writable_feeds(s) for s in ctx.d.tokens}
        #: Public reports Aave does not see yet (symbol -> price), until the cutoff passes.
        self.unreleased: dict[str, int] = {}

    def set_mocks(self, symbol: str, price: int) -> None:
        """Every set feed of `symbol` to `price`, by transactions queued for the next block
        (queue them before the block's others). An asset without a DualAggregator has its
        price now; one with it, once Aave sees its report."""
        for address in self.written[symbol]:
            self.ctx.s.send(
                PRICE_SETTER,
                address,
                self.ctx.c.mock.encode("setAnswer", price),
                gas=60_000,
                label=f"price {symbol}",
            )
        if symbol not in self.feeds:
            self.now[symbol] = price

    def seen(self, symbol: str, price: int, follow: bool = True) -> None:
        """Aave sees `price` for `symbol` from the next block: its set feeds follow (unless
        `follow` is false: they were set for that block already)."""
        if follow:
            self.set_mocks(symbol, price)
        self.now[symbol] = price
        self.unreleased.pop(symbol, None)

    def new_report(
        self, name: str, price: int, observed_at: int, rng: random.Random | None = None
    ) -> None:
        """Four observations with `price` as the median, observed at `observed_at` (it
        supersedes a report the primary route has yet to re-land); drawn from `rng`, by
        default the scenario's stream."""
        feed = self.feeds[name]
        feed.primary_pending = False
        feed.public_latest = False
        rng = rng or self.ctx.rng
        spread = max(1, price // 5000)
        observations = [price - 3 * spread, price - spread, price, price + 2 * spread]
        order = list(range(4))
        rng.shuffle(order)
        raw_observers = bytes(order) + bytes(28)
        juels = 10**18 + rng.randrange(10**16)
        feed.epoch += 1
        data = abi_encode(
            ["uint32", "bytes32", "int192[]", "int192"],
            [observed_at, raw_observers, observations, juels],
        )
        feed.report = Report(data, feed.epoch << 8 | 1, price)

    def transmit_data(self, name: str, secondary: bool, report: Report | None = None) -> str:
        """transmit / transmitSecondary call data for a report (the feed's last one)."""
        feed = self.feeds[name]
        report = report or feed.report
        assert report is not None
        context = [feed.digest, report.epoch_and_round.to_bytes(32, "big"), bytes(32)]
        call = "transmitSecondary" if secondary else "transmit"
        return self.ctx.c.aggregator.encode(call, context, report.data, [], [], bytes(32))

    def stored(self, name: str, primary: bool) -> None:
        """The feed's last report became a new round (by the primary route or not)."""
        feed = self.feeds[name]
        assert feed.report is not None
        feed.rounds.append((feed.report, primary))

    def send_primary(self, name: str, label: str = "primary") -> Sent:
        """The last report by the public route: a new round, or (label "primary again") the
        report the secondary route stored (PrimaryFeedUnlocked)."""
        if label != "primary again":
            self.stored(name, True)
        return self.ctx.s.send(
            ORACLE_PRIMARY,
            self.feeds[name].address,
            self.transmit_data(name, False),
            gas=TRANSMIT_GAS,
            label=f"{label} {name}",
        )

    def catch_up_report(self, name: str, older: bool) -> Report | None:
        """A report the primary route stored that the secondary route can catch up on: the
        latest round's, or (`older`) an earlier one still within maxSyncIterations."""
        rounds = self.feeds[name].rounds
        if not rounds:
            return None
        if not older:
            report, primary = rounds[-1]
            return report if primary else None
        for back in range(1, min(MAX_SYNC_ITERATIONS, len(rounds))):
            report, primary = rounds[-1 - back]
            if primary:
                return report
        return None

    def send_secondary_by_nodes(self, name: str, report: Report | None = None) -> Sent:
        """A secondary-route report sent by the node operators (Aave's through the forwarder
        on Ethereum; the other protocol's by its own node), with no searcher involved:
        with `report`, a catch-up on that stored report, else the last one as a new round."""
        if report is None:
            self.stored(name, False)
        data = self.transmit_data(name, True, report)
        agg = self.feeds[name].address
        forwarder = self.ctx.d.forwarder
        label = f"{'catch-up' if report else 'secondary'} {name}"
        if name == FOREIGN:
            return self.ctx.s.send(OTHER_SECONDARY, agg, data, gas=TRANSMIT_GAS, label=label)
        if forwarder:
            call = self.ctx.c.forwarder.encode("forward", agg, bytes.fromhex(data[2:]))
            return self.ctx.s.send(ORACLE_SECONDARY, forwarder, call, gas=TRANSMIT_GAS, label=label)
        return self.ctx.s.send(ORACLE_SECONDARY, agg, data, gas=TRANSMIT_GAS, label=label)
