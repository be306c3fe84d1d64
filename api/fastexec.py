"""Whole-subtree completion of a root field's value, without graphql-core's per-field work.

graphql-core completes every field of an answer on its own: a resolve-info object, a
resolver call through Strawberry's wrappers, an awaitable check and a path entry per field;
for a page of 50 liquidations that is ~30,000 steps and most of a request's CPU. Below a
root field, the schema's objects are plain data (dataclass attributes and a few cheap
synchronous methods), so the selection can be compiled once per document into a function
that turns the resolver's value into the answer's dicts directly.

A root field's selection is compiled only when everything under it is plain: object types
that are not abstract and have no `is_type_of`; fields without arguments, directives,
`@defer`/`@stream`, field extensions or exception handlers, read as an attribute or by a
synchronous resolver that takes only the object; fragments and inline fragments on the
same concrete type. Anything else (an async resolver such as `blocksSincePriceUpdate`,
resolver middleware) goes the standard way. So does a value the compiled function cannot
complete exactly (a null for a non-null field, a scalar that does not serialise, any
exception): completion is pure, so the standard completion then simply runs on the same
value and reports the error as graphql-core does. The answer is the same either way.
"""

from __future__ import annotations

import inspect
import keyword
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLString,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.execution.collect_fields import FieldDetails
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

Complete = Callable[[Any], Any]
BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF
_MAX_INT = 2**31 - 1


class _Fallback(Exception):
    """The compiled completion cannot give this value's answer exactly."""


class _Unsupported(Exception):
    """The selection holds something only the standard completion handles."""


def _leaf(gtype: GraphQLLeafType) -> Complete:
    coerce = gtype.coerce_output_value

    def complete(value: Any) -> Any:
        out = coerce(value)
        if out is None:
            raise _Fallback
        return out

    # The built-in scalars, for the value types they return unchanged.
    exact: type | None = {
        GraphQLString.name: str,
        GraphQLID.name: str,
        GraphQLBoolean.name: bool,
    }.get(gtype.name)
    if gtype is GraphQLInt:

        def complete_int(value: Any) -> Any:
            if type(value) is int and -_MAX_INT - 1 <= value <= _MAX_INT:
                return value
            return complete(value)

        return complete_int
    if gtype is GraphQLFloat or exact is None:
        return complete

    def complete_exact(value: Any) -> Any:
        return value if type(value) is exact else complete(value)

    return complete_exact


def _plain_getter(field: GraphQLField) -> str | Callable[[Any], Any]:
    """How the field's value is read from its object (an attribute name, or a method taking
    only the object); _Unsupported unless that is pure."""
    sfield = field.extensions.get(BACKREF)
    if not isinstance(sfield, StrawberryField) or sfield.extensions or field.args:
        raise _Unsupported
    if getattr(sfield, "exception_handlers", None):
        raise _Unsupported
    resolver = sfield.base_resolver
    if resolver is None:
        if sfield.default_resolver is not getattr:
            raise _Unsupported
        name = sfield.python_name
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            raise _Unsupported
        return name
    func = resolver.wrapped_func
    if not callable(func) or resolver.is_async:
        raise _Unsupported
    if list(inspect.signature(func).parameters) != ["self"]:
        raise _Unsupported
    method: Callable[[Any], Any] = func
    return method


