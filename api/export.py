"""Bulk export: GET /export/liquidations.csv and /export/liquidations.parquet.

The filter is the GraphQL LiquidationFilter, one query parameter per field under its
GraphQL name (`chains=ETHEREUM,BASE&timeFrom=2026-01-01T00:00:00Z&minDebtUsd=1000`; list
fields take commas or repeated parameters), checked by the schema's own input coercion and
`api.inputs.liquidation_where`, and turned into SQL by the same builder as the GraphQL
pages (`api.queries`). A mistake is a 400 with a JSON message before anything is sent.

Rows come from a server-side cursor in one read-only transaction (one snapshot: a chain
advancing meanwhile does not tear the file), a batch at a time, and are written out as
they come, so memory stays flat whatever the row count. Exact decimals throughout: CSV
carries PostgreSQL's own text of every NUMERIC; Parquet carries NUMERIC(78,0) amounts and
prices as strings (they exceed decimal128's 38 digits) and each USD column as
decimal128(38, s), s the largest scale among the exported values, or as strings when no
decimal128 holds them all (a scan of the matching rows picks s before the file starts).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from graphql import (
    GraphQLInputObjectType,
    coerce_input_value,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from graphql.utilities.validate_input_value import validate_input_value
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from strawberry.utils.str_converters import to_camel_case

from api import queries
from api.db import Database
from api.errors import BAD_USER_INPUT, TIMEOUT, UNAVAILABLE, ApiError
from api.inputs import LiquidationFilter, liquidation_where
from api.queries import EXPORT_COLUMNS, LiquidationWhere, Sql
from api.schema import schema

log = logging.getLogger("api.export")

BATCH_ROWS = 5000  # rows per FETCH (a few MB of Python objects at most)
ROW_GROUP_ROWS = 50_000  # Parquet row group
MAX_CONCURRENT_EXPORTS = 2  # per process: each holds a pooled connection throughout
STATEMENT_TIMEOUT_MS = 60_000  # per FETCH
IDLE_TIMEOUT_MS = 60_000  # a client may pause this long between batches
DECIMAL128_DIGITS = 38


def _filter_type() -> GraphQLInputObjectType:
    found = schema._schema.get_type("LiquidationFilter")
    assert isinstance(found, GraphQLInputObjectType)
    return found


_FILTER_TYPE = _filter_type()
_PYTHON_NAME = {
    to_camel_case(f.python_name): f.python_name
    for f in LiquidationFilter.__strawberry_definition__.fields  # type: ignore[attr-defined]
}
_INT = re.compile(r"^-?\d{1,19}$")


class ExportError(Exception):
    def __init__(self, message: str, status: int = 400, code: str = BAD_USER_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def _error(exc: ExportError) -> Response:
    body = {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]}
    headers = {"Retry-After": "5"} if exc.status in (429, 503) else None
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _typed(text: str, type_name: str) -> object:
    """A parameter's text as the JSON value its GraphQL type reads (left as text when it
    is not one: the coercion below then says what is wrong)."""
    if type_name == "Int" and _INT.match(text):
        return int(text)
    if type_name == "Boolean" and text in ("true", "false"):
        return text == "true"
    return text


def where_from_params(params: QueryParams) -> LiquidationWhere:
    """The query parameters as a checked LiquidationWhere (ExportError on a mistake)."""
    value: dict[str, object] = {}
    for key in dict.fromkeys(params.keys()):
        field = _FILTER_TYPE.fields.get(key)
        if field is None:
            known = ", ".join(_FILTER_TYPE.fields)
            raise ExportError(f"unknown parameter {key[:40]!r}; the filter's fields are: {known}")
        texts = params.getlist(key)
        named = get_named_type(field.type).name
        if is_list_type(get_nullable_type(field.type)):
            value[key] = [_typed(t, named) for text in texts for t in text.split(",") if t]
        elif len(texts) > 1:
            raise ExportError(f"{key} is given {len(texts)} times; it takes one value")
        else:
            value[key] = _typed(texts[0], named)
    errors: list[str] = []

    def collect(error: Any, path: list[Any]) -> None:
        where = ".".join(str(p) for p in path)
        errors.append(f"{where}: {error.message}" if where else str(error.message))

    validate_input_value(value, _FILTER_TYPE, collect)
    if errors:
        raise ExportError(errors[0])
    coerced = coerce_input_value(value, _FILTER_TYPE)
    try:
        return liquidation_where(
            LiquidationFilter(**{_PYTHON_NAME[k]: v for k, v in coerced.items()})
        )
    except ApiError as exc:
        raise ExportError(exc.message) from None


async def _batches(db: Database, sql: Sql) -> AsyncIterator[list[Any]]:
    """The rows of `sql`, BATCH_ROWS at a time, through a server-side cursor."""
    async with db.connection() as conn, conn.transaction(isolation="repeatable_read"):
        timeouts = queries.export_timeouts(STATEMENT_TIMEOUT_MS, IDLE_TIMEOUT_MS)
        await conn.execute(timeouts.text, *timeouts.args)
        cursor = await conn.cursor(sql.text, *sql.args)
        while True:
            rows = await cursor.fetch(BATCH_ROWS)
            if not rows:
                return
            yield rows


# -- CSV -------------------------------------------------------------------------------


async def _csv(db: Database, where: LiquidationWhere) -> AsyncGenerator[bytes, None]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([name for name, _, _ in EXPORT_COLUMNS])
    async for rows in _batches(db, queries.liquidations_export(where, as_text=True)):
        writer.writerows(rows)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


# -- Parquet ---------------------------------------------------------------------------


class _Sink:
    """A write-only file the Parquet writer fills and the response drains."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


