"""The custom scalars (Address, BigInt, Decimal, DateTime): how each is read from a caller
and written back. No floats anywhere: amounts are exact integers, USD values exact decimals,
both as strings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, NewType

import strawberry
from dateutil.parser import isoparse
from eth_hash.auto import keccak
from graphql import GraphQLError

from api.errors import excerpt

Address = NewType("Address", str)
BigInt = NewType("BigInt", int)

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_MAX_DECIMAL_CHARS = 80


def parse_address(value: object) -> str:
    """A 0x-prefixed 20-byte hex address in any letter case, returned lowercase."""
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise GraphQLError(
            f"invalid address {excerpt(value)!r}: expected 0x followed by 40 hex digits"
        )
    return value.lower()


# Per byte of 40 ASCII hex digits: 0x40 is set in letters (a-f), not digits; a digest
# digit stands for a nibble >= 8 when it is a letter or has 0x08 set ('8', '9').
_LETTER_BITS = int.from_bytes(b"\x40" * 40, "big")
_EIGHT_BITS = int.from_bytes(b"\x08" * 40, "big")


@lru_cache(maxsize=65536)
def checksum(address: str) -> str:
    """EIP-55, computed directly: a page holds up to 3 addresses per row, most of them
    distinct, and eth_utils' validation and normalisation cost more than the hash. The
    letters to capitalise are found for all 40 digits at once, as bits of one integer."""
    if not _ADDRESS.match(address):
        return address  # not a 20-byte hex string (should not happen); shown as stored
    body = address[2:].lower().encode("ascii")
    digest = int.from_bytes(keccak(body).hex()[:40].encode("ascii"), "big")
    digits = int.from_bytes(body, "big")
    high = ((digest & _LETTER_BITS) >> 3) | (digest & _EIGHT_BITS)  # 0x08: nibble >= 8
    upper = (high << 2) & ((digits & _LETTER_BITS) >> 1)  # 0x20 where also a letter
    return "0x" + (digits ^ upper).to_bytes(40, "big").decode("ascii")


def _serialize_address(value: object) -> str:
    return checksum(str(value))


def _serialize_bigint(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value.to_integral_exact(), "f")
    return str(int(value))  # type: ignore[call-overload]


def _parse_bigint(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,78}", value):
        return int(value)
    raise GraphQLError(f"invalid BigInt {excerpt(value)!r}: expected an integer as a string")


def _serialize_decimal(value: object) -> str:
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    return format(value, "f")


def _parse_decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise GraphQLError(f"invalid Decimal {excerpt(value)!r}: expected a number as a string")
    text = str(value)
    if len(text) > _MAX_DECIMAL_CHARS:
        raise GraphQLError(f"invalid Decimal: longer than {_MAX_DECIMAL_CHARS} characters")
    try:
        result = Decimal(text)
    except InvalidOperation:
        raise GraphQLError(
            f'invalid Decimal {excerpt(value)!r}: expected a number such as "1000.50"'
        ) from None
    if not result.is_finite():
        raise GraphQLError(f"invalid Decimal {excerpt(value)!r}: must be finite")
    return result


def _serialize_datetime(value: object) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {value!r}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.isoformat()


def _parse_datetime(value: object) -> datetime:
    """dateutil's isoparse, as strawberry's own DateTime uses: it also takes forms the
    standard library refuses (2026-02, 24:00, a lowercase z)."""
    if isinstance(value, str) and len(value) <= 64:
        try:
            return isoparse(value)
        except (ValueError, OverflowError):
            pass
    raise GraphQLError(
        f"invalid DateTime {excerpt(value)!r}: expected ISO 8601 such as 2026-02-01T00:00:00Z"
    )


SCALARS: dict[object, Any] = {
    Address: strawberry.scalar(
        name="Address",
        description="A 20-byte address: accepted in any letter case, returned EIP-55 checksummed.",
        serialize=_serialize_address,
        parse_value=parse_address,
    ),
    BigInt: strawberry.scalar(
        name="BigInt",
        description="An exact integer of any size (a uint256 token amount), as a decimal string.",
        serialize=_serialize_bigint,
        parse_value=_parse_bigint,
    ),
    datetime: strawberry.scalar(
        name="DateTime",
        description="An ISO 8601 date-time, e.g. 2026-02-01T00:00:00Z. Without an offset it "
        "is read as UTC; returned in UTC.",
        serialize=_serialize_datetime,
        parse_value=_parse_datetime,
    ),
    Decimal: strawberry.scalar(
        name="Decimal",
        description="An exact decimal number as a string in plain notation (no exponent), "
        'e.g. "12345.678901". Inputs also accept numbers.',
        serialize=_serialize_decimal,
        parse_value=_parse_decimal,
    ),
}
