"""The chain's price sources as the scenario drives them.

MockAggregators (Aave's artifact) have no setter: their price is written to storage slot 0
with anvil_setStorageAt and shows from the next block on. DualAggregators get OCR2-style
reports by the primary (public) route or the secondary (SVR) route.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_utils import keccak

from .context import ChainContext
from .market import ORACLE_PRIMARY, ORACLE_SECONDARY
from .session import Sent

TRANSMIT_GAS = 500_000


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
        self.feeds = {s: Feed(a.source) for s, a in ctx.d.assets.items() if a.svr}

    def set_mock(self, symbol: str, price: int) -> None:
        source = self.ctx.d.assets[symbol].source
        self.ctx.s.rpc.call("anvil_setStorageAt", source, "0x0", f"0x{price:064x}")
        self.now[symbol] = price

    def new_report(self, symbol: str, price: int, observed_at: int) -> None:
        """Four observations with `price` as the median, observed at `observed_at`."""
        feed = self.feeds[symbol]
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

    def transmit_data(self, symbol: str, secondary: bool) -> str:
        """transmit / transmitSecondary call data for the feed's last report."""
        feed = self.feeds[symbol]
        digest = keccak(text=f"devnet-config/{feed.address}")
        context = [digest, (feed.epoch << 8 | 1).to_bytes(32, "big"), bytes(32)]
        name = "transmitSecondary" if secondary else "transmit"
        return self.ctx.c.aggregator.encode(name, context, feed.report, [], [], bytes(32))

    def send_primary(self, symbol: str, label: str = "primary") -> Sent:
        return self.ctx.s.send(
            ORACLE_PRIMARY,
            self.feeds[symbol].address,
            self.transmit_data(symbol, False),
            gas=TRANSMIT_GAS,
            label=f"{label} {symbol}",
        )

    def send_secondary_by_nodes(self, symbol: str) -> Sent:
        """A secondary-route report sent by the node operators (through the forwarder on
        Ethereum), with no searcher involved."""
        data = self.transmit_data(symbol, True)
        agg = self.feeds[symbol].address
        forwarder = self.ctx.d.forwarder
        if forwarder:
            call = self.ctx.c.forwarder.encode("forward", agg, bytes.fromhex(data[2:]))
            return self.ctx.s.send(
                ORACLE_SECONDARY, forwarder, call, gas=TRANSMIT_GAS, label=f"secondary {symbol}"
            )
        return self.ctx.s.send(
            ORACLE_SECONDARY, agg, data, gas=TRANSMIT_GAS, label=f"secondary {symbol}"
        )
