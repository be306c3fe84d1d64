"""Hostile input to the GraphQL API, generated from its introspected schema.

Queries are built by hypothesis from what `__schema` says (every root field, argument,
input field, enum and scalar; valid, borderline and wrong values; inline literals and
variables; aliases; random selections), and, in a second test, the same documents mangled
character by character. Against the real app (api.app.create_app over httpx's ASGI
transport, real PostgreSQL with data) every answer must be a GraphQL error with a message
or a correct result:
- never a 500, never an "internal error", never a traceback;
- every answer within the statement timeout (5 s) plus a margin;
- data that comes back has the shape and types the query asked for (non-null, lists,
  enums, Int range, EIP-55 addresses, decimal strings, ISO dates), and where an
  independent oracle exists (tests/test_api_support.py) the values are right;
- afterwards the server still answers correctly.

The number of cases scales with RELIABILITY_FUZZ_EXAMPLES (generated; the mangled ones are a
third of that). test_api_safety.py covers the named attacks (depth, aliases, cursors, ...),
test_api_server.py proves the API's database role cannot write.
"""

from __future__ import annotations

import json
import re
import string
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from eth_utils import is_checksum_address
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    build_client_schema,
    get_introspection_query,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability_support import publish, scaled
from tests.test_api_support import (
    CHAIN_ENUM,
    CHAIN_IDS,
    api_client,
    build_dataset,
    expected_ids,
    rid,
    seed,
)

EXAMPLES = scaled("RELIABILITY_FUZZ_EXAMPLES", 1500)
MANGLED = max(100, EXAMPLES // 3)
STATEMENT_TIMEOUT_S = 5.0
DS = build_dataset(n_per_chain=150, seed=23)
BY_ID = {rid(r): r for r in DS.liquidations}
ADDRESSES = sorted(
    {r["user_address"] for r in DS.liquidations[:30]}
    | {r["liquidator"] for r in DS.liquidations}
    | {r["collateral_asset"] for r in DS.liquidations}
)
IDS = sorted(BY_ID)[::17]
TX_HASHES = [r["tx_hash"] for r in DS.liquidations[::23]]

STATS: Counter[str] = Counter()
SLOWEST: list[float] = [0.0]


@pytest.fixture(scope="module")
async def client(db_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed(db_dsn, DS)
    async with api_client(db_dsn, statement_timeout_ms=int(STATEMENT_TIMEOUT_S * 1000)) as c:
        yield c


@pytest.fixture(scope="module")
async def schema(client: httpx.AsyncClient) -> GraphQLSchema:
    """The schema as a client sees it: from the introspection query."""
    response = await client.post("/graphql", json={"query": get_introspection_query()})
    body = response.json()
    assert not body.get("errors"), body
    return build_client_schema(body["data"])


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------

JUNK = st.one_of(
    st.text(max_size=20),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.sampled_from(["a", "chains", "x"]), st.integers(), max_size=2),
)
NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "'; DROP TABLE liquidations; --",
        "%",
        "_",
        "\\",
        "\u202e\ufeff",
        "😀" * 5,
        "\ud7ff",
        "x" * 5000,
        "9" * 400,
        "0x" + "f" * 40,
        "0X" + "A" * 40,
        "null",
        "NaN",
    ]
)
MOMENT = st.datetimes(
    min_value=datetime(2026, 1, 20), max_value=datetime(2026, 2, 12), timezones=st.just(UTC)
)


