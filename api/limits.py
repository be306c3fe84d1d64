"""Query limits and error masking, as Strawberry schema extensions.

Layers, cheapest first:
1. HTTP body size (api.app): a request body above MAX_BODY_BYTES is refused with 413.
2. MaxTokensLimiter (Strawberry): the parser stops after MAX_TOKENS tokens.
3. QueryLimits (here), before the standard validation rules run: depth, aliases, cost and
   introspection nesting of every operation in the document, in one linear pass (fragments
   are measured once and memoised, so repeating a spread cannot blow the check up). The
   standard validation that follows is cached per query text, as is parsing.
   Strawberry's QueryDepthLimiter and MaxAliasesLimiter are deliberately not used: they
   re-walk a fragment at every spread, so `fragment F1 on Query { ...F2 ...F2 }` nested
   twenty deep costs them seconds; this check refuses such a document in microseconds.
4. Resolvers: page size (first <= 1000), time buckets and grouped rows (<= 10,000), value
   ranges; the statement timeout in the database.

Cost: every field costs 1 (a root field 10, totalCount 1,000); a list multiplies the cost
of what is selected under it by its length: `first` for liquidations edges, 100 for the
rows of liquidationStats / svrRevenue, 10 for other lists. Introspection is allowed, but
inside __schema / __type each of these may appear at most once on a path: types|directives,
fields|inputFields|interfaces|possibleTypes|enumValues, args (the standard introspection
query fits; a `fields { type { fields { ... } } }` fan-out does not).
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from strawberry.extensions import MaxTokensLimiter, ParserCache, SchemaExtension
from strawberry.schema.schema import validate_document

from api.errors import INTERNAL, LIMIT_EXCEEDED, ApiError
from api.metrics import ApiMetrics

log = logging.getLogger("api.errors")

MAX_BODY_BYTES = 64 * 1024
MAX_QUERY_STRING_BYTES = 16 * 1024
MAX_TOKENS = 3000
MAX_DEPTH = 8
MAX_INTROSPECTION_DEPTH = 24
MAX_ALIASES = 15
MAX_COST = 60_000
MAX_FIRST = 1000
DEFAULT_FIRST = 50

ROOT_FIELD_COST = 10
TOTAL_COUNT_COST = 1000
ROWS_ESTIMATE = 100
GROUPED_FIELDS = frozenset({"liquidationStats", "svrRevenue"})
LIST_ESTIMATE = 10

INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
INTROSPECTION_GROUPS: Mapping[str, str] = {
    "types": "types",
    "directives": "types",
    "fields": "members",
    "inputFields": "members",
    "interfaces": "members",
    "possibleTypes": "members",
    "enumValues": "members",
    "args": "args",
}


class LimitError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Measure:
    cost: int
    depth: int  # outside introspection
    aliases: int
    introspection_depth: int = 0


_ZERO = Measure(0, 0, 0)


def _combine(parts: list[Measure]) -> Measure:
    if not parts:
        return _ZERO
    return Measure(
        sum(p.cost for p in parts),
        max(p.depth for p in parts),
        sum(p.aliases for p in parts),
        max(p.introspection_depth for p in parts),
    )


class _Walker:
    """Measures an operation; unknown fields or fragments are left to validation."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.memo: dict[tuple[object, ...], Measure] = {}

    def page_size(self, node: FieldNode) -> int:
        for arg in node.arguments or ():
            if arg.name.value != "first":
                continue
            value: object = None
            if isinstance(arg.value, IntValueNode):
                value = int(arg.value.value)
            elif isinstance(arg.value, VariableNode):
                value = self.variables.get(arg.value.name.value, MAX_FIRST)
            if isinstance(value, int) and not isinstance(value, bool):
                return max(0, min(value, MAX_FIRST))
            return MAX_FIRST
        return DEFAULT_FIRST

    def selection_set(
        self,
        node: SelectionSetNode,
        parent: GraphQLNamedType | None,
        intro: frozenset[str] | None,
        page: int,
        stack: frozenset[str],
    ) -> Measure:
        parts: list[Measure] = []
        for sel in node.selections:
            if isinstance(sel, FieldNode):
                parts.append(self.field(sel, parent, intro, page, stack))
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition
                ftype = self.schema.get_type(cond.name.value) if cond else parent
                parts.append(self.selection_set(sel.selection_set, ftype, intro, page, stack))
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                frag = self.fragments.get(name)
                if frag is None or name in stack:
                    continue  # unknown or cyclic: the standard rules report it
                key = (name, intro, page)
                if key not in self.memo:
                    ftype = self.schema.get_type(frag.type_condition.name.value)
                    self.memo[key] = self.selection_set(
                        frag.selection_set, ftype, intro, page, stack | {name}
                    )
                parts.append(self.memo[key])
        return _combine(parts)

    def field(
        self,
        node: FieldNode,
        parent: GraphQLNamedType | None,
        intro: frozenset[str] | None,
        page: int,
        stack: frozenset[str],
    ) -> Measure:
        name = node.name.value
        alias = 1 if node.alias else 0
        parent_name = parent.name if parent is not None else ""
        fields = getattr(parent, "fields", None) or {}
        field_def = fields.get(name)
        field_type = field_def.type if field_def is not None else None
        if name in INTROSPECTION_ROOTS and intro is None:
            intro = frozenset()
            field_type = self.schema.get_type("__Schema" if name == "__schema" else "__Type")
        elif intro is not None and name in INTROSPECTION_GROUPS:
            group = INTROSPECTION_GROUPS[name]
            if group in intro:
                raise LimitError(
                    f"introspection selects `{name}` inside another `{name}`-like list; "
                    "use the standard introspection query"
                )
            intro = intro | {group}
        weight = 1
        if parent_name == "Query" and not name.startswith("__"):
            weight = ROOT_FIELD_COST
        elif parent_name == "LiquidationConnection" and name == "totalCount":
            weight = TOTAL_COUNT_COST
        if node.selection_set is None:
            return Measure(weight, 1 if intro is None else 0, alias, 0 if intro is None else 1)
        child_page = DEFAULT_FIRST
        if parent_name == "Query" and name == "liquidations":
            child_page = self.page_size(node)
        multiplier = 1
        if intro is None and field_type is not None:
            if parent_name == "LiquidationConnection" and name == "edges":
                multiplier = page
            elif parent_name == "Query" and name in GROUPED_FIELDS:
                multiplier = ROWS_ESTIMATE
            elif is_list_type(get_nullable_type(field_type)):
                multiplier = LIST_ESTIMATE
        named = get_named_type(field_type) if field_type is not None else None
        inner = self.selection_set(node.selection_set, named, intro, child_page, stack)
        depth = inner.depth + 1 if intro is None else 0
        intro_depth = inner.introspection_depth + (0 if intro is None else 1)
        return Measure(weight + multiplier * inner.cost, depth, alias + inner.aliases, intro_depth)


