"""Shared fixtures: a real PostgreSQL server; each test module gets its own fresh database
cloned from a migrated template (CREATE DATABASE ... TEMPLATE is fast)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from indexer.store.migrate import migrate

ADMIN_DSN = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEMPLATE = f"aave_idx_tpl_{os.getpid()}"


def _dsn_for(db: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{db}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database, built once per test run."""

    async def build() -> None:
        await _admin(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
        await _admin(f'CREATE DATABASE "{TEMPLATE}"')
        conn = await asyncpg.connect(_dsn_for(TEMPLATE))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    yield TEMPLATE
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)'))


def make_database(template: str) -> str:
    """Create a fresh migrated database and return its DSN."""
    name = f"aave_idx_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return _dsn_for(name)


def drop_database(dsn: str) -> None:
    name = dsn.rpartition("/")[2]
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def db_dsn(pg_template: str) -> Iterator[str]:
    """A fresh migrated database for one test module."""
    dsn = make_database(pg_template)
    yield dsn
    drop_database(dsn)


@pytest.fixture
async def db(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db_dsn)
    try:
        yield conn
    finally:
        await conn.close()
