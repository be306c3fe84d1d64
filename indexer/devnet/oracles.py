"""The chain's price feeds as the scenario drives them.

MockAggregators (Aave's artifact) and PlainAggregators have no setter: their price is written
to storage slot 0 with anvil_setStorageAt and shows from the next block on. DualAggregators
get OCR2-style reports by the primary (public) route or the secondary (SVR) route.

Every feed of an asset follows the same price: whenever the asset's price moves, its written
feeds move in the block that lands its DualAggregator's report, so whichever source a market
reads, at whatever moment, Aave sees the one price (`now`).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_utils import keccak

from .context import ChainContext
from .market import ORACLE_PRIMARY, ORACLE_SECONDARY, OTHER_SECONDARY
from .session import Sent

TRANSMIT_GAS = 500_000
#: The feed name of the other protocol's ETH / USD DualAggregator (behind no Aave source).
FOREIGN = "ETH (other protocol)"


@dataclass
class Feed:
    """What the scenario knows about one DualAggregator's last report."""

    address: str
    report: bytes = b""
    epoch: int = 0
    primary_pending: bool = False  # secondary stored the last report, primary has not yet


class Oracles:
    def __init__(self, ctx: ChainContext) -> None:
        self.ctx = ctx
        self.now: dict[str, int] = {}  # price per symbol as the chain has it now
        self.feeds = {s: Feed(a) for s, a in ctx.d.duals.items()}
        if ctx.d.foreign_aggregator:
            self.feeds[FOREIGN] = Feed(ctx.d.foreign_aggregator)
        self.written = {s: ctx.d.writable_feeds(s) for s in ctx.d.tokens}

    def set_mocks(self, symbol: str, price: int) -> None:
        """Every written feed of `symbol` to `price` (the next block shows it). An asset
        without a DualAggregator has its price now; one with it, once its report lands."""
        calls = [
            ("anvil_setStorageAt", [address, "0x0", f"0x{price:064x}"])
            for address in self.written[symbol]
        ]
        if calls:
            self.ctx.s.rpc.batch(calls)
        if symbol not in self.feeds:
            self.now[symbol] = price

    def new_report(self, name: str, price: int, observed_at: int) -> None:
        """Four observations with `price` as the median, observed at `observed_at` (it
        supersedes a report the primary route has yet to re-land)."""
        feed = self.feeds[name]
        feed.primary_pending = False
        rng = self.ctx.rng
        spread = max(1, price // 5000)
        observations = [price - 3 * spread, price - spread, price, price + 2 * spread]
        order = list(range(4))
        rng.shuffle(order)
        raw_observers = bytes(order) + bytes(28)
        juels = 10**18 + rng.randrange(10**16)
        feed.epoch += 1
        feed.report = abi_encode(
            ["uint32", "bytes32", "int192[]", "int192"],
            [observed_at, raw_observers, observations, juels],
        )

    def transmit_data(self, name: str, secondary: bool) -> str:
        """transmit / transmitSecondary call data for the feed's last report."""
        feed = self.feeds[name]
        digest = keccak(text=f"devnet-config/{feed.address}")
        context = [digest, (feed.epoch << 8 | 1).to_bytes(32, "big"), bytes(32)]
        call = "transmitSecondary" if secondary else "transmit"
        return self.ctx.c.aggregator.encode(call, context, feed.report, [], [], bytes(32))

    def send_primary(self, name: str, label: str = "primary") -> Sent:
        return self.ctx.s.send(
            ORACLE_PRIMARY,
            self.feeds[name].address,
            self.transmit_data(name, False),
            gas=TRANSMIT_GAS,
            label=f"{label} {name}",
        )

    def send_secondary_by_nodes(self, name: str) -> Sent:
        """A secondary-route report sent by the node operators (Aave's through the forwarder
        on Ethereum; the other protocol's by its own node), with no searcher involved."""
        data = self.transmit_data(name, True)
        agg = self.feeds[name].address
        forwarder = self.ctx.d.forwarder
        label = f"secondary {name}"
        if name == FOREIGN:
            return self.ctx.s.send(OTHER_SECONDARY, agg, data, gas=TRANSMIT_GAS, label=label)
        if forwarder:
            call = self.ctx.c.forwarder.encode("forward", agg, bytes.fromhex(data[2:]))
            return self.ctx.s.send(ORACLE_SECONDARY, forwarder, call, gas=TRANSMIT_GAS, label=label)
        return self.ctx.s.send(ORACLE_SECONDARY, agg, data, gas=TRANSMIT_GAS, label=label)