def measure_document(
    schema: GraphQLSchema, document: Any, variables: Mapping[str, Any] | None
) -> list[Measure]:
    """Measure every operation of a parsed document (raises LimitError on a bad pattern)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walker = _Walker(schema, fragments, variables or {})
    results = []
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            root = schema.get_root_type(definition.operation)
            results.append(
                walker.selection_set(
                    definition.selection_set, root, None, DEFAULT_FIRST, frozenset()
                )
            )
    return results


def check_document(
    schema: GraphQLSchema, document: Any, variables: Mapping[str, Any] | None
) -> str | None:
    """The first limit the document breaks, as a message, or None."""
    try:
        measures = measure_document(schema, document, variables)
    except LimitError as exc:
        return exc.message
    except RecursionError:
        return "query is nested too deeply"
    for m in measures:
        if m.depth > MAX_DEPTH:
            return f"query is nested {m.depth} levels deep; the limit is {MAX_DEPTH}"
        if m.introspection_depth > MAX_INTROSPECTION_DEPTH:
            return (
                f"introspection is nested {m.introspection_depth} levels deep; the limit is "
                f"{MAX_INTROSPECTION_DEPTH}"
            )
        if m.aliases > MAX_ALIASES:
            return f"query uses {m.aliases} aliases; the limit is {MAX_ALIASES}"
        if m.cost > MAX_COST:
            cost = f"{m.cost:,}" if m.cost < 10**12 else "astronomical"
            return (
                f"query cost {cost} exceeds the limit of {MAX_COST:,}: ask for fewer items "
                "(`first`) or fewer fields, or split the query (a list multiplies the cost "
                "of the fields under it by its length)"
            )
    return None


class _ValidationCache:
    """The standard validation's verdict per query text (bounded LRU). Frontends send the
    same few documents over and over; validating them is most of a request's CPU time."""

    def __init__(self, maxsize: int = 512) -> None:
        self.maxsize = maxsize
        self.entries: OrderedDict[tuple[object, ...], list[GraphQLError]] = OrderedDict()

    def validate(
        self, schema: GraphQLSchema, document: Any, query: str, rules: tuple[Any, ...]
    ) -> list[GraphQLError]:
        key = (schema, query, rules)
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        errors = validate_document(schema, document, rules)
        self.entries[key] = errors
        if len(self.entries) > self.maxsize:
            self.entries.popitem(last=False)
        return errors


