"""Opaque keyset cursors for Query.liquidations.

A cursor is base64url(payload || tag): the payload is a small JSON array
[version, order, sort key, chain_id, tx_hash, log_index, filter fingerprint] and the tag an
HMAC-SHA256 (truncated to 12 bytes) over it. A cursor that was altered, truncated, made up,
or issued for another orderBy or filter is refused with a message; even a correctly signed
one is re-validated field by field before any of it reaches SQL (as bind parameters).

The key comes from the AAVE_API_CURSOR_SECRET environment variable (or create_app's
cursor_secret); several API processes that share it accept each other's cursors. Without
it a built-in key is used: cursors then stay tamper-evident against accidents but not
against someone who read this source, which is harmless because a cursor only says where a
public listing resumes and every field is validated anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from api.enums import LiquidationOrder, LiquidatorOrder
from api.errors import ApiError
from api.queries import KeysetPosition, LiquidatorPosition

CURSOR_VERSION = 1
MAX_CURSOR_CHARS = 512
_TAG_BYTES = 12
_DEFAULT_SECRET = "aave-svr-indexer/api/cursor/v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_HASH = re.compile(r"^0x[0-9a-f]{1,64}$")
_DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
_INT32_MAX = 2**31 - 1
# Microseconds between 0001-01-01 and 9999-12-31 relative to the epoch.
_MIN_MICROS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_MAX_MICROS = (datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)

TIME_ORDERS = frozenset({LiquidationOrder.BLOCK_TIME_DESC, LiquidationOrder.BLOCK_TIME_ASC})


class CursorError(ApiError):
    pass


_INVALID = (
    "invalid cursor: pass an endCursor exactly as this API returned it, "
    "or omit `after` to start from the first page"
)


def cursor_key(secret: str | None = None) -> bytes:
    """The HMAC key: from `secret`, else AAVE_API_CURSOR_SECRET, else the built-in one."""
    material = secret or os.environ.get("AAVE_API_CURSOR_SECRET") or _DEFAULT_SECRET
    return hashlib.sha256(b"aave-svr-indexer cursor|" + material.encode()).digest()


@dataclass(frozen=True)
class Cursor:
    order: LiquidationOrder
    position: KeysetPosition
    scope: str  # LiquidationWhere.fingerprint() of the listing that issued it


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=8)
def _keyed(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states after HMAC's inner and outer padded keys (RFC 2104): copying them
    skips rehashing the key for every edge, and is C all the way (the hmac module's copy
    builds Python objects each time)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def _sign(key: bytes, payload: bytes) -> bytes:
    """HMAC-SHA256(key, payload), truncated."""
    inner, outer = _keyed(key)
    h = inner.copy()
    h.update(payload)
    o = outer.copy()
    o.update(h.digest())
    return o.digest()[:_TAG_BYTES]


def encode_cursor(cursor: Cursor, key: bytes) -> str:
    """The payload is written out directly (one cursor per edge, so this is on the hot
    path); it is byte for byte the compact JSON array decode_cursor reads. Every string in
    it is an enum name, a hex hash, a decimal or a hex digest: nothing needs escaping."""
    pos = cursor.position
    sort_key: str
    if isinstance(pos.key, datetime):
        sort_key = str((pos.key.astimezone(UTC) - _EPOCH) // _MICROSECOND)
    else:
        sort_key = f'"{format(pos.key, "f")}"'
    payload = (
        f'[{CURSOR_VERSION},"{cursor.order.value}",{sort_key},{int(pos.chain_id)},'
        f'"{pos.tx_hash}",{int(pos.log_index)},"{cursor.scope}"]'
    ).encode()
    return _b64encode(payload + _sign(key, payload))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _verified(text: str, key: bytes) -> list[Any]:
    """The fields of a cursor this API signed; anything else is refused."""
    if not isinstance(text, str) or not text or len(text) > MAX_CURSOR_CHARS:
        raise CursorError(_INVALID)
    if not _B64URL.match(text):
        raise CursorError(_INVALID)
    try:
        raw = _b64decode(text)
    except (binascii.Error, ValueError):
        raise CursorError(_INVALID) from None
    if len(raw) <= _TAG_BYTES:
        raise CursorError(_INVALID)
    payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    if not hmac.compare_digest(tag, _sign(key, payload)):
        raise CursorError(_INVALID)
    try:
        fields = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise CursorError(_INVALID) from None
    if not isinstance(fields, list):
        raise CursorError(_INVALID)
    return fields


def _decimal(sort_key: object) -> Decimal:
    """A decimal sort value as encode_cursor wrote it, checked."""
    if not (isinstance(sort_key, str) and len(sort_key) <= 100 and _DECIMAL.match(sort_key)):
        raise CursorError(_INVALID)
    try:
        value = Decimal(sort_key)
    except InvalidOperation:
        raise CursorError(_INVALID) from None
    if not value.is_finite() or abs(value.adjusted()) > 60:
        raise CursorError(_INVALID)
    return value


def decode_cursor(text: str, key: bytes, *, order: LiquidationOrder, scope: str) -> KeysetPosition:
    """Verify and unpack a cursor issued for this `order` and filter `scope`."""
    fields = _verified(text, key)
    if len(fields) != 7 or fields[0] != CURSOR_VERSION:
        raise CursorError(_INVALID)
    _, order_name, sort_key, chain_id, tx_hash, log_index, cursor_scope = fields
    if order_name != order.value:
        raise CursorError(
            f"this cursor continues a listing ordered by {order_name}, not {order.value}: "
            "use the same orderBy, or omit `after` to start again"
        )
    if cursor_scope != scope:
        raise CursorError(
            "this cursor continues a listing with a different filter: use the same filter, "
            "or omit `after` to start again"
        )
    if not (_is_int(chain_id) and 0 <= chain_id <= _INT32_MAX):
        raise CursorError(_INVALID)
    if not (_is_int(log_index) and 0 <= log_index <= _INT32_MAX):
        raise CursorError(_INVALID)
    if not (isinstance(tx_hash, str) and _HASH.match(tx_hash)):
        raise CursorError(_INVALID)
    position_key: datetime | Decimal
    if order in TIME_ORDERS:
        if not (_is_int(sort_key) and _MIN_MICROS <= sort_key <= _MAX_MICROS):
            raise CursorError(_INVALID)
        position_key = _EPOCH + timedelta(microseconds=sort_key)
    else:
        position_key = _decimal(sort_key)
    return KeysetPosition(position_key, chain_id, tx_hash, log_index)


# Cursors of Query.liquidators: [version, "liquidators", order, sort value, address, scope].
_LIQUIDATORS = "liquidators"
_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")


def encode_liquidator_cursor(
    order: LiquidatorOrder, position: LiquidatorPosition, scope: str, key: bytes
) -> str:
    payload = (
        f'[{CURSOR_VERSION},"{_LIQUIDATORS}","{order.value}","{format(position.key, "f")}",'
        f'"{position.liquidator}","{scope}"]'
    ).encode()
    return _b64encode(payload + _sign(key, payload))


def decode_liquidator_cursor(
    text: str, key: bytes, *, order: LiquidatorOrder, scope: str
) -> LiquidatorPosition:
    """Verify and unpack a cursor issued by Query.liquidators for this order and filter."""
    fields = _verified(text, key)
    if len(fields) != 6 or fields[0] != CURSOR_VERSION or fields[1] != _LIQUIDATORS:
        raise CursorError(_INVALID)
    _, _, order_name, sort_key, liquidator, cursor_scope = fields
    if order_name != order.value:
        raise CursorError(
            f"this cursor continues a listing ordered by {order_name}, not {order.value}: "
            "use the same orderBy, or omit `after` to start again"
        )
    if cursor_scope != scope:
        raise CursorError(
            "this cursor continues a listing with a different filter: use the same filter, "
            "or omit `after` to start again"
        )
    if not (isinstance(liquidator, str) and _ADDRESS.match(liquidator)):
        raise CursorError(_INVALID)
    return LiquidatorPosition(_decimal(sort_key), liquidator)
