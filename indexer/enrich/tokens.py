"""Token metadata (symbol, decimals), fetched once per asset and kept in the assets table."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from indexer.enrich.prices import check_call_result
from indexer.rpc.client import RpcClient
from indexer.rpc.errors import RpcError

DECIMALS = "0x313ce567"
SYMBOL = "0x95d89b41"


@dataclass(frozen=True, slots=True)
class Token:
    address: str
    symbol: str
    decimals: int


def decode_symbol(raw: str) -> str:
    """ABI string, or bytes32 (older tokens such as MKR)."""
    body = raw[2:] if raw.startswith("0x") else raw
    try:
        if len(body) >= 192 and int(body[:64], 16) == 32:
            length = int(body[64:128], 16)
            return bytes.fromhex(body[128 : 128 + 2 * length]).decode("utf-8", "replace")
        if len(body) == 64:
            return bytes.fromhex(body).rstrip(b"\0").decode("utf-8", "replace")
    except ValueError:
        pass
    return ""


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
            calls.append(("eth_call", [{"to": address, "data": DECIMALS}, "latest"]))
            calls.append(("eth_call", [{"to": address, "data": SYMBOL}, "latest"]))
        answers = await self.client.batch(calls, check=check_call_result)
        learned = []
        for i, address in enumerate(missing):
            decimals_raw, symbol_raw = answers[2 * i], answers[2 * i + 1]
            if isinstance(decimals_raw, RpcError) or not decimals_raw or decimals_raw == "0x":
                raise RpcError(f"{address}: decimals() failed; is it an ERC-20 token?")
            decimals = int(decimals_raw, 16)
            symbol = "" if isinstance(symbol_raw, RpcError) else decode_symbol(symbol_raw)
            token = Token(address, symbol or address[:10], decimals)
            self.tokens[address] = token
            learned.append(token)
        return learned

    def decimals(self, address: str) -> int:
        return self.tokens[address].decimals
