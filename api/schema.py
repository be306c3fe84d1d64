"""The GraphQL schema, assembled: the root Query (api.resolvers) with the custom scalars
(api.scalars) and the query limits (api.limits); root fields' values completed whole
where their selection allows it (api.fastexec).

Conventions of the schema:
- Addresses are accepted in any letter case and returned EIP-55 checksummed (scalar
  Address); hashes are returned as lowercase 0x-hex strings.
- Raw token amounts are exact integers serialised as decimal strings (scalar BigInt); USD
  values are exact decimals serialised as strings (scalar Decimal): no floats anywhere.
- Every object carries `chainId`; `chain` is the Chain enum for the five production chains
  and null for any other chain id (a local devnet, say).
- Times are UTC. A DateTime without an offset is read as UTC. `timeFrom` is inclusive,
  `timeTo` exclusive; `blockFrom` and `blockTo` are both inclusive.
- An Asset the indexer has no metadata for (no row in `assets`) still has its chain and
  address; its `symbol` and `decimals` are null.
"""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api.fastexec import FastExecutionContext
from api.limits import limit_extensions
from api.metrics import ApiMetrics
from api.resolvers import Query
from api.scalars import SCALARS
from api.subscriptions import Subscription, SubscriptionsOverWebSocket


class ApiSchema(strawberry.Schema):
    """Logs only what is ours to fix: MaskInternalErrors logs internal errors with their
    traceback; the caller's own errors are not worth an ERROR line each."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(metrics: ApiMetrics | None = None) -> strawberry.Schema:
    return ApiSchema(
        query=Query,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=[SubscriptionsOverWebSocket, *limit_extensions(metrics)],
        execution_context_class=FastExecutionContext,
    )


schema = build_schema()
