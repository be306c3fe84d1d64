"""Shared fixtures: a real PostgreSQL server; each test module gets its own fresh database
cloned from a migrated template (CREATE DATABASE ... TEMPLATE is fast)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from indexer.store.migrate import migrate
from tests.faultproxy import free_port

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


# -- a plain anvil node (no contracts) for RPC-level tests --------------------------------

ROOT = Path(__file__).resolve().parents[1]


def anvil_binary() -> str:
    found = sorted(ROOT.glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))
    if not found:
        raise RuntimeError("anvil not installed: run `make install`")
    return str(found[0])


@pytest.fixture(scope="session")
def plain_anvil() -> Iterator[str]:
    """A bare anvil (chain id 1) with 30 mined blocks; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            anvil_binary(),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--chain-id",
            "1",
            "--silent",
            "--timestamp",
            "1769817600",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("anvil did not start") from None
                time.sleep(0.05)
        _rpc(url, "anvil_mine", ["0x1e"])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def _rpc(url: str, method: str, params: list[object]) -> object:
    import json
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["result"]


# -- the five-chain devnet with the default scenario, once per run ------------------------

DEVNET_SEED = 1
DEVNET_SCALE = float(os.environ.get("DEVNET_SCALE", "1.0"))


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, object]]]:
    """Five anvil nodes on free ports, Aave deployed, the default scenario played.
    Tests must not change this chain state (reorg tests start their own)."""
    from indexer.devnet import CHAINS, devnet_down, devnet_up, run_scenario

    workdir = tmp_path_factory.mktemp("devnet")
    ports = {name: free_port() for name in CHAINS}
    devnet_up(workdir, ports=ports)
    try:
        manifest = run_scenario(workdir, seed=DEVNET_SEED, scale=DEVNET_SCALE)
        yield workdir, manifest
    finally:
        devnet_down(workdir)