_validation_cache = _ValidationCache()
MAX_CACHED_QUERY_CHARS = 16 * 1024


class QueryLimits(SchemaExtension):
    """Refuses an over-limit document before the standard validation rules run, then runs
    (or recalls) the standard validation."""

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None and ctx.pre_execution_errors is None:
            variables = ctx.variables if isinstance(ctx.variables, dict) else None
            message = check_document(ctx.schema._schema, document, variables)
            if message is not None:
                # Errors set here make Strawberry skip its own validation pass and refuse
                # the operation.
                ctx.pre_execution_errors = [
                    GraphQLError(message, extensions={"code": LIMIT_EXCEEDED})
                ]
            elif ctx.query is not None and len(ctx.query) <= MAX_CACHED_QUERY_CHARS:
                ctx.pre_execution_errors = _validation_cache.validate(
                    ctx.schema._schema, document, ctx.query, tuple(ctx.validation_rules)
                )
        yield


class MaskInternalErrors(SchemaExtension):
    """Keeps the caller's errors readable and hides ours.

    An error raised while resolving a field that is not an ApiError (a bug, an unexpected
    database error) is logged with its traceback and a reference, and the caller sees only
    "internal error (ref ...)". Validation and input-coercion errors are left as they are.
    Also counts errors by kind in the metrics.
    """

    def __init__(self, metrics: ApiMetrics | None = None) -> None:
        self.metrics = metrics

    def _mask(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if error.path is None:
            self._count("validation")
            return error
        if isinstance(original, ApiError):
            self._count("user")
            return error
        ref = uuid.uuid4().hex[:12]
        self._count("internal")
        exc_info = (
            (type(original), original, original.__traceback__) if original is not None else None
        )
        log.error(
            "internal error ref=%s path=%s: %s",
            ref,
            ".".join(str(p) for p in error.path),
            error.message,
            exc_info=exc_info,
        )
        return GraphQLError(
            f"internal error (ref {ref})",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": INTERNAL},
        )

    def _count(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.graphql_errors.labels(kind=kind).inc()

    def on_operation(self) -> Iterator[None]:
        if self.metrics is not None:
            self.metrics.graphql_operations.inc()
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [self._mask(e) for e in errors]


def limit_extensions(
    metrics: ApiMetrics | None = None,
) -> list[Callable[[], SchemaExtension]]:
    """Extension factories (a fresh instance per operation)."""
    return [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=512),
        QueryLimits,
        lambda: MaskInternalErrors(metrics),
    ]
