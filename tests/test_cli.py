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
        (["serve", "--port", "99999"], "argument --port: ports are 1-65535, got '99999'"),
        (["run", "--chain", "ethereum", "--metrics-port", "70000"], "argument --metrics-port"),
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


# -- bad values, each refused where argparse reads it (issue 19; tests/test_cli_fuzz.py
# found most of these) ---------------------------------------------------------------------


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """indexer.cli.main in process: its exit code and stderr (the logging it sets up is
    undone)."""
    import logging

    from indexer.cli import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = main(argv)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return code, capsys.readouterr().err


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.split("\n") if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert lines[0].isprintable(), stderr
    return lines[0]


REFUSED = [
    # ports: uvicorn served elsewhere on 99999 and exited 3 on 0 or -1; bind() overflowed
    (["serve", "--port", "0"], "argument --port: ports are 1-65535"),
    (["serve", "--port", "-1"], "argument --port: ports are 1-65535"),
    (["serve", "--port", "\u0668\u0660"], "argument --port: not a port number"),
    (["serve", "--port", " 80"], "argument --port: not a port number"),
    (["run", "--metrics-port", "0"], "argument --metrics-port: ports are 1-65535"),
    # `--opt=--`: Python 3.11 gave the option [] past its type (a TypeError in the devnet)
    (["serve", "--port=--"], "argument --port: expected one argument"),
    (["devnet", "scenario", "--scale=--"], "argument --scale: expected one argument"),
    # hosts: a label too long for IDNA raised UnicodeError in uvicorn; malformed names
    (["serve", "--host", "a" * 64], "argument --host: not a host name or IP address"),
    (["serve", "--host", "a..b"], "argument --host: not a host name or IP address"),
    (["run", "--metrics-host", "local host"], "argument --metrics-host: not a host name"),
    (["serve", "--cors", "https://app.example/"], "argument --cors: expected"),
    (["serve", "--cors", "ftp://app.example"], "argument --cors: expected"),
    (["serve", "--cors", ""], "argument --cors: expected"),
    # database URLs asyncpg's parser let through as OverflowError or ValueError
    (["--database-url", "postgresql://u@127.0.0.1:99999/d", "status"], "port '99999'"),
    (["--database-url", "postgresql://u@[::1/d", "status"], "Invalid IPv6 URL"),
    (["--database-url", "postgresql://u@h/d?port=70000", "status"], "port '70000'"),
    (["--database-url", "postgresql://u@a..b/d", "status"], "host 'a..b'"),
    # an empty --config was the shipped config, silently
    (["--config", "", "config", "check"], "argument --config: not a file name"),
    # dates: fromisoformat took 2024W011; years below 1000 failed in the API (exit 1)
    (["report", "--from", "2024W011"], "argument --from: not a date (YYYY-MM-DD)"),
    (["report", "--from", "20240101"], "argument --from: not a date (YYYY-MM-DD)"),
    (["report", "--to", "0001-01-01"], "argument --to: dates are 1970-01-01 to 9999-12-31"),
    (["report", "--from", "2024-02-30"], "argument --from: not a date"),
    # block numbers in other scripts' digits or with blanks were taken
    (["backfill", "--from", "\u0663"], "argument --from: not a block number"),
    (["backfill", "--to", " 7"], "argument --to: expected a block number or 'finalized'"),
    # the devnet: its own checks ended in exit 1 once it had started; no ACTION printed
    # the help on stderr
    (["devnet"], "aave-indexer devnet: the following arguments are required: COMMAND"),
    (["devnet", "up", "--chains", "solana"], "argument --chains: unknown chain 'solana'"),
    (["devnet", "up", "--chains", "ethereum,,base"], "argument --chains: unknown chain ''"),
    (["devnet", "up", "--ports", "1,2"], "argument --ports: 2 ports for 5 chains"),
    (["devnet", "up", "--ports", "8545,8545"], "argument --ports: a port is given twice"),
    (["devnet", "up", "--ports", "x"], "argument --ports: not a port number"),
    (["devnet", "up", "--block-time", "0"], "argument --block-time: must be from 0.01 to 3600 s"),
    (["devnet", "up", "--block-time", "inf"], "argument --block-time: not a finite number"),
    (["devnet", "scenario", "--scale", "-1"], "argument --scale: must be from 0.01 to 100"),
    (["devnet", "scenario", "--scale", "nan"], "argument --scale: not a finite number"),
    (["devnet", "scenario", "--seed", "1.5"], "argument --seed: expected an integer"),
    # the user's control characters, echoed by argparse, broke the error line
    (["status", "a\nb"], "unrecognized arguments: a\\nb"),
    (["--config", "a\x1b[31mb", "status"], "config file not found: a\\x1b[31mb"),
    (["status", "\u202eb"], "unrecognized arguments: \\u202eb"),
]


@pytest.mark.parametrize(("argv", "message"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_bad_values_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stderr = run_main(argv, capsys)
    assert code == 2, stderr
    assert message in one_error_line(stderr)


def test_a_host_that_does_not_resolve(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve --host` and `run --metrics-host` are looked up while parsing (uvicorn raised
    socket.gaierror with a traceback); literal addresses are never looked up."""
    import indexer.cli

    looked_up: list[str] = []

    def resolves(name: str) -> bool:
        looked_up.append(name)
        return False

    monkeypatch.setattr(indexer.cli, "_resolves", resolves)
    code, stderr = run_main(["serve", "--host", "nosuch.example"], capsys)
    assert code == 2 and "argument --host: no such host: 'nosuch.example'" in one_error_line(stderr)
    assert indexer.cli._host("::1") == "::1" and indexer.cli._host("10.1.2.3") == "10.1.2.3"
    assert looked_up == ["nosuch.example"]


def listening_socket() -> Any:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_serve_on_a_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """uvicorn logged the bind error and exited 3 (read as "unreachable")."""
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        code, stderr = run_main(["serve", "--port", str(port)], capsys)
    assert code == 2, stderr
    assert f"--port: cannot listen on 127.0.0.1:{port}" in one_error_line(stderr)


@pytest.mark.parametrize("where", ["in use", "another machine's address"])
def test_metrics_that_cannot_listen_are_one_line(where: str) -> None:
    """start_http_server's OSError was a traceback and exit 1; now one line and exit 2,
    before any chain starts."""
    with listening_socket() as taken:
        port = str(taken.getsockname()[1])
        host = "127.0.0.1" if where == "in use" else "192.0.2.1"  # TEST-NET-1: not ours
        result = cli(
            "run", "--chain", "ethereum", "--metrics-host", host, "--metrics-port", port,
            env={"RPC_URL_ETHEREUM": "http://127.0.0.1:1", "DATABASE_URL": "postgresql://x@127.0.0.1:1/x"},
            timeout=30,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"--metrics-port: cannot listen on {host}:{port}" in one_error_line(result.stderr)


def test_a_chain_named_twice_is_indexed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two indexers of one chain in one process: the second waited for the first's lock."""
    from indexer.cli import selected_chains
    from indexer.config import load_config

    monkeypatch.setenv("RPC_URL_BASE", "http://127.0.0.1:1")
    monkeypatch.setenv("RPC_URL_ETHEREUM", "http://127.0.0.1:1")
    chosen = selected_chains(load_config(None), ["base", "ethereum", "base"])
    assert [c.name for c in chosen] == ["base", "ethereum"]


def test_cors_origins_are_read_as_browsers_send_them() -> None:
    from indexer.cli import _origins

    assert _origins("https://App.Example, http://localhost:3000,*") == [
        "https://app.example",
        "http://localhost:3000",
        "*",
    ]
    assert _origins("http://[::1]:8080") == ["http://[::1]:8080"]


def test_a_database_failure_is_one_line_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli_db: str
) -> None:
    """A statement the database refuses while a command runs was a traceback."""
    import asyncpg

    import indexer.cli

    async def fails(*args: Any) -> int:
        raise asyncpg.exceptions.InternalServerError("could not extend file")

    monkeypatch.setattr(indexer.cli, "migrate", fails)
    code, stderr = run_main(["--database-url", cli_db, "migrate"], capsys)
    assert code == 1
    assert "the database failed: could not extend file" in one_error_line(stderr)


def test_databases_of_one_server_migrated_at_once(pg_template: str) -> None:
    """The reader role's settings are shared by every database of the server: six
    migrations at once made PostgreSQL refuse most of them ("tuple concurrently updated",
    exit 1 with a traceback; found by the fuzzer while another test run migrated). The
    refused ones are tried again."""
    import asyncio

    import asyncpg

    from indexer.cli import migrate_schema
    from indexer.store.migrate import SCHEMA_VERSION

    dsns = [make_database(pg_template) for _ in range(6)]

    async def together() -> list[int]:
        conns = [await asyncpg.connect(dsn) for dsn in dsns]
        try:
            versions: list[int] = []
            for _ in range(3):
                versions += await asyncio.gather(*(migrate_schema(c) for c in conns))
            return versions
        finally:
            for conn in conns:
                await conn.close()

    try:
        assert asyncio.run(together()) == [SCHEMA_VERSION] * 18
    finally:
        for dsn in dsns:
            drop_database(dsn)


def test_serve_with_a_database_that_says_no(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli_db: str
) -> None:
    """No such database, or no such role: the app's startup failed with a traceback and
    uvicorn's exit 3 (found by the fuzzer's long run); now one line, exit 3, before
    listening. A database that is down is waited for, as before."""
    import api.server

    served: list[str] = []
    monkeypatch.setattr(api.server, "run", lambda host, port, dsn, cors: served.append(dsn))
    base = cli_db.rpartition("/")[0]
    for dsn, says in [
        (f"{base}/no_such_database_here", 'database "no_such_database_here" does not exist'),
        ("postgresql://nobody@127.0.0.1:5432/postgres", 'role "nobody" does not exist'),
    ]:
        code, stderr = run_main(["--database-url", dsn, "serve", "--port", "1"], capsys)
        assert code == 3 and says in one_error_line(stderr)
    down = "postgresql://postgres@127.0.0.1:1/none"
    with listening_socket() as probe:
        port = probe.getsockname()[1]
    code, stderr = run_main(["--database-url", down, "serve", "--port", str(port)], capsys)
    assert (code, served) == (0, [down]), stderr


def test_a_bad_database_url_in_the_environment_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """$DATABASE_URL is checked like --database-url, when a command uses it."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1:99999/d")
    code, stderr = run_main(["status"], capsys)
    assert code == 2
    assert "DATABASE_URL: not a database URL (port '99999'" in one_error_line(stderr)


def test_documented_values_still_parse() -> None:
    """What README, deploy/ and the Dockerfile pass is taken as before."""
    from indexer.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["run", "--metrics-port", "9100", "--metrics-host", "0.0.0.0"])
    assert (args.metrics_port, args.metrics_host) == (9100, "0.0.0.0")
    assert parser.parse_args(["run"]).metrics_port is None  # no metrics server
    args = parser.parse_args(["serve", "--host", "0.0.0.0", "--port", "8000", "--cors", "*"])
    assert (args.host, args.port, args.cors) == ("0.0.0.0", 8000, ["*"])
    args = parser.parse_args(["backfill", "--from", "0x10", "--to", "finalized"])
    assert (args.from_block, args.to) == (16, None)
    args = parser.parse_args(["report", "--from", "2026-01-01", "--to", "2026-02-01"])
    assert str(args.from_date) == "2026-01-01"
    args = parser.parse_args(
        ["devnet", "up", "--ports", "8545,8546", "--chains", "ethereum,base", "--block-time", "2"]
    )
    assert (args.ports, args.chains, args.block_time) == ("8545,8546", "ethereum,base", 2.0)
    args = parser.parse_args(["devnet", "scenario", "--seed", "7", "--scale", "0.5"])
    assert (args.seed, args.scale) == (7, 0.5)