class _Compiler:
    def __init__(self, fragments: dict[str, Any]) -> None:
        self.fragments = fragments

    def value(self, gtype: GraphQLOutputType, nodes: Sequence[FieldNode]) -> Complete:
        if isinstance(gtype, GraphQLNonNull):
            inner = self.value(gtype.of_type, nodes)

            def non_null(value: Any) -> Any:
                if value is None:
                    raise _Fallback
                out = inner(value)
                if out is None:
                    raise _Fallback
                return out

            return non_null
        if isinstance(gtype, GraphQLList):
            item = self.value(gtype.of_type, nodes)

            def items(value: Any) -> Any:
                if value is None:
                    return None
                if not isinstance(value, list | tuple):
                    raise _Fallback
                return [item(v) for v in value]

            return items
        if isinstance(gtype, GraphQLLeafType):
            leaf = _leaf(gtype)

            def nullable_leaf(value: Any) -> Any:
                return None if value is None else leaf(value)

            return nullable_leaf
        if isinstance(gtype, GraphQLObjectType) and gtype.is_type_of is None:
            return self.object(gtype, nodes)
        raise _Unsupported

    def collect(
        self,
        gtype: GraphQLObjectType,
        selection_set: SelectionSetNode,
        into: OrderedDict[str, list[FieldNode]],
        seen: frozenset[str],
    ) -> None:
        """graphql-core's field collection, for selections without directives."""
        for sel in selection_set.selections:
            if sel.directives:
                raise _Unsupported
            if isinstance(sel, FieldNode):
                key = sel.alias.value if sel.alias else sel.name.value
                into.setdefault(key, []).append(sel)
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition
                if cond is not None and cond.name.value != gtype.name:
                    raise _Unsupported
                self.collect(gtype, sel.selection_set, into, seen)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                if name in seen:
                    continue
                details = self.fragments.get(name)
                definition = getattr(details, "definition", details)
                if definition is None or getattr(details, "variable_signatures", None):
                    raise _Unsupported
                if definition.type_condition.name.value != gtype.name:
                    raise _Unsupported
                self.collect(gtype, definition.selection_set, into, seen | {name})
            else:
                raise _Unsupported

    def object(self, gtype: GraphQLObjectType, nodes: Sequence[FieldNode]) -> Complete:
        """One generated function per object selection: attribute reads, the built-in
        scalars' type checks inline, a dict display (a closure per field costs ~3x)."""
        fields: OrderedDict[str, list[FieldNode]] = OrderedDict()
        for node in nodes:
            if node.selection_set is None:
                raise _Unsupported
            self.collect(gtype, node.selection_set, fields, frozenset())
        names: dict[str, Any] = {"_Fallback": _Fallback}
        lines = ["def complete(obj):", "    if obj is None:", "        return None"]
        items = []
        for i, (key, subnodes) in enumerate(fields.items()):
            name = subnodes[0].name.value
            if name == "__typename":
                names[f"t{i}"] = gtype.name
                items.append(f"{key!r}: t{i}")
                continue
            field = gtype.fields.get(name)
            if field is None or any(n.arguments for n in subnodes):
                raise _Unsupported
            get = _plain_getter(field)
            if isinstance(get, str):
                lines.append(f"    v{i} = obj.{get}")
            else:
                names[f"g{i}"] = get
                lines.append(f"    v{i} = g{i}(obj)")
            names[f"c{i}"] = self.value(field.type, subnodes)
            lines += _leaf_lines(field.type, i, names) or [f"    v{i} = c{i}(v{i})"]
            items.append(f"{key!r}: v{i}")
        lines.append("    return {" + ", ".join(items) + "}")
        exec("\n".join(lines), names)  # only schema names and response keys
        complete: Complete = names["complete"]
        return complete


# Conditions under which a value of a built-in scalar needs the full completion c{i}.
_INLINE = {
    "String": "type(v{i}) is not str",
    "ID": "type(v{i}) is not str",
    "Boolean": "type(v{i}) is not bool",
    "Int": "type(v{i}) is not int or not -2147483648 <= v{i} <= 2147483647",
}


def _leaf_lines(gtype: GraphQLOutputType, i: int, names: dict[str, Any]) -> list[str]:
    """Inline completion of leaf field number i (value in v{i}); [] if not a leaf."""
    non_null = isinstance(gtype, GraphQLNonNull)
    leaf = gtype.of_type if isinstance(gtype, GraphQLNonNull) else gtype
    if not isinstance(leaf, GraphQLLeafType):
        return []
    check = _INLINE.get(leaf.name)
    if non_null and check is not None and leaf in _BUILT_IN:
        return [f"    if {check.format(i=i)}:", f"        v{i} = c{i}(v{i})"]
    names[f"s{i}"] = leaf.coerce_output_value
    done = [f"v{i} = s{i}(v{i})", f"if v{i} is None:", "    raise _Fallback"]
    if non_null:
        return [f"    if v{i} is None:", "        raise _Fallback", *(f"    {x}" for x in done)]
    return [f"    if v{i} is not None:", *(f"        {x}" for x in done)]


_BUILT_IN = (GraphQLString, GraphQLID, GraphQLBoolean, GraphQLInt)


class _Plans:
    """Compiled completions per root field (its field nodes, by identity), bounded."""

    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self._plans: OrderedDict[tuple[int, ...], tuple[tuple[Any, ...], Complete | None]] = (
            OrderedDict()
        )

    def get(
        self,
        return_type: GraphQLOutputType,
        details: Sequence[FieldDetails],
        fragments: dict[str, Any],
    ) -> Complete | None:
        key = (id(return_type), *(id(d.node) for d in details))
        held = self._plans.get(key)
        # The entry holds its nodes, so their ids cannot be reused while it lives.
        if held is not None and all(a is d.node for a, d in zip(held[0][1:], details, strict=True)):
            return held[1]
        plan: Complete | None
        if any(d.defer_usage is not None or d.fragment_variable_values for d in details):
            plan = None
        else:
            try:
                plan = _Compiler(fragments).value(return_type, [d.node for d in details])
            except _Unsupported:
                plan = None
        self._plans[key] = ((return_type, *(d.node for d in details)), plan)
        if len(self._plans) > self.maxsize:
            self._plans.popitem(last=False)
        return plan


_plans = _Plans()


class FastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, completing root fields' values whole when their
    selection is plain (see the module's docstring)."""

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: Any,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        manager = self.middleware_manager
        if (
            path.prev is None
            and (manager is None or not manager.middlewares)
            and not isinstance(result, Exception)
        ):
            plan = _plans.get(return_type, field_details_list, self.fragments)
            if plan is not None:
                try:
                    return plan(result)
                except Exception:  # the standard completion reports what is wrong
                    pass
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )
