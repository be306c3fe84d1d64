"""Bad configuration and bad usage through the real CLI (a subprocess each): one clear
error line on stderr, exit code 2 (usage, configuration) or 3 (a database or RPC endpoint
that cannot be used, an endpoint serving another chain), never a traceback.

tests/test_cli.py has the first few of these (help, exit codes, a wrong chain behind a
URL for backfill); tests/test_config.py the configuration rules one by one, in-process.
The cases run concurrently (they are independent processes), then are checked one by one.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import drop_database, make_database
from tests.reliability_support import publish, run_cli

POOL = (
    '[[chains.ethereum.pools]]\naddress = "0x1111111111111111111111111111111111111111"\n'
    'oracle = "0x2222222222222222222222222222222222222222"\nstart_block = 1\n'
)
GOOD = '[chains.ethereum]\nchain_id = 1\nrpc_urls = ["http://127.0.0.1:1"]\n' + POOL


@dataclass
class Case:
    name: str
    args: Callable[[Path, str], list[str]]  # (files folder, database url) -> argv
    code: int
    message: str
    files: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    bug: str | None = None  # a known defect, reported: the case is expected to fail


def with_config(text: str | bytes, *rest: str) -> tuple[Callable[[Path, str], list[str]], dict]:
    data = text.encode() if isinstance(text, str) else text
    return (lambda d, db: ["--config", str(d / "c.toml"), "--database-url", db, *rest]), {
        "c.toml": data
    }


def case(name: str, text: str | bytes, code: int, message: str, *rest: str, **kw: Any) -> Case:
    args, files = with_config(text, *(rest or ("backfill",)))
    return Case(name, args, code, message, files=files, **kw)


CASES = [
    case("missing pools", "[chains.ethereum]\nchain_id = 1\n", 2, "pools: Field required"),
    case(
        "missing chain_id",
        GOOD.replace("chain_id = 1\n", ""),
        2,
        "chains.ethereum.chain_id: Field required",
    ),
    case(
        "wrong type: start_block",
        GOOD.replace("start_block = 1", 'start_block = "one"'),
        2,
        "start_block: Input should be a valid integer",
    ),
    case(
        "wrong type: rpc_urls",
        GOOD.replace('["http://127.0.0.1:1"]', '"http://127.0.0.1:1"'),
        2,
        "rpc_urls: Input should be a valid list",
    ),
    case(
        "wrong type: finality_depth",
        GOOD.replace("chain_id = 1\n", "chain_id = 1\nfinality_depth = 0\n"),
        2,
        "finality_depth: Input should be greater than or equal to 1",
    ),
    case(
        "wrong type: chain section",
        "[chains]\nethereum = 5\n",
        2,
        "chains.ethereum: expected a table",
    ),
    case(
        "unknown key",
        GOOD.replace("chain_id = 1\n", "chain_id = 1\ncolour = 'red'\n"),
        2,
        "chains.ethereum.colour",
    ),
    case(
        "known chain, wrong id",
        GOOD.replace("chain_id = 1", "chain_id = 10"),
        2,
        "ethereum is chain 1, not 10",
    ),
    case("not TOML", "[chains.ethereum\n", 2, "not valid TOML"),
    case("empty file", "", 2, "at least one [chains.NAME] section"),
    case(
        "unknown chain name", GOOD, 2, "unknown chain 'Ethereum'", "backfill", "--chain", "Ethereum"
    ),
    case("unknown chain name (run)", GOOD, 2, "unknown chain 'solana'", "run", "--chain", "solana"),
    Case(
        "AAVE_INDEXER_CONFIG names no file",
        lambda d, db: ["--database-url", db, "backfill"],
        2,
        "config file not found: /nonexistent/aave.toml",
        env={"AAVE_INDEXER_CONFIG": "/nonexistent/aave.toml"},
    ),
    case(
        "database that does not exist",
        GOOD,
        3,
        "cannot reach the database",
        "migrate",
    ),
    Case(
        "DATABASE_URL with an unknown role",
        lambda d, db: ["status"],
        3,
        'role "nobody" does not exist',
        env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:5432/postgres"},
    ),
    case(
        "a database url that is no url",
        GOOD,
        2,
        "database",
        "--database-url",
        "not a url",
        "migrate",
    ),
    case(
        "a config file that is not text",
        b"\xff\xfe[chains]",
        2,
        "c.toml",
    ),
]


@pytest.fixture(scope="module")
def database(pg_template: str) -> Iterator[str]:
    dsn = make_database(pg_template)
    yield dsn
    drop_database(dsn)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, database: str) -> dict[str, Any]:
    def run(c: Case) -> Any:
        folder = tmp_path_factory.mktemp("cli-case")
        for name, data in c.files.items():
            (folder / name).write_bytes(data)
        db = database
        if c.name == "database that does not exist":
            db = database.rpartition("/")[0] + "/no_such_database_here"
        return run_cli(*c.args(folder, db), timeout=60, **c.env)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([c.name for c in CASES], pool.map(run, CASES), strict=True))


def one_clean_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.parametrize(
    "c",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=c.bug)) if c.bug else c
        for c in CASES
    ],
    ids=[c.name for c in CASES],
)
def test_bad_configuration_is_one_line(c: Case, results: dict[str, Any]) -> None:
    result = results[c.name]
    line = one_clean_line(result.stderr)
    assert result.returncode == c.code, (result.returncode, result.stderr)
    assert c.message in line, line


def test_wrong_chain_behind_a_url_while_running(
    devnet: tuple[Path, dict[str, Any]], database: str, tmp_path: Path
) -> None:
    """`run` with arbitrum's section pointed at base's node: exit 3 and one line, before a
    single row is written; the other chains of the same process are not held up."""
    workdir, _ = devnet
    text = (workdir / ".devnet" / "devnet.toml").read_text()
    urls = {name: c["rpc_urls"][0] for name, c in tomllib.loads(text)["chains"].items()}
    swapped = tmp_path / "swapped.toml"
    swapped.write_text(text.replace(urls["arbitrum"], urls["base"]))
    result = run_cli(
        "--config", str(swapped), "--database-url", database, "--quiet",
        "backfill", "--chain", "arbitrum", "--chain", "polygon", timeout=120,
    )  # fmt: skip
    line = one_clean_line(result.stderr)
    assert result.returncode == 3
    assert "serves chain 8453, the config says 42161" in line
    status = run_cli("--database-url", database, "status", "--json")
    chains = {r["name"]: r for r in json.loads(status.stdout)}
    assert "arbitrum" not in chains or chains["arbitrum"]["indexed"] is None
    assert chains["polygon"]["indexed"] == chains["polygon"]["finalized_block"]  # went on
    publish(
        "cli-bad-input",
        cases=len(CASES) + 1,
        one_line_errors=len([c for c in CASES if not c.bug]) + 1,
        known_defects=[c.bug for c in CASES if c.bug],
    )
