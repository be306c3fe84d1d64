"""One chain's scenario session: nonces, queued transactions, blocks mined on demand.

Mining is manual while the scenario runs: transactions are queued, sent and mined into one
block with an explicit timestamp (evm_mine); empty blocks follow a fixed timestamp interval.
So block contents, times and hashes are the same on every run.

Within a block anvil (--order fifo) orders ready transactions first-in first-out; a sender's
next transaction becomes ready when the previous one is included, so a block lists them in
"rounds": every sender's first transaction in arrival order, then every second one, ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak

from .errors import DevnetError
from .rpc import Rpc

GAS_PRICE = 2_000_000_000  # legacy gas price; the base fee stays below 1 gwei on the devnet


def actor(name: str) -> str:
    """A stable, lowercase address for a named role (users, liquidators, builders...)."""
    return "0x" + keccak(text=f"aave-svr-devnet/{name}")[12:].hex()


def _rlp_bytes(item: bytes) -> bytes:
    if len(item) == 1 and item[0] < 0x80:
        return item
    if len(item) <= 55:
        return bytes([0x80 + len(item)]) + item
    size = len(item).to_bytes((len(item).bit_length() + 7) // 8, "big")
    return bytes([0xB7 + len(size)]) + size + item


def create_address(sender: str, nonce: int) -> str:
    """The address a CREATE from `sender` at `nonce` produces."""
    nonce_bytes = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big") if nonce else b""
    payload = _rlp_bytes(bytes.fromhex(sender[2:])) + _rlp_bytes(nonce_bytes)
    encoded = bytes([0xC0 + len(payload)]) + payload
    return "0x" + keccak(encoded)[12:].hex()


@dataclass
class Sent:
    """A transaction as queued, later filled with its hash and receipt."""

    label: str
    sender: str
    nonce: int
    request: dict[str, Any]
    tx_hash: str = ""
    receipt: dict[str, Any] = field(default_factory=dict)


@dataclass
class Block:
    number: int
    hash: str
    timestamp: int
    txs: list[Sent]


class ChainSession:
    """Drives one node: the scenario's only writer while it runs."""

    def __init__(self, name: str, rpc: Rpc, chain_id: int) -> None:
        self.name = name
        self.rpc = rpc
        self.chain_id = chain_id
        self._nonces: dict[str, int] = {}
        self._queue: list[Sent] = []
        head = rpc.call("eth_getBlockByNumber", "latest", False)
        self.head = int(head["number"], 16)
        self.head_time = int(head["timestamp"], 16)

    # --- transactions -------------------------------------------------------------------

    def nonce(self, sender: str) -> int:
        """The next nonce of `sender`, counting transactions queued but not yet mined."""
        if sender not in self._nonces:
            self._nonces[sender] = int(
                self.rpc.call("eth_getTransactionCount", sender, "latest"), 16
            )
        return self._nonces[sender]

    def send(
        self,
        sender: str,
        to: str | None,
        data: str = "0x",
        *,
        value: int = 0,
        gas: int = 1_000_000,
        label: str = "",
    ) -> Sent:
        """Queue a transaction for the next `mine`; returns its record (hash after mining)."""
        nonce = self.nonce(sender)
        self._nonces[sender] = nonce + 1
        request: dict[str, Any] = {
            "from": sender,
            "data": data,
            "value": hex(value),
            "gas": hex(gas),
            "gasPrice": hex(GAS_PRICE),
            "nonce": hex(nonce),
            "chainId": hex(self.chain_id),
        }
        if to is not None:
            request["to"] = to
        sent = Sent(label or f"tx{len(self._queue)}", sender, nonce, request)
        self._queue.append(sent)
        return sent

    def deploy(self, sender: str, data: str, *, gas: int = 8_000_000, label: str = "") -> str:
        """Queue a contract creation; returns the address it will have."""
        address = create_address(sender, self.nonce(sender))
        self.send(sender, None, data, gas=gas, label=label or "create")
        return address

    # --- blocks -------------------------------------------------------------------------

    def mine(self, timestamp: int) -> Block:
        """Send the queued transactions and mine them into one block at `timestamp`.

        Each transaction goes in its own request (anvil runs a batch's calls concurrently), so
        the block keeps the queue's order across senders; within one sender, nonce order.
        """
        if timestamp <= self.head_time:
            raise DevnetError(f"{self.name}: block time {timestamp} is not after {self.head_time}")
        queue, self._queue = self._queue, []
        for sent in queue:
            sent.tx_hash = str(self.rpc.call("eth_sendTransaction", sent.request))
        self.rpc.call("evm_mine", timestamp)
        number = self.head + 1
        receipts: list[dict[str, Any]] = self.rpc.call("eth_getBlockReceipts", hex(number)) or []
        by_hash = {r["transactionHash"]: r for r in receipts}
        missing = [s.label for s in queue if s.tx_hash not in by_hash]
        if missing or len(receipts) != len(queue):
            raise DevnetError(
                f"{self.name}: block {number} holds {len(receipts)} of {len(queue)} transactions "
                f"(missing {missing[:3]})"
            )
        block_hash = receipts[0]["blockHash"] if receipts else self._block_hash(number)
        for sent in queue:
            sent.receipt = by_hash[sent.tx_hash]
        failed = [s for s in queue if s.receipt.get("status") != "0x1"]
        if failed:
            first = failed[0]
            reason = self._revert_reason(first, number)
            raise DevnetError(
                f"{self.name}: {len(failed)} transaction(s) reverted in block {number}, first "
                f"{first.label} ({first.tx_hash}): {reason}"
            )
        self.head, self.head_time = number, timestamp
        return Block(number, block_hash, timestamp, queue)

    def mine_empty(self, count: int) -> None:
        """`count` empty blocks, each the block timestamp interval after the last.

        The interval must be set (anvil_setBlockTimestampInterval): anvil_mine's own interval
        argument starts from the wall clock, which would make block hashes differ per run.
        """
        if count <= 0:
            return
        if self._queue:
            raise DevnetError(f"{self.name}: empty blocks requested with transactions queued")
        self.rpc.call("anvil_mine", hex(count))
        head = self.rpc.call("eth_getBlockByNumber", "latest", False)
        self.head = int(head["number"], 16)
        self.head_time = int(head["timestamp"], 16)

    def _block_hash(self, number: int) -> str:
        block = self.rpc.call("eth_getBlockByNumber", hex(number), False)
        return str(block["hash"])

    def _revert_reason(self, sent: Sent, number: int) -> str:
        request = {k: v for k, v in sent.request.items() if k not in ("nonce", "chainId")}
        try:
            self.rpc.call("eth_call", request, hex(number - 1))
        except DevnetError as exc:
            return str(exc)
        return "reverted (replay on the parent block succeeds: depends on the block's order)"

    # --- reads --------------------------------------------------------------------------

    def eth_calls(self, calls: Sequence[tuple[str, str]], block: int | str = "latest") -> list[str]:
        tag = hex(block) if isinstance(block, int) else block
        return [
            str(r)
            for r in self.rpc.batch([("eth_call", [{"to": t, "data": d}, tag]) for t, d in calls])
        ]
