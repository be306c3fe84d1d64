"""The whole-subtree completion (api.fastexec) gives graphql-core's answers exactly: every
query below runs through the shipped schema and through one with the standard execution
context, on the same data, and the encoded answers must be byte-identical."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from api import fastexec
from api.context import ApiContext
from api.db import Database
from api.limits import limit_extensions
from api.resolvers import Query
from api.scalars import SCALARS
from api.schema import build_schema
from api.subscriptions import Subscription
from tests.test_api_support import build_dataset, seed

NODE_ALL = """
id chain chainId blockNumber blockHash blockTime txHash txIndex logIndex pool market user
liquidator debtToCover liquidatedCollateralAmount protocolFeeAmount receiveAToken
collateralPrice debtPrice collateralUsd debtUsd bonusUsd protocolFeeUsd collateralSeizedUsd
closedFully finalized __typename
collateralAsset { chain chainId address symbol decimals __typename }
debtAsset { address symbol decimals }
svr { aggregator roundId oracleTxHash recapturedUsd aaveUsd chainlinkUsd bonusUsd
      recaptureRate bidCount bestLosingBidUsd }
"""

COMPILED = [
    "{ liquidations(first: 40) { edges { cursor node { " + NODE_ALL + " } } "
    "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
    "{ liquidations(first: 30, filter: {svr: true}) { edges { node { " + NODE_ALL + " } } } }",
    "query($f: LiquidationFilter) { liquidations(first: 5, filter: $f) { edges { node { id "
    "user } } } }",
    # aliases, a fragment, an inline fragment, a field asked twice with merged selections
    "query { a: liquidations(first: 3) { ...F edges { node { id txHash } } } "
    "b: liquidations(first: 2) { pageInfo { endCursor } __typename } } "
    "fragment F on LiquidationConnection { edges { cursor node { chainId "
    "... on Liquidation { user } } } }",
    "{ liquidations(first: 0) { edges { cursor } pageInfo { startCursor endCursor } } }",
    "{ liquidationStats(groupBy: [CHAIN, MARKET]) { chain chainId market period count debtUsd "
    "collateralUsd svrCount svrDebtUsd bonusUsd protocolFeeUsd collateralSeizedUsd source "
    "deficitUsd } }",
    "{ liquidationStats(groupBy: [DAY]) { period count debtUsd } }",
    "{ liquidationStats { chain count debtUsd } }",
    "{ liquidationStats(groupBy: [COLLATERAL_ASSET, DEBT_ASSET]) { collateralAsset { address "
    "symbol } debtAsset { address decimals } count } }",
    "{ svrRevenue(groupBy: [CHAIN, AGGREGATOR]) { chain chainId aggregator "
    "svrLiquidationCount recapturedUsd aaveUsd chainlinkUsd recaptureRate unsoldUpdates } }",
    "{ liquidators(first: 5) { edges { cursor node { address count debtUsd bonusUsd chainIds "
    "chains firstSeen lastSeen } } pageInfo { endCursor } source } }",
    "{ indexerStatus { chain chainId name headBlock lagBlocks halted lastError } }",
]

STANDARD = [
    # an async field below the root, a directive, an error: the standard completion
    "{ liquidations(first: 3) { edges { node { id blocksSincePriceUpdate } } } }",
    "{ liquidations(first: 3) { edges { node { id @include(if: true) user } } } }",
    "{ liquidations(first: 5000) { edges { node { id } } } }",
    '{ liquidations(first: 2, after: "nope") { edges { node { id } } } }',
]


def _standard_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=limit_extensions(),
    )


@pytest.fixture(scope="module")
async def database(db_dsn: str) -> AsyncIterator[Database]:
    await seed(db_dsn, build_dataset(n_per_chain=120, seed=11))
    db = Database(db_dsn)
    yield db
    await db.close()


async def _answer(schema: strawberry.Schema, db: Database, query: str) -> bytes:
    ctx = ApiContext(db=db, cursor_key=b"k" * 32)
    result = await schema.execute(query, context_value=ctx)
    errors: list[Any] = [e.formatted for e in result.errors or []]
    return orjson.dumps({"data": result.data, "errors": errors})


@pytest.mark.parametrize("query", COMPILED + STANDARD)
async def test_same_answer_as_the_standard_execution(database: Database, query: str) -> None:
    fast = await _answer(build_schema(), database, query)
    assert fast == await _answer(_standard_schema(), database, query)


async def test_common_shapes_are_compiled(database: Database) -> None:
    schema = build_schema()
    for query in COMPILED:
        fastexec._plans._plans.clear()
        await _answer(schema, database, query)
        assert any(plan is not None for _, plan in fastexec._plans._plans.values()), query


async def test_a_value_it_cannot_complete_falls_back(database: Database) -> None:
    """A null where the schema promises a value: the standard completion reports it."""
    from graphql import GraphQLNonNull, GraphQLString

    plan = fastexec._Compiler({}).value(GraphQLNonNull(GraphQLString), [])
    with pytest.raises(fastexec._Fallback):
        plan(None)
    assert plan("x") == "x"


def test_checksum_is_eip55() -> None:
    import random

    from eth_utils import to_checksum_address

    from api.scalars import checksum

    rng = random.Random(5)
    for _ in range(3000):
        body = "".join(
            c.upper() if rng.random() < 0.5 else c for c in f"{rng.getrandbits(160):040x}"
        )
        assert checksum("0x" + body) == to_checksum_address("0x" + body.lower())
    assert checksum("0x1234") == "0x1234"  # not an address: shown as stored