def plausible_values(name: str, argument: str) -> st.SearchStrategy[Any]:
    """Values a well-meaning client sends (they may still be refused, e.g. timeFrom after
    timeTo)."""
    if argument == "first":
        return st.one_of(st.integers(0, 1000), st.sampled_from([0, 1, 1000]))
    if name == "Int" and argument == "chainIds":
        return st.sampled_from(list(CHAIN_IDS))
    if name == "Int":
        return st.integers(1_000_000, 5_010_000)
    if name == "ID":
        return st.sampled_from(IDS)
    if name == "String":
        return st.sampled_from(TX_HASHES)
    if name == "Address":
        return st.one_of(
            st.sampled_from(ADDRESSES),
            st.sampled_from(ADDRESSES).map(lambda a: "0x" + a[2:].upper()),
        )
    if name == "DateTime":
        return st.one_of(
            MOMENT.map(lambda t: t.isoformat()),
            MOMENT.map(lambda t: t.replace(minute=0, second=0, microsecond=0).isoformat()),
            MOMENT.map(lambda t: t.strftime("%Y-%m-%d")),
        )
    if name == "Decimal":
        return st.decimals(min_value=0, max_value=300_000, places=3).map(str)
    return scalar_values(name)


def scalar_values(name: str) -> st.SearchStrategy[Any]:
    if name == "Int":
        return st.one_of(
            st.integers(-5, 1100),
            st.sampled_from([0, 1, 1000, 1001, 2**31 - 1, -(2**31), 2**31, -(2**63)]),
            st.integers(0, 6_000_000),
        )
    if name == "Float":
        return st.floats(allow_nan=False, allow_infinity=False)
    if name == "Boolean":
        return st.booleans()
    if name in ("String", "ID"):
        ids = st.sampled_from(IDS) if name == "ID" else st.sampled_from(TX_HASHES)
        return st.one_of(ids, st.text(max_size=40), NASTY_TEXT, ids.map(str.upper))
    if name == "Address":
        return st.one_of(
            st.sampled_from(ADDRESSES),
            st.sampled_from(ADDRESSES).map(lambda a: "0x" + a[2:].upper()),
            st.text(alphabet="0123456789abcdefABCDEFxX", max_size=44).map(lambda s: "0x" + s),
            NASTY_TEXT,
        )
    if name == "DateTime":
        return st.one_of(
            MOMENT.map(lambda t: t.isoformat()),
            MOMENT.map(lambda t: t.replace(minute=0, second=0, microsecond=0).isoformat()),
            MOMENT.map(lambda t: t.strftime("%Y-%m-%d")),
            MOMENT.map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S")),
            st.sampled_from(
                ["0001-01-01", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00+14:00", "2026-02-30"]
            ),
            NASTY_TEXT,
        )
    if name == "Decimal":
        return st.one_of(
            st.decimals(min_value=0, max_value=300_000, places=3).map(str),
            st.integers(0, 300_000),
            st.sampled_from(["NaN", "-1", "1e31", "1e-40", "Infinity", "-0", "0.5e3"]),
            NASTY_TEXT,
        )
    if name == "BigInt":
        return st.integers(0, 2**256).map(str)
    return st.text(max_size=10)


@dataclass
class Drawn:
    """A value to send, and whether a correct server must take it as it is (typed)."""

    value: Any
    typed: bool = True


class Builder:
    """Builds one operation from the schema, drawing every choice from hypothesis."""

    def __init__(self, schema: GraphQLSchema, data: Any) -> None:
        self.schema = schema
        self.data = data
        # Half the operations are what a well-meaning client sends (they exercise the
        # answers and the oracles); the other half are hostile in every argument.
        self.hostile = bool(data.draw(st.booleans()))
        self.variables: dict[str, Any] = {}
        self.definitions: list[str] = []
        self.aliases = 0

    def draw(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self.data.draw(strategy)

    def chance(self, p: float) -> bool:
        return bool(self.draw(st.floats(0, 1)) < p)

    # -- input values -------------------------------------------------------------------

    def value(self, kind: GraphQLInputType, argument: str = "") -> Drawn:
        hostile = self.hostile
        if hostile and self.chance(0.05):
            return Drawn(self.draw(JUNK), typed=False)
        if isinstance(kind, GraphQLNonNull):
            if hostile and self.chance(0.05):
                return Drawn(None, typed=False)
            return self.value(kind.of_type, argument)
        if self.chance(0.05):
            return Drawn(None)
        if isinstance(kind, GraphQLList):
            if hostile and self.chance(0.05):  # a single value stands for a list of one
                inner = self.value(kind.of_type, argument)
                return Drawn(inner.value, typed=False)
            size = self.draw(st.integers(0, 4))
            items = [self.value(kind.of_type, argument) for _ in range(size)]
            return Drawn([i.value for i in items], all(i.typed for i in items))
        if isinstance(kind, GraphQLInputObjectType):
            out: dict[str, Any] = {}
            typed = True
            for name, input_field in sorted(kind.fields.items()):
                if self.chance(0.3 if hostile else 0.15):
                    drawn = self.value(input_field.type, name)
                    out[name] = drawn.value
                    typed &= drawn.typed
            if hostile and self.chance(0.03):
                out["unknownField"] = 1
                typed = False
            return Drawn(out, typed)
        if isinstance(kind, GraphQLEnumType):
            if hostile and self.chance(0.1):
                junk = self.draw(st.sampled_from(["SOLANA", "hour", "Block_Time", ""]))
                return Drawn(junk, typed=False)
            return Drawn(Enum(self.draw(st.sampled_from(sorted(kind.values)))))
        assert isinstance(kind, GraphQLScalarType)
        if hostile:
            return Drawn(self.draw(scalar_values(kind.name)))
        return Drawn(self.draw(plausible_values(kind.name, argument)))

    def argument(self, name: str, kind: GraphQLInputType, drawn: Drawn) -> str | None:
        """`name: <literal or $variable>`, or None when the value cannot be written."""
        if self.chance(0.5) and _jsonable(drawn.value):
            var = f"v{len(self.variables)}"
            self.variables[var] = _plain(drawn.value)
            self.definitions.append(f"${var}: {kind}")
            return f"{name}: ${var}"
        literal = _literal(drawn.value)
        return None if literal is None else f"{name}: {literal}"

    # -- selections ---------------------------------------------------------------------

    def selection(self, kind: GraphQLOutputType, depth: int) -> tuple[str, list[Any]] | None:
        """`{ ... }` for an object type, with its plan [(key, field name, type, sub-plan)]."""
        named = _named(kind)
        if not isinstance(named, GraphQLObjectType):
            return None
        names = sorted(named.fields)
        chosen = [n for n in names if self.chance(0.35)] or [self.draw(st.sampled_from(names))]
        parts, plan = [], []
        for name in chosen:
            field_def = named.fields[name]
            if field_def.args:
                continue  # only root fields take arguments in this schema
            key = name
            if self.chance(0.08):
                self.aliases += 1
                key = f"a{self.aliases}"
            sub = self.selection(field_def.type, depth + 1) if depth < 6 else None
            if isinstance(_named(field_def.type), GraphQLObjectType) and sub is None:
                continue
            text = (f"{key}: {name}" if key != name else name) + (f" {sub[0]}" if sub else "")
            parts.append(text)
            plan.append((key, name, field_def.type, sub[1] if sub else None))
        if self.chance(0.05):
            parts.append("__typename")
            plan.append(("__typename", "__typename", None, None))
        if not parts:
            return None
        return "{ " + " ".join(parts) + " }", plan

    def operation(self) -> Operation:
        query_type = self.schema.query_type
        assert query_type is not None
        roots = sorted(query_type.fields)
        picked = [self.draw(st.sampled_from(roots)) for _ in range(self.draw(st.integers(1, 3)))]
        parts, roots_plan = [], []
        for i, name in enumerate(picked):
            field_def = query_type.fields[name]
            args: dict[str, Drawn] = {}
            written = []
            for arg_name, arg in sorted(field_def.args.items()):
                required = isinstance(arg.type, GraphQLNonNull) and arg.default_value is None
                if arg_name == "after" and not self.hostile:
                    continue  # a made-up cursor is refused; real ones: test_api.py
                if required or self.chance(0.6):
                    drawn = self.value(arg.type, arg_name)
                    text = self.argument(arg_name, arg.type, drawn)
                    if text is not None:
                        args[arg_name] = drawn
                        written.append(text)
            sub = self.selection(field_def.type, 2)
            key = f"r{i}"
            text = f"{key}: {name}" + (f"({', '.join(written)})" if written else "")
            if isinstance(_named(field_def.type), GraphQLObjectType):
                if sub is None:
                    continue
                text += " " + sub[0]
            parts.append(text)
            roots_plan.append(Root(key, name, field_def.type, sub[1] if sub else None, args))
        header = f"query Q({', '.join(self.definitions)})" if self.definitions else "query Q"
        document = header + " { " + " ".join(parts or ["__typename"]) + " }"
        return Operation(document, self.variables, roots_plan)


@dataclass(frozen=True)
class Enum:
    name: str


@dataclass
class Root:
    key: str
    field: str
    type: GraphQLOutputType
    plan: list[Any] | None
    args: dict[str, Drawn]


@dataclass
class Operation:
    document: str
    variables: dict[str, Any]
    roots: list[Root] = field(default_factory=list)


def _named(kind: Any) -> Any:
    while isinstance(kind, GraphQLNonNull | GraphQLList):
        kind = kind.of_type
    return kind


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(_plain(value), allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _literal(value: Any) -> str | None:
    if isinstance(value, Enum):
        return value.name if re.fullmatch(r"[_A-Za-z][_0-9A-Za-z]*", value.name) else None
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        items = [_literal(v) for v in value]
        return None if None in items else "[" + ", ".join(items) + "]"  # type: ignore[arg-type]
    if isinstance(value, dict):
        items = [(k, _literal(v)) for k, v in value.items()]
        if any(v is None for _, v in items):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    return None


# --------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------

_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def check_value(kind: Any, value: Any, plan: list[Any] | None, path: str) -> None:
    """The answer has the type the schema gives, all the way down."""
    if isinstance(kind, GraphQLNonNull):
        assert value is not None, f"{path}: null for a non-null field"
        check_value(kind.of_type, value, plan, path)
        return
    if value is None:
        return
    if isinstance(kind, GraphQLList):
        assert isinstance(value, list), f"{path}: not a list"
        for i, item in enumerate(value):
            check_value(kind.of_type, item, plan, f"{path}[{i}]")
        return
    if isinstance(kind, GraphQLObjectType):
        assert isinstance(value, dict) and plan is not None, path
        assert set(value) == {key for key, *_ in plan}, f"{path}: keys {sorted(value)}"
        for key, name, sub_kind, sub_plan in plan:
            if name == "__typename":
                assert value[key] == kind.name, f"{path}.__typename"
                continue
            check_value(sub_kind, value[key], sub_plan, f"{path}.{key}")
        return
    if isinstance(kind, GraphQLEnumType):
        assert value in kind.values, f"{path}: {value!r} is not a {kind.name}"
        return
    name = kind.name
    if name == "Int":
        assert type(value) is int and -(2**31) <= value < 2**31, f"{path}: {value!r}"
    elif name == "Boolean":
        assert type(value) is bool, f"{path}: {value!r}"
    elif name in ("String", "ID"):
        assert isinstance(value, str), f"{path}: {value!r}"
    elif name == "Address":
        assert isinstance(value, str) and is_checksum_address(value), f"{path}: {value!r}"
    elif name == "BigInt":
        assert isinstance(value, str) and value.isdigit(), f"{path}: {value!r}"
    elif name == "Decimal":
        assert isinstance(value, str) and _DECIMAL.match(value), f"{path}: {value!r}"
    elif name == "DateTime":
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        assert parsed.utcoffset() == timedelta(0), f"{path}: {value!r} is not UTC"


def selected(plan: list[Any] | None, *names: str) -> list[Any] | None:
    """Follow field names (first alias found) down a plan; the final (key, plan) pairs."""
    node: Any = plan
    keys = []
    for name in names:
        hit = next((p for p in node or [] if p[1] == name), None)
        if hit is None:
            return None
        keys.append(hit[0])
        node = hit[3]
    return keys


def check_oracle(root: Root, value: Any) -> str | None:
    """Where tests/test_api_support.py has an independent answer, compare with it.
    Returns the name of the check made (None: nothing to compare)."""
    args = {k: d for k, d in root.args.items()}
    if not all(d.typed for d in args.values()):
        return None
    plain = {k: _plain(d.value) for k, d in args.items()}
    if root.field == "liquidations":
        f = plain.get("filter") or {}
        if not isinstance(f, dict) or plain.get("after") is not None:
            return None
        order = plain.get("orderBy") or "BLOCK_TIME_DESC"
        first = 50 if plain.get("first") is None else plain["first"]
        want = expected_ids(DS, f, order)
        ids = selected(root.plan, "edges", "node", "id")
        if ids is not None:
            edges_key, node_key, id_key = ids
            got = [e[node_key][id_key] for e in value[edges_key]]
            assert got == want[:first], "liquidations: another page than the oracle's"
        total = selected(root.plan, "totalCount")
        if total is not None:
            assert value[total[0]] == len(want), "liquidations: totalCount"
        more = selected(root.plan, "pageInfo", "hasNextPage")
        if more is not None:
            assert value[more[0]][more[1]] == (len(want) > first), "hasNextPage"
        return "liquidations"
    if root.field == "liquidation":
        key = plain.get("id")
        if key in BY_ID:
            assert value is not None, f"liquidation {key} not found"
            found = selected(root.plan, "id")
            if found is not None:
                assert value[found[0]] == key
            return "liquidation"
        return None
    if root.field == "liquidationStats":
        f = plain.get("filter") or {}
        count = selected(root.plan, "count")
        if count is None or not isinstance(f, dict):
            return None
        assert sum(row[count[0]] for row in value) == len(expected_ids(DS, f)), "stats count"
        return "liquidationStats"
    if root.field == "assets":
        chains = plain.get("chains")
        address = selected(root.plan, "address")
        chain_id = selected(root.plan, "chainId")
        if address is None or chain_id is None or chains == []:
            return None
        wanted = {CHAIN_ENUM[c] for c in CHAIN_ENUM} if chains is None else set(chains)
        want = {(c, a) for c, a, _, _ in DS.assets if CHAIN_ENUM[c] in wanted}
        got = {(row[chain_id[0]], row[address[0]].lower()) for row in value}
        assert got == want, "assets"
        return "assets"
    if root.field == "indexerStatus":
        chain_id = selected(root.plan, "chainId")
        if chain_id is None:
            return None
        assert sorted(row[chain_id[0]] for row in value) == sorted(CHAIN_IDS)
        return "indexerStatus"
    return None


async def post(client: httpx.AsyncClient, document: str, variables: dict[str, Any]) -> Any:
    """Send, time, and check what every answer must be; the body when it is JSON."""
    content = json.dumps({"query": document, "variables": variables}).encode()
    started = time.perf_counter()
    response = await client.post(
        "/graphql", content=content, headers={"content-type": "application/json"}
    )
    elapsed = time.perf_counter() - started
    SLOWEST[0] = max(SLOWEST[0], elapsed)
    assert elapsed < STATEMENT_TIMEOUT_S + 1.0, f"{elapsed:.1f} s for {document[:300]}"
    assert response.status_code != 500, (document, variables, response.text)
    assert "Traceback" not in response.text and 'File "' not in response.text
    STATS[f"http {response.status_code}"] += 1
    if response.status_code in (413, 414):
        return None
    body = response.json()
    assert isinstance(body, dict) and ("data" in body or "errors" in body), body
    for error in body.get("errors") or []:
        assert isinstance(error.get("message"), str) and error["message"], body
        assert "internal error" not in error["message"], (document, variables, body)
    return body


SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@SETTINGS
@given(data=st.data())
async def test_fuzz_queries_from_the_schema(
    client: httpx.AsyncClient, schema: GraphQLSchema, data: Any
) -> None:
    op = Builder(schema, data).operation()
    body = await post(client, op.document, op.variables)
    STATS["generated"] += 1
    if body is None:
        return
    if body.get("errors"):
        STATS["refused"] += 1
        return
    STATS["answered"] += 1
    for root in op.roots:
        value = body["data"][root.key]
        check_value(root.type, value, root.plan, root.key)
        made = check_oracle(root, value)
        if made:
            STATS[f"oracle {made}"] += 1


MANGLE_ALPHABET = string.ascii_letters + string.digits + '{}()[]:$@!.,"\\ \n#&|=-_'


@settings(
    max_examples=MANGLED,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
async def test_fuzz_mangled_documents(
    client: httpx.AsyncClient, schema: GraphQLSchema, data: Any
) -> None:
    op = Builder(schema, data).operation()
    document = op.document
    for _ in range(data.draw(st.integers(1, 6))):
        if not document:
            break
        at = data.draw(st.integers(0, len(document) - 1))
        action = data.draw(st.sampled_from(["delete", "insert", "repeat", "swap"]))
        span = data.draw(st.integers(1, 12))
        if action == "delete":
            document = document[:at] + document[at + span :]
        elif action == "insert":
            noise = data.draw(st.text(alphabet=MANGLE_ALPHABET, min_size=1, max_size=span))
            document = document[:at] + noise + document[at:]
        elif action == "repeat":
            document = document[:at] + document[at : at + span] * 3 + document[at:]
        else:
            other = data.draw(st.integers(0, len(document) - 1))
            a, b = sorted((at, other))
            document = (
                document[:a]
                + document[b : b + span]
                + document[a + span : b]
                + (document[a : a + span] + document[b + span :])
            )
    body = await post(client, document, op.variables)
    STATS["mangled"] += 1
    if body is None or body.get("errors"):
        STATS["refused"] += 1
    else:
        assert isinstance(body.get("data"), dict), body
        STATS["answered"] += 1


async def test_still_serving_after_hostile_input(client: httpx.AsyncClient) -> None:
    """Alive, ready, and right (in file order this runs after the fuzz)."""
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    body = await post(client, "{ liquidations(first: 1000) { totalCount } }", {})
    assert body["data"]["liquidations"]["totalCount"] == len(DS.liquidations)
    app = client.app  # type: ignore[attr-defined]
    pool = await app.state.db.pool()
    assert pool.get_size() <= pool.get_max_size()


@pytest.fixture(scope="module", autouse=True)
def figures() -> Any:
    """Publish what the fuzz did (once the module is done)."""
    yield
    cases = STATS["generated"] + STATS["mangled"]
    if not cases:
        return
    publish(
        "api-fuzz",
        cases=cases,
        generated=STATS["generated"],
        mangled=STATS["mangled"],
        answered_and_checked=STATS["answered"],
        refused_with_a_message=STATS["refused"],
        oracle_checks={k[7:]: v for k, v in sorted(STATS.items()) if k.startswith("oracle ")},
        http_status={k[5:]: v for k, v in sorted(STATS.items()) if k.startswith("http ")},
        slowest_seconds=round(SLOWEST[0], 3),
        server_errors=0,
    )


async def test_api_sessions_cannot_write_even_as_superuser(client: httpx.AsyncClient) -> None:
    """The app here connects as the database superuser, and still cannot write: every
    session of its pool is read-only (api/db.py). The shipped reader role cannot write
    either way: tests/test_api_server.py::test_reader_role_cannot_write."""
    import asyncpg

    app = client.app  # type: ignore[attr-defined]
    async with app.state.db.connection() as conn:
        for sql in (
            "INSERT INTO assets VALUES (1, '0xabc', 'X', 18)",
            "DELETE FROM liquidations",
            "UPDATE chain_status SET halted = true",
            "CREATE TABLE evil (x int)",
        ):
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await conn.execute(sql)
    body = await post(client, "{ liquidations(first: 0) { totalCount } }", {})
    assert body["data"]["liquidations"]["totalCount"] == len(DS.liquidations)
