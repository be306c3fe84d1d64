"""Contract calls and event topics by their Solidity signature (pure, no I/O).

A selector or topic typed as hex, or an offset counted by hand, is wrong silently; here each
is derived from the signature (keccak), and calldata and return data go through eth-abi,
which checks lengths, offsets and padding. Used off the hot path only: calls are made once
per asset or once per block. Logs are decoded by hand in `decode/events.py`, where a generic
decoder would cost too much per event.
"""

from __future__ import annotations

from typing import Any

from eth_abi.codec import ABICodec
from eth_abi.decoding import StringDecoder
from eth_abi.encoding import TextStringEncoder
from eth_abi.exceptions import DecodingError, ParseError
from eth_abi.grammar import ABIType, TupleType, parse
from eth_abi.registry import BaseEquals
from eth_abi.registry import registry as _default_registry
from eth_utils import keccak


class BadAnswer(ValueError):
    """Return data that is not the declared types (too short, bad offsets, not hex)."""


class _LenientString(StringDecoder):
    """A returned string that is not UTF-8 keeps its readable part: a token's symbol comes
    from a contract we do not control, and a stray byte should not lose the whole name."""

    def __init__(self) -> None:
        super().__init__(handle_string_errors="replace")


_registry = _default_registry.copy()
_registry.unregister("string")
_registry.register(BaseEquals("string"), TextStringEncoder, _LenientString, label="string")
_codec = ABICodec(_registry)


def selector(signature: str) -> str:
    """First four bytes of keccak(signature), as 0x-prefixed hex."""
    return "0x" + keccak(text=signature)[:4].hex()


def topic(signature: str) -> str:
    """An event's topic0: keccak(signature), as 0x-prefixed hex."""
    return "0x" + keccak(text=signature).hex()


def _parse(type_str: str) -> ABIType:
    """A valid ABI type, or ValueError (eth-abi's ParseError is not one)."""
    try:
        parsed = parse(type_str)
        parsed.validate()
    except ParseError as exc:
        raise ValueError(str(exc)) from None
    return parsed


def _types(signature: str) -> tuple[str, ...]:
    """Parameter types of a canonical signature. A non-canonical one (a space, "uint" for
    "uint256") has another selector than the contract's, so it fails here, at import."""
    name, sep, rest = signature.partition("(")
    if not name or not sep or not rest.endswith(")"):
        raise ValueError(f"not a function signature: {signature!r}")
    if rest == ")":
        return ()
    parsed = _parse("(" + rest)
    if not isinstance(parsed, TupleType):
        raise ValueError(f"not a function signature: {signature!r}")
    types = tuple(component.to_type_str() for component in parsed.components)
    if f"{name}({','.join(types)})" != signature:
        raise ValueError(f"signature {signature!r} is not canonical")
    return types


class Function:
    """One contract function: `Function("getAssetPrice(address)", returns=("uint256",))`.

    Addresses are decoded checksummed, as eth-abi returns them; callers lowercase them.
    """

    __slots__ = ("params", "returns", "selector", "signature")

    def __init__(self, signature: str, returns: tuple[str, ...] = ()) -> None:
        self.signature = signature
        self.params = _types(signature)
        self.returns = returns
        for type_str in returns:
            _parse(type_str)
        self.selector = selector(signature)

    def __repr__(self) -> str:
        return f"Function({self.signature!r}, returns={self.returns!r})"

    def encode(self, *args: Any) -> str:
        """Calldata: the selector and the ABI-encoded arguments, as 0x-prefixed hex."""
        if not self.params:
            return self.selector
        return self.selector + _codec.encode(self.params, args).hex()

    def decode(self, answer: str) -> tuple[Any, ...]:
        """The returned values; BadAnswer if `answer` is not hex data of those types."""
        try:
            data = bytes.fromhex(answer[2:] if answer.startswith("0x") else answer)
            return _codec.decode(self.returns, data)
        except (DecodingError, ValueError) as exc:
            raise BadAnswer(f"{self.signature} answered {answer!r:.40}: {exc}") from None

    def decode_value(self, answer: str) -> Any:
        """The one returned value of a function that returns one."""
        (value,) = self.decode(answer)
        return value
