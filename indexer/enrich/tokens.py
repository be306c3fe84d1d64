"""Token metadata (symbol, decimals), fetched once per asset and kept in the assets table."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from indexer.abi import BadAnswer, Function
from indexer.enrich.prices import check_call_result
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import RpcError

DECIMALS = Function("decimals()", returns=("uint8",))
SYMBOL = Function("symbol()", returns=("string",))
#: symbol() as older tokens (MKR, SAI) answer it: a NUL-padded bytes32.
SYMBOL_BYTES32 = Function("symbol()", returns=("bytes32",))


@dataclass(frozen=True, slots=True)
class Token:
    address: str
    symbol: str
    decimals: int


def decode_symbol(raw: str) -> str:
    """ABI string, or bytes32 (older tokens such as MKR); "" for anything else."""
    try:
        return str(SYMBOL.decode_value(raw))
    except BadAnswer:
        pass
    if len(raw) == 66:  # exactly one word: a longer answer is a broken string, not a bytes32
        try:
            value: bytes = SYMBOL_BYTES32.decode_value(raw)
        except BadAnswer:
            return ""
        return value.rstrip(b"\0").decode("utf-8", "replace")
    return ""


def decode_decimals(raw: str | RpcError) -> int | None:
    """decimals() as a uint8; None for a revert, no answer ("0x") or a larger number."""
    if isinstance(raw, RpcError):
        return None
    try:
        return int(DECIMALS.decode_value(raw))
    except BadAnswer:
        return None


class TokenRegistry:
    def __init__(self, client: RpcClient, known: dict[str, Token] | None = None) -> None:
        self.client = client
        self.tokens: dict[str, Token] = dict(known or {})

    async def ensure(self, addresses: Iterable[str]) -> list[Token]:
        """Fetch the metadata of assets not seen before; return the newly learned ones."""
        missing = sorted({a for a in addresses if a not in self.tokens})
        if not missing:
            return []
        calls = []
        for address in missing:
            calls.append(("eth_call", [{"to": address, "data": DECIMALS.encode()}, "latest"]))
            calls.append(("eth_call", [{"to": address, "data": SYMBOL.encode()}, "latest"]))
        answers = await self.client.batch(calls, check=check_call_result)
        learned = []
        for i, address in enumerate(missing):
            decimals_raw, symbol_raw = answers[2 * i], answers[2 * i + 1]
            decimals = decode_decimals(decimals_raw)
            if decimals is None:
                raise RpcError(f"{address}: decimals() failed; is it an ERC-20 token?")
            symbol = "" if isinstance(symbol_raw, RpcError) else decode_symbol(symbol_raw)
            token = Token(address, symbol or address[:10], decimals)
            self.tokens[address] = token
            learned.append(token)
        return learned

    def decimals(self, address: str) -> int:
        return self.tokens[address].decimals
