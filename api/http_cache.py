"""HTTP caching in front of the GraphQL view: GET and POST alike, persisted queries, an
ETag per answer, 304 on a matching If-None-Match, Cache-Control by how settled the asked-for
data is, and an in-process cache of answers.

An answer is a function of the request (document, variables, operation name) and of the
database's state, which `api.heads` names with a version; so the ETag is a digest of both
(the same in every process behind one address), a 304 is decided before anything runs, and
cached answers are keyed by the version too: the first request after a chain advances or
rolls back (once its heads are read again, at most `heads_ttl_s` later) misses.

Cache-Control: `public, max-age=<settled_max_age_s>, immutable` when every root field is
liquidations / liquidationStats / svrRevenue with an upper bound (blockTo, or timeTo) at or
below the settled part (finalized and indexed) of every chain the filter names (all chains
when it names none); otherwise `public, max-age=<tip_max_age_s>`. Answers with errors, and
anything that is not a query, get `no-store` and are never kept.

Requests this layer does not understand (GraphiQL, a body that is not a JSON object,
streaming transports, WebSockets) go to the view unchanged.

A repeated request (the same method, content type and body, or the same query string) is
answered from its bytes alone: once answered from the cache, the raw request maps to the
answer's body and ready header lists (200 and 304), valid while the heads' version is the one
it was made for. A dashboard polling one view then costs a dict lookup: no JSON parsing, no
key or ETag digest, no GraphQL. Requests carrying a persisted-query extension take the full
path every time (the persisted store must see them).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
    value_from_ast_untyped,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.db import Database
from api.enums import CHAIN_ID, Chain
from api.errors import ApiError
from api.heads import Heads, HeadsClock
from api.limits import MAX_CACHED_QUERY_CHARS, MAX_TOKENS
from api.persisted import (
    NOT_FOUND,
    NOT_FOUND_CODE,
    PersistedQueries,
    PersistedQueryError,
    persisted_ref,
)

log = logging.getLogger("api.http_cache")

NO_STORE = "no-store"
# Root fields whose answer can no longer change once their bounds are settled. A
# liquidation's leadSeconds / leadBlocks read the SVR round's public twin, which may lie
# beyond the bound: a document that asks for them is never long-lived.
SETTLEABLE_FIELDS = frozenset({"liquidations", "liquidationStats", "svrRevenue"})
UNSETTLEABLE_WORDS = ("leadSeconds", "leadBlocks")
STREAMING_ACCEPT = ("text/event-stream", "multipart/mixed")


@dataclass(frozen=True)
class CacheSettings:
    heads_ttl_s: float = 0.2
    tip_max_age_s: int = 2
    settled_max_age_s: int = 86_400
    max_entries: int = 2000
    max_bytes: int = 64 * 1024 * 1024
    max_entry_bytes: int = 4 * 1024 * 1024
    persisted_max_entries: int = 5000


@dataclass(frozen=True)
class Answer:
    body: bytes
    etag: str
    cache_control: str


RawKey = tuple[bytes, ...]
# Raw requests longer than this are not indexed (a query is at most MAX_CACHED_QUERY_CHARS).
MAX_RAW_KEY_BYTES = 32 * 1024


@dataclass(frozen=True)
class Hit:
    """A raw request's answer, ready to send: valid while `version` is current."""

    reads_status: bool
    version: str
    etag: str
    body: bytes
    headers: list[tuple[bytes, bytes]]  # of the 200, content-length included
    not_modified: list[tuple[bytes, bytes]]  # of the 304


class ResponseCache:
    """(version, document, variables, operation) -> Answer; least recently used out past
    `max_entries` or `max_bytes`. A new data version empties it (every key is dead).
    Beside it, raw request -> Hit for repeated requests (see the module's docstring),
    bounded by `max_entries` too; its bodies are the answers' own bytes."""

    def __init__(self, settings: CacheSettings) -> None:
        self.settings = settings
        self._entries: OrderedDict[tuple[str, ...], Answer] = OrderedDict()
        self._raw: OrderedDict[RawKey, Hit] = OrderedDict()
        self._bytes = 0
        self._data_version = ""
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def see(self, heads: Heads) -> None:
        if heads.data != self._data_version:
            self._entries.clear()
            self._raw.clear()
            self._bytes = 0
            self._data_version = heads.data

    def raw_get(self, key: RawKey, heads: Heads) -> Hit | None:
        hit = self._raw.get(key)
        if hit is None or hit.version != heads.version(hit.reads_status):
            return None
        self.hits += 1
        self._raw.move_to_end(key)
        return hit

    def raw_put(self, key: RawKey, hit: Hit) -> None:
        if self.settings.max_entries <= 0 or sum(map(len, key)) > MAX_RAW_KEY_BYTES:
            return
        self._raw[key] = hit
        self._raw.move_to_end(key)
        while len(self._raw) > self.settings.max_entries:
            self._raw.popitem(last=False)

    def get(self, key: tuple[str, ...]) -> Answer | None:
        answer = self._entries.get(key)
        if answer is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return answer

    def put(self, key: tuple[str, ...], answer: Answer) -> None:
        size = len(answer.body)
        if size > self.settings.max_entry_bytes or key in self._entries:
            return
        self._entries[key] = answer
        self._bytes += size
        while (
            len(self._entries) > self.settings.max_entries or self._bytes > self.settings.max_bytes
        ):
            _, old = self._entries.popitem(last=False)
            self._bytes -= len(old.body)