_ARROW = {
    "int": pa.int64(),
    "text": pa.string(),
    "bool": pa.bool_(),
    "time": pa.timestamp("us", tz="UTC"),
    "amount": pa.string(),
}


def _usd_type(scale: int | None, largest: Decimal | None) -> pa.DataType:
    """decimal128(38, s) when every value has at most s decimals and fits in 38 digits."""
    s = max(scale or 0, 0)
    whole = len(str(int(largest))) if largest is not None else 1
    return pa.decimal128(DECIMAL128_DIGITS, s) if whole + s <= DECIMAL128_DIGITS else pa.string()


def parquet_schema(scales: Any) -> pa.Schema:
    fields = []
    for name, kind, _ in EXPORT_COLUMNS:
        if kind == "usd":
            t = _usd_type(scales[f"{name}_scale"], scales[f"{name}_max"])
        else:
            t = _ARROW[kind]
        fields.append(pa.field(name, t))
    return pa.schema(fields)


def _column(values: tuple[Any, ...], t: pa.DataType) -> pa.Array:
    if pa.types.is_string(t) and any(isinstance(v, Decimal) for v in values):
        values = tuple(None if v is None else format(v, "f") for v in values)
    return pa.array(values, type=t)


async def _parquet(db: Database, where: LiquidationWhere) -> AsyncGenerator[bytes, None]:
    scales = await db.fetchrow(queries.liquidations_export_scales(where))
    arrow_schema = parquet_schema(scales)
    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), arrow_schema)
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    try:
        async for rows in _batches(db, queries.liquidations_export(where, as_text=False)):
            columns = list(zip(*rows, strict=True))
            arrays = [_column(c, f.type) for c, f in zip(columns, arrow_schema, strict=True)]
            pending.append(pa.RecordBatch.from_arrays(arrays, schema=arrow_schema))
            pending_rows += len(rows)
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending), row_group_size=pending_rows)
                pending, pending_rows = [], 0
                yield sink.take()
        if pending:
            writer.write_table(pa.Table.from_batches(pending), row_group_size=pending_rows)
    finally:
        writer.close()
    yield sink.take()


# -- the endpoints ---------------------------------------------------------------------

Encoder = Callable[[Database, LiquidationWhere], AsyncGenerator[bytes, None]]


async def _stream(
    db: Database, gate: asyncio.Semaphore, encode: Encoder, where: LiquidationWhere
) -> AsyncGenerator[bytes, None]:
    """The file, a chunk at a time, holding one of the export slots throughout."""
    if gate.locked():
        raise ExportError(
            f"{MAX_CONCURRENT_EXPORTS} exports are running in this process; retry shortly",
            429,
            "LIMIT_EXCEEDED",
        )
    async with gate:
        chunks = encode(db, where)
        try:
            async for chunk in chunks:
                yield chunk
        except ApiError as exc:
            status = 503 if exc.code in (UNAVAILABLE, TIMEOUT) else 400
            raise ExportError(exc.message, status, exc.code) from exc
        finally:
            await chunks.aclose()


async def _export(
    request: Request, db: Database, gate: asyncio.Semaphore, encode: Encoder, media: str, ext: str
) -> Response:
    try:
        where = where_from_params(request.query_params)
    except ExportError as exc:
        return _error(exc)
    stream = _stream(db, gate, encode, where)
    try:
        first = await anext(stream, b"")  # database trouble is a status, not a cut file
    except ExportError as exc:
        return _error(exc)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in stream:
                yield chunk
        except Exception:
            log.exception("export of liquidations.%s cut short", ext)
            raise
        finally:
            await stream.aclose()

    headers = {
        "Content-Disposition": f'attachment; filename="liquidations.{ext}"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(body(), media_type=media, headers=headers)


def export_routes(db: Database) -> list[Route]:
    gate = asyncio.Semaphore(MAX_CONCURRENT_EXPORTS)

    async def export_csv(request: Request) -> Response:
        return await _export(request, db, gate, _csv, "text/csv; charset=utf-8", "csv")

    async def export_parquet(request: Request) -> Response:
        media = "application/vnd.apache.parquet"
        return await _export(request, db, gate, _parquet, media, "parquet")

    return [
        Route("/export/liquidations.csv", export_csv, methods=["GET"]),
        Route("/export/liquidations.parquet", export_parquet, methods=["GET"]),
    ]
