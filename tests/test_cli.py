"""The real command line as a subprocess: help, exit codes, one-line errors, a backfill
and its status on the devnet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import drop_database, make_database

SUBCOMMANDS = [
    ["migrate"],
    ["verify"],
    ["backfill"],
    ["run"],
    ["serve"],
    ["status"],
    ["config", "check"],
    ["devnet", "up"],
    ["devnet", "down"],
    ["devnet", "scenario"],
]


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RPC_URL_")}
    full_env.pop("AAVE_INDEXER_CONFIG", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "indexer.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help(command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: aave-indexer" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "invalid choice"),
        (["backfill", "--to", "soon"], "expected a block number or 'finalized'"),
        (["backfill", "--from", "-5"], "not negative"),
        (["backfill", "--to", str(2**64)], "too large"),
        (["backfill", "--from", "0x" + "f" * 20], "too large"),
        (["backfill", "--chain", "solana"], "unknown chain 'solana'"),
        (["backfill"], "no RPC endpoint configured (set RPC_URL_ETHEREUM)"),
        (["--config", "/nonexistent.toml", "status"], "config file not found"),
    ],
)
def test_bad_usage_is_one_line_exit_2(args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_check_masks_secrets() -> None:
    result = cli("config", "check", env={"RPC_URL_ETHEREUM": "https://eth.example/v2/SECRETKEY"})
    assert result.returncode == 0
    resolved = json.loads(result.stdout)
    assert set(resolved["chains"]) == {"ethereum", "polygon", "avalanche", "arbitrum", "base"}
    assert resolved["chains"]["ethereum"]["rpc_urls"] == ["https://eth.example/***"]
    assert "SECRETKEY" not in result.stdout + result.stderr


def test_unreachable_database_is_exit_3() -> None:
    result = cli("--database-url", "postgresql://postgres@127.0.0.1:1/none", "status")
    assert result.returncode == 3
    assert "cannot reach the database" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def cli_db(pg_template: str) -> Any:
    dsn = make_database(pg_template)
    yield dsn
    drop_database(dsn)


def test_unreachable_rpc_is_exit_3_without_riding_out_the_retries(cli_db: str) -> None:
    """Nothing listens on port 1: the start-up chain-id probe gives up after a few quick
    attempts (the full retry schedule, meant for outages of a running indexer, takes
    about 45 s here)."""
    result = cli(
        "--database-url",
        cli_db,
        "backfill",
        "--chain",
        "ethereum",
        env={"RPC_URL_ETHEREUM": "http://127.0.0.1:1"},
        timeout=30,
    )
    assert result.returncode == 3, result.stderr
    assert "eth_chainId failed on every endpoint after 4 attempts" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_wrong_chain_behind_url_is_exit_3(
    devnet: tuple[Path, dict[str, Any]], cli_db: str, tmp_path: Path
) -> None:
    workdir, _ = devnet
    text = (workdir / ".devnet" / "devnet.toml").read_text()
    # Point ethereum's section at polygon's node.
    config = tomllib_loads(text)
    polygon_url = config["chains"]["polygon"]["rpc_urls"][0]
    ethereum_url = config["chains"]["ethereum"]["rpc_urls"][0]
    swapped = tmp_path / "swapped.toml"
    swapped.write_text(text.replace(ethereum_url, polygon_url))
    result = cli(
        "--config",
        str(swapped),
        "--database-url",
        cli_db,
        "--quiet",
        "backfill",
        "--chain",
        "ethereum",
    )
    assert result.returncode == 3
    assert "serves chain 137, the config says 1" in result.stderr


def test_backfill_then_status(devnet: tuple[Path, dict[str, Any]], cli_db: str) -> None:
    workdir, manifest = devnet
    config = str(workdir / ".devnet" / "devnet.toml")
    result = cli(
        "--config", config, "--database-url", cli_db, "--log-json", "backfill", "--chain", "polygon"
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any("polygon backfill" in line["msg"] for line in lines)
    status = cli("--database-url", cli_db, "status", "--json")
    assert status.returncode == 0
    (row,) = [r for r in json.loads(status.stdout) if r["name"] == "polygon"]
    assert row["indexed"] == row["finalized_block"] > 0
    assert row["last_error"] is None
    verify = cli("--database-url", cli_db, "verify")
    assert verify.returncode == 0 and "liquidation_rollup: ok" in verify.stdout
    table = cli("--database-url", cli_db, "status")
    assert "polygon" in table.stdout
    last = max(liq["block_number"] for liq in manifest["chains"]["polygon"]["liquidations"])
    assert row["indexed"] >= last


def tomllib_loads(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)


def test_migrate_and_other_chains_run_while_ethereum_is_owned(
    devnet: tuple[Path, dict[str, Any]], cli_db: str
) -> None:
    """Ethereum's owner holds its chain lock; `migrate`, and a backfill of another chain
    (which migrates first), finish as if it were not there, and Ethereum stays owned."""
    import asyncio

    import asyncpg

    from indexer.config import load_config
    from indexer.pipeline import ChainIndexer
    from indexer.store.locks import try_own

    workdir, _ = devnet
    config = str(workdir / ".devnet" / "devnet.toml")

    async def scenario() -> None:
        owner = ChainIndexer(load_config(config).chains["ethereum"], cli_db)
        await owner.open()
        try:
            migrate = await asyncio.to_thread(cli, "--database-url", cli_db, "migrate", timeout=30)
            assert migrate.returncode == 0, migrate.stderr
            other = await asyncio.to_thread(
                cli,
                "--config",
                config,
                "--database-url",
                cli_db,
                "backfill",
                "--chain",
                "polygon",
                timeout=120,
            )
            assert other.returncode == 0, other.stderr
            probe = await asyncpg.connect(cli_db)
            try:
                assert not await try_own(probe, 1), "Ethereum's lock was lost"
                assert await probe.fetchval(
                    "SELECT indexed_block > 0 FROM chain_status WHERE name = 'polygon'"
                )
            finally:
                await probe.close()
        finally:
            await owner.close()

    asyncio.run(scenario())