class _ParseCache:
    """Parsed documents per text (None: does not parse), to tell the operation's kind and
    read its arguments; the view parses again through its own cache."""

    def __init__(self, maxsize: int = 512) -> None:
        self.maxsize = maxsize
        self._docs: OrderedDict[str, DocumentNode | None] = OrderedDict()

    def parse(self, query: str) -> DocumentNode | None:
        if query in self._docs:
            self._docs.move_to_end(query)
            return self._docs[query]
        try:
            doc: DocumentNode | None = parse(query, no_location=True, max_tokens=MAX_TOKENS)
        except (GraphQLError, RecursionError):
            doc = None
        if len(query) <= MAX_CACHED_QUERY_CHARS:
            self._docs[query] = doc
            if len(self._docs) > self.maxsize:
                self._docs.popitem(last=False)
        return doc


def operation_of(doc: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation a request runs: the named one, else the only one."""
    ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return ops[0] if len(ops) == 1 else None
    return next((op for op in ops if op.name is not None and op.name.value == name), None)


def _root_fields(
    node: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], seen: frozenset[str]
) -> Iterator[FieldNode | None]:
    """The root fields, through fragments; None for a fragment that cannot be followed."""
    for sel in node.selections:
        if isinstance(sel, FieldNode):
            yield sel
        elif isinstance(sel, InlineFragmentNode):
            yield from _root_fields(sel.selection_set, fragments, seen)
        elif isinstance(sel, FragmentSpreadNode):
            frag = fragments.get(sel.name.value)
            if frag is None or sel.name.value in seen:
                yield None
            else:
                yield from _root_fields(frag.selection_set, fragments, seen | {sel.name.value})


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _chains(f: dict[str, Any], heads: Heads) -> set[int] | None:
    """The chain ids a filter names (every chain with a status row when it names none);
    None when it names something this cannot read."""
    chains, chain_ids = f.get("chains"), f.get("chainIds")
    if chains is None and chain_ids is None:
        return set(heads.settled)
    found: set[int] = set()
    for name in chains if isinstance(chains, list) else [chains] if chains else []:
        if not isinstance(name, str) or name not in Chain.__members__:
            return None
        found.add(CHAIN_ID[Chain[name]])
    for cid in chain_ids if isinstance(chain_ids, list) else [chain_ids] if chain_ids else []:
        if not isinstance(cid, int) or isinstance(cid, bool):
            return None
        found.add(cid)
    return found


def _bounded(f: object, heads: Heads) -> bool:
    """True when the filter's upper bound is settled on every chain it covers."""
    if not isinstance(f, dict):
        return False
    chains = _chains(f, heads)
    if chains is None:
        return False
    block_to, time_to = f.get("blockTo"), _time(f.get("timeTo"))
    if not isinstance(block_to, int) or isinstance(block_to, bool):
        block_to = None
    if block_to is None and time_to is None:
        return False
    for cid in chains:
        s = heads.settled.get(cid)
        if s is None:
            return False
        by_block = block_to is not None and s.block is not None and block_to <= s.block
        by_time = time_to is not None and s.time is not None and time_to <= s.time
        if not (by_block or by_time):
            return False
    return True


def is_settled(
    query: str,
    doc: DocumentNode,
    op: OperationDefinitionNode,
    variables: dict[str, Any] | None,
    heads: Heads,
) -> bool:
    """Whether the answer can no longer change (see the module's docstring)."""
    if any(word in query for word in UNSETTLEABLE_WORDS):
        return False
    fragments = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    any_field = False
    for field in _root_fields(op.selection_set, fragments, frozenset()):
        if field is None:
            return False
        name = field.name.value
        if name == "__typename":
            continue
        if name not in SETTLEABLE_FIELDS:
            return False
        arg = next((a for a in field.arguments or () if a.name.value == "filter"), None)
        if arg is None:
            return False
        try:
            value = value_from_ast_untyped(arg.value, variables)
        except (ValueError, TypeError, ArithmeticError):
            return False
        if not _bounded(value, heads):
            return False
        any_field = True
    return any_field


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class _Request:
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


def _json_param(params: dict[str, str], name: str) -> Any:
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise HttpError(400, f"the {name} parameter is not valid JSON") from None


def _checked(data: dict[str, Any]) -> _Request:
    query, variables = data.get("query"), data.get("variables")
    name, extensions = data.get("operationName"), data.get("extensions")
    if not isinstance(query, str | None):
        raise HttpError(400, "query must be a string")
    if not isinstance(variables, dict | None):
        raise HttpError(400, "variables must be a JSON object")
    if not isinstance(name, str | None):
        raise HttpError(400, "operationName must be a string")
    if not isinstance(extensions, dict | None):
        raise HttpError(400, "extensions must be a JSON object")
    return _Request(query, variables, name, extensions)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    raw = [(b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _send_json(
    send: Send, status: int, data: object, extra: dict[str, str] | None = None
) -> None:
    headers = [(b"content-type", b"application/json"), (b"cache-control", NO_STORE.encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await _send(send, status, orjson.dumps(data), headers)


class HttpGraphQL:
    """The ASGI app at /graphql: this layer, then the Strawberry view."""

    def __init__(self, view: ASGIApp, db: Database, settings: CacheSettings | None = None) -> None:
        self.view = view
        self.settings = settings or CacheSettings()
        self.clock = HeadsClock(db, self.settings.heads_ttl_s)
        self.cache = ResponseCache(self.settings)
        self.persisted = PersistedQueries(self.settings.persisted_max_entries)
        self._parsed = _ParseCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        accept = _header(scope, b"accept") or ""
        if (
            scope["type"] != "http"
            or method not in ("GET", "POST")
            or any(kind in accept for kind in STREAMING_ACCEPT)
        ):
            await self.view(scope, receive, send)
            return
        body = b""
        if method == "POST":
            body = await _read_body(receive)
            raw: RawKey = (b"POST", (_header(scope, b"content-type") or "").encode(), body)
        else:
            raw = (b"GET", scope.get("query_string", b""))
        if self.cache._raw and await self._repeat(scope, send, raw):
            return
        try:
            request = self._read(scope, body)
            if request is None:
                await self.view(scope, _replay(body, receive), send)
                return
            await self._answer(scope, receive, send, request, raw)
        except HttpError as exc:
            await _send_json(send, exc.status, {"errors": [{"message": exc.message}]}, exc.headers)

    async def _repeat(self, scope: Scope, send: Send, raw: RawKey) -> bool:
        """Answer a repeated request from its bytes; False when it is not one."""
        try:
            heads = await self.clock.current()
        except ApiError:
            return False  # the full path says why
        self.cache.see(heads)
        hit = self.cache.raw_get(raw, heads)
        if hit is None:
            return False
        if etag_matches(_header(scope, b"if-none-match"), hit.etag):
            await send({"type": "http.response.start", "status": 304, "headers": hit.not_modified})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.start", "status": 200, "headers": hit.headers})
            await send({"type": "http.response.body", "body": hit.body})
        return True

    def _read(self, scope: Scope, body: bytes) -> _Request | None:
        """The request's parts; None for what the view answers itself."""
        if scope["method"] == "GET":
            try:
                pairs = parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True)
            except (UnicodeDecodeError, ValueError):
                raise HttpError(400, "the query string is not valid UTF-8") from None
            params = dict(pairs)
            if "query" not in params and "extensions" not in params:
                return None  # GraphiQL, or the view's own "no query" answer
            return _checked(
                {
                    "query": params.get("query"),
                    "variables": _json_param(params, "variables"),
                    "operationName": params.get("operationName") or None,
                    "extensions": _json_param(params, "extensions"),
                }
            )
        content_type = _header(scope, b"content-type") or ""
        if "application/json" not in content_type:
            return None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None  # the view says what is wrong with it
        return _checked(data) if isinstance(data, dict) else None

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, req: _Request, raw: RawKey
    ) -> None:
        try:
            ref = persisted_ref(req.extensions)
            if ref is not None:
                req.query = self.persisted.resolve(ref, req.query)
        except PersistedQueryError as exc:
            raise HttpError(400, exc.message) from None
        if req.query is None:
            if ref is not None:
                error = {"message": NOT_FOUND, "extensions": {"code": NOT_FOUND_CODE}}
                await _send_json(send, 200, {"errors": [error]})
                return
            raise HttpError(400, "no GraphQL query in the request")
        doc = self._parsed.parse(req.query)
        op = operation_of(doc, req.operation_name) if doc is not None else None
        if scope["method"] == "GET" and doc is not None:
            kinds = [op.operation] if op is not None else _kinds(doc)
            for kind in kinds:
                if kind is not OperationType.QUERY:
                    raise HttpError(
                        405,
                        f"a {kind.value} cannot be sent with GET, which carries queries only:"
                        " send it with POST",
                        {"Allow": "POST"},
                    )
        inner = _as_post(scope, req)
        if doc is None or op is None or op.operation is not OperationType.QUERY:
            await self._forward(inner, receive, send, None, None)
            return
        try:
            heads = await self.clock.current()
        except ApiError:
            await self._forward(inner, receive, send, None, None)  # the view says why
            return
        self.cache.see(heads)
        variables = orjson.dumps(req.variables, option=orjson.OPT_SORT_KEYS).decode()
        version = heads.version("indexerStatus" in req.query)
        key = (version, req.query, variables, req.operation_name or "")
        etag = '"' + hashlib.sha256("\0".join(key).encode()).hexdigest()[:32] + '"'
        settled = is_settled(req.query, doc, op, req.variables, heads)
        cache_control = (
            f"public, max-age={self.settings.settled_max_age_s}, immutable"
            if settled
            else f"public, max-age={self.settings.tip_max_age_s}"
        )
        headers = [(b"etag", etag.encode()), (b"cache-control", cache_control.encode())]
        if etag_matches(_header(scope, b"if-none-match"), etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        answer = self.cache.get(key)
        if answer is not None:
            if ref is None:
                reads_status = "indexerStatus" in req.query
                self.cache.raw_put(raw, _hit(answer, version, reads_status))
            await _send(send, 200, answer.body, [(b"content-type", b"application/json"), *headers])
            return
        await self._forward(inner, receive, send, key, Answer(b"", etag, cache_control))

    async def _forward(
        self,
        inner: tuple[Scope, bytes],
        receive: Receive,
        send: Send,
        key: tuple[str, ...] | None,
        template: Answer | None,
    ) -> None:
        """Run the view on the request as a JSON POST; keep a clean answer."""
        scope, body = inner
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v)
                    for k, v in message.get("headers", ())
                    if k.lower() not in (b"content-length", b"cache-control", b"etag")
                ]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.view(scope, _replay(body, receive), capture)
        out = b"".join(chunks)
        clean = status == 200 and b'"errors":' not in out
        if clean and template is not None and key is not None:
            self.cache.put(key, Answer(out, template.etag, template.cache_control))
            headers += [
                (b"etag", template.etag.encode()),
                (b"cache-control", template.cache_control.encode()),
            ]
        else:
            headers.append((b"cache-control", NO_STORE.encode()))
        await _send(send, status, out, headers)


def _hit(answer: Answer, version: str, reads_status: bool) -> Hit:
    etag = answer.etag.encode()
    cache_control = answer.cache_control.encode()
    return Hit(
        reads_status=reads_status,
        version=version,
        etag=answer.etag,
        body=answer.body,
        headers=[
            (b"content-length", str(len(answer.body)).encode()),
            (b"content-type", b"application/json"),
            (b"etag", etag),
            (b"cache-control", cache_control),
        ],
        not_modified=[(b"etag", etag), (b"cache-control", cache_control)],
    )


def _kinds(doc: DocumentNode) -> list[OperationType]:
    return [d.operation for d in doc.definitions if isinstance(d, OperationDefinitionNode)]


def _as_post(scope: Scope, req: _Request) -> tuple[Scope, bytes]:
    """The request as the view reads a JSON POST (the persisted-query extension, already
    handled, left out)."""
    extensions = {k: v for k, v in (req.extensions or {}).items() if k != "persistedQuery"}
    payload: dict[str, Any] = {"query": req.query, "variables": req.variables}
    if req.operation_name is not None:
        payload["operationName"] = req.operation_name
    if extensions:
        payload["extensions"] = extensions
    body = orjson.dumps(payload)
    headers = [
        (k, v)
        for k, v in scope.get("headers", ())
        if k not in (b"content-type", b"content-length", b"if-none-match")
    ]
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return {**scope, "method": "POST", "query_string": b"", "headers": headers}, body


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives `body` once, then what the client sends (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def http_graphql(view: ASGIApp, db: Database, settings: CacheSettings | None = None) -> HttpGraphQL:
    return HttpGraphQL(view, db, settings)
