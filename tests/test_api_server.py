"""The HTTP server around the schema: health, readiness, metrics, CORS, GraphiQL, error
masking, read-only sessions and role, statement timeout, and api.server.run end to end."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from api import queries, resolvers
from api.db import Database
from api.errors import TIMEOUT, ApiError
from api.queries import Sql
from tests.test_api_support import api_client, build_dataset, gql, messages, seed

DS = build_dataset(n_per_chain=40, seed=3)
STATUS_Q = "{ indexerStatus { chainId lagBlocks } }"


@pytest.fixture(scope="module")
async def client(db_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed(db_dsn, DS)
    async with api_client(db_dsn, cors_origins=["https://app.example"]) as c:
        yield c


def reader_dsn(dsn: str) -> str:
    scheme, _, rest = dsn.partition("://")
    return f"{scheme}://aave_indexer_reader@{rest.partition('@')[2]}"


async def test_healthz_and_pool_opened_at_startup(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert client.app.state.db._pool is not None  # type: ignore[attr-defined]


async def test_readyz(client: httpx.AsyncClient, db_dsn: str) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and len(body["chains"]) == 5
    assert all(c["lagBlocks"] == 3 for c in body["chains"])
    conn = await asyncpg.connect(db_dsn)
    try:
        async with conn.transaction():
            saved = await conn.fetch("SELECT * FROM chain_status")
            await conn.execute("UPDATE chain_status SET head_block = NULL WHERE chain_id = 137")
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert "polygon" in response.json()["reason"]
        await conn.execute("DELETE FROM chain_status")
        response = await client.get("/readyz")
        assert response.status_code == 503 and "empty" in response.json()["reason"]
    finally:
        await conn.execute("DELETE FROM chain_status")
        await conn.copy_records_to_table(
            "chain_status", records=[tuple(r) for r in saved], columns=list(saved[0].keys())
        )
    assert (await client.get("/readyz")).status_code == 200


async def test_database_down() -> None:
    """The process starts and answers without a database; queries say what is wrong."""
    async with api_client("postgresql://postgres@127.0.0.1:1/nowhere") as down:
        assert (await down.get("/healthz")).status_code == 200
        response = await down.get("/readyz")
        assert response.status_code == 503
        assert "database unavailable" in response.json()["reason"]
        body = await gql(down, STATUS_Q)
        assert messages(body) == ["database unavailable; try again shortly"]
        assert body["errors"][0]["extensions"]["code"] == "UNAVAILABLE"


async def test_metrics(client: httpx.AsyncClient) -> None:
    await gql(client, STATUS_Q)
    await gql(client, "{ nothing }")
    await client.get("/nope")
    text = (await client.get("/metrics")).text
    assert 'aave_api_requests_total{method="POST",path="/graphql",status="200"}' in text
    assert 'aave_api_requests_total{method="GET",path="other",status="404"}' in text
    assert 'aave_api_request_duration_seconds_bucket{le="0.005",path="/graphql"}' in text
    assert "aave_api_graphql_operations_total" in text
    line = next(x for x in text.splitlines() if x.startswith("aave_api_graphql_errors_total"))
    assert line  # counters exist from the start
    validation = next(
        x for x in text.splitlines() if 'aave_api_graphql_errors_total{kind="validation"}' in x
    )
    assert float(validation.split()[-1]) >= 1


async def test_cors(client: httpx.AsyncClient) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    response = await client.options("/graphql", headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    response = await client.options("/graphql", headers={**preflight, "Origin": "https://evil"})
    assert "access-control-allow-origin" not in response.headers
    response = await client.post(
        "/graphql", json={"query": STATUS_Q}, headers={"Origin": "https://app.example"}
    )
    assert response.headers["access-control-allow-origin"] == "https://app.example"


async def test_graphiql_and_get_queries(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()
    response = await client.get("/graphql", params={"query": STATUS_Q})
    assert response.status_code == 200 and len(response.json()["data"]["indexerStatus"]) == 5
    response = await client.get("/graphql", params={"query": "mutation { x }"})
    assert response.status_code in (400, 405) and response.json()["errors"]


async def test_internal_errors_are_masked_and_logged(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(row: object) -> object:
        raise RuntimeError("secret detail: password=hunter2")

    monkeypatch.setattr(resolvers, "make_liquidation", broken)
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = await client.post(
            "/graphql", json={"query": "{ liquidations(first: 1) { edges { node { id } } } }"}
        )
    assert response.status_code == 200
    assert "hunter2" not in response.text and "Traceback" not in response.text
    error = response.json()["errors"][0]
    assert error["message"].startswith("internal error (ref ")
    assert error["extensions"]["code"] == "INTERNAL"
    ref = error["message"].removeprefix("internal error (ref ").rstrip(")")
    logged = [r for r in caplog.records if ref in r.getMessage()]
    assert logged and logged[0].exc_info and "hunter2" in str(logged[0].exc_info[1])
    text = (await client.get("/metrics")).text
    assert 'aave_api_graphql_errors_total{kind="internal"} 1.0' in text


async def test_sessions_are_read_only_with_a_statement_timeout(
    client: httpx.AsyncClient,
) -> None:
    db: Database = client.app.state.db  # type: ignore[attr-defined]
    async with db.connection() as conn:
        assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
        assert await conn.fetchval("SHOW statement_timeout") == "5s"
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("DELETE FROM liquidations")


async def test_statement_timeout_is_a_message(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(db_dsn, statement_timeout_ms=100)
    try:
        with pytest.raises(ApiError) as caught:
            await db.fetch(Sql("SELECT pg_sleep(2)"))
        assert caught.value.code == TIMEOUT
    finally:
        await db.close()
    slow = "SELECT *, pg_sleep(0.5) FROM chain_status"
    monkeypatch.setattr(queries, "CHAIN_STATUS", slow)
    async with api_client(db_dsn, statement_timeout_ms=100) as impatient:
        body = await gql(impatient, STATUS_Q)
    assert "cancelled after 100 ms" in messages(body)[0]
    assert body["errors"][0]["extensions"]["code"] == "TIMEOUT"


async def test_reader_role_cannot_write(db_dsn: str) -> None:
    conn = await asyncpg.connect(reader_dsn(db_dsn))
    try:
        assert await conn.fetchval("SELECT count(*) FROM liquidations") == len(DS.liquidations)
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("INSERT INTO assets VALUES (1, '0xabc', 'X', 18)")
        # even after leaving read-only mode the role has no write grant
        await conn.execute("SET default_transaction_read_only = off")
        for sql in (
            "INSERT INTO assets VALUES (1, '0xabc', 'X', 18)",
            "DELETE FROM liquidations",
            "UPDATE chain_status SET halted = true",
            "TRUNCATE svr_recaptures",
            "CREATE TABLE evil (x int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
    finally:
        await conn.close()


async def test_api_runs_as_the_reader_role(db_dsn: str) -> None:
    async with api_client(reader_dsn(db_dsn)) as reader:
        body = await gql(reader, "{ liquidationStats(groupBy: [CHAIN]) { count } }")
        assert sum(r["count"] for r in body["data"]["liquidationStats"]) == len(DS.liquidations)
        assert (await reader.get("/readyz")).status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_server_run_serves_over_http(db_dsn: str) -> None:
    port = _free_port()
    code = (
        f"from api.server import run; run('127.0.0.1', {port}, {db_dsn!r}, ['https://app.example'])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(100):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            body = (await http.post("/graphql", json={"query": STATUS_Q})).json()
            assert len(body["data"]["indexerStatus"]) == 5
            assert (await http.get("/readyz")).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
