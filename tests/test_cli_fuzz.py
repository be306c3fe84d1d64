"""The command line fuzzed from its own parser (issue 19: bad input must not escape).

`build_parser()` is walked: every subcommand (a subcommand added later is fuzzed too), every
option of the root and of each subcommand, each given a value its type takes or one it must
refuse (empty, blank-padded, other scripts' digits, huge and negative numbers, NaN and
infinities, NUL bytes, direction marks, long strings, malformed URLs and dates), as
`--opt value` or `--opt=value`, repeated, in any order, with stray words and unknown
options. Each command line runs in process through `indexer.cli.main(argv)`, against a
fresh migrated database, and must end with exit 0, 2 or 3, no traceback, exactly one
`error:` line when refused (exit 2), at most one per chain when a chain cannot be reached
(exit 3), and the database exactly as it was (every row of every table).

Nothing long-running starts. Every RPC URL points at a closed port and the start-up probe
makes one attempt, so `run` and `backfill` end with exit 3 once the command line, the
configuration and the database got through. The API server (`api.server.run`), the metrics
server (`prometheus_client.start_http_server`) and the devnet's node start and scenario
(`devnet_up`, `run_scenario`) are replaced where they would start, by a stand-in that binds
the address they would bind (the metrics server) or records the values they were given;
`devnet down` runs for real, in an empty folder. Host names resolve only as `localhost`
(no lookup leaves the machine). `test_long_running_commands_for_real` runs `run` and
`serve` without any stand-in, as subprocesses: refused, or exit 3, or started (listening),
then stopped with SIGTERM.

CLI_FUZZ_EXAMPLES (default 300) and CLI_FUZZ_REAL (default 8) scale the two tests;
CLI_FUZZ_KEEP_GOING=1 lists every command line that breaks the contract instead of
stopping at (and shrinking) the first. docs/RELIABILITY.md has the figures of a long run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import indexer.cli as cli
from indexer.config import MAX_BLOCK
from indexer.networks import CHAIN_IDS
from tests.conftest import drop_database, make_database
from tests.faultproxy import free_port
from tests.reliability_support import CLI, publish, scaled

EXAMPLES = scaled("CLI_FUZZ_EXAMPLES", 300)
REAL = scaled("CLI_FUZZ_REAL", 8)
KEEP_GOING = os.environ.get("CLI_FUZZ_KEEP_GOING") == "1"  # list every finding, unshrunk
CLOSED = "http://127.0.0.1:1"  # nothing listens on port 1
CHAINS = list(CHAIN_IDS)
HOSTS = ["127.0.0.1", "::1", "localhost", "0.0.0.0", "nosuch.example", "192.0.2.1"]

# Values no option documents, for every option: the parser must refuse each with one line
# (or, for a free-form value such as a chain name, the command must).
# fmt: off
HOSTILE = [
    "", " ", "-", "--", "=", ",", ",,", "\x00", "a\x00b", "\u202e1", "\ufeff80", "é", "💥",
    "a\nb", "a\rb", "a\x0bb", "a\x85b", "\x1b[31mred", "\udcff",
    "-1", "0", "-0", "+5", "1_000", " 80", "80 ", "0x10", "0o17", "0b1", "010", "1e3",
    "65536", "99999", "70000", str(2**63), str(2**64), "9" * 30, "9" * 5000,
    "nan", "NaN", "inf", "-inf", "1e400", "1e-400", "4.9e-324",
    "\u0668\u0660", "\uff18\uff10", "\u0967\u0968\u0969", "\u216b",
    "localhost:80", "http://", "https://a.example/", "https://a.example/path", "*,x",
    "postgresql://", "postgresql://x@[::1", "postgresql://x@[::1]:99999/d",
    "postgresql://x@h:0/d", "postgresql://x@h:abc/d", "postgresql://x@a..b/d",
    "postgresql://x@h/d?port=99999", "postgresql://x@h/d?x", "postgres://x@:5432/d",
    "2024-02-30", "2024W011", "20240101", "0000-01-01", "0001-01-01", "9999-12-31",
    "1969-12-31", "2024-1-1", "ethereum,ethereum", "solana", "Ethereum", "x" * 300,
    "a" * 64 + ".example", "-.example", "exa mple.com", "[::1]", "::1", "256.1.1.1",
    "/", ".", "/nonexistent/c.toml", "c.toml",
]
# fmt: on


def walk(parser: argparse.ArgumentParser) -> dict[tuple[str, ...], list[argparse.Action]]:
    """Every command path of the parser (an intermediate one too: its ACTION is then
    missing), with the options of that parser (help aside)."""
    found: dict[tuple[str, ...], list[argparse.Action]] = {}

    def visit(p: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        found[path] = [
            a for a in p._actions if a.option_strings and not isinstance(a, argparse._HelpAction)
        ]
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    visit(child, (*path, name))

    visit(parser, ())
    return found


def joined(items: st.SearchStrategy[str], size: int = 5) -> st.SearchStrategy[str]:
    return st.lists(items, min_size=1, max_size=size).map(",".join)


@dataclass
class Harness:
    dsn: str
    folder: Path
    configs: list[str]
    snapshots: Snapshots
    started: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def plausible(self, action: argparse.Action) -> st.SearchStrategy[str]:
        """Values the option documents, by what it holds (an option added since gets
        values of its type)."""
        ports = st.integers(1, 65535).map(str)
        block = st.integers(0, MAX_BLOCK) | st.integers(0, 10**6)
        origin = st.builds(
            lambda s, h, p: f"{s}://{h}{p}",
            st.sampled_from(["http", "https"]),
            st.sampled_from(["app.example", "localhost", "127.0.0.1", "[::1]", "A.Example"]),
            st.sampled_from(["", ":3000", ":443"]),
        )
        by_dest: dict[str, st.SearchStrategy[str]] = {
            "config": st.sampled_from(self.configs),
            "database_url": st.just(self.dsn),
            "chain": st.sampled_from([*CHAINS, "solana"]),
            "from_block": block.map(str) | block.map(hex),
            "to": block.map(str) | st.just("finalized"),
            "metrics_port": ports,
            "port": ports,
            "metrics_host": st.sampled_from(HOSTS),
            "host": st.sampled_from(HOSTS),
            "cors": joined(origin | st.just("*"), 3),
            "from_date": st.dates(date(1970, 1, 1), date(9999, 12, 31)).map(date.isoformat),
            "to_date": st.dates(date(1970, 1, 1), date(9999, 12, 31)).map(date.isoformat),
            "ports": joined(ports),
            "chains": joined(st.sampled_from(CHAINS)),
            "block_time": st.floats(0.001, 3600).map(str) | st.sampled_from(["1", "0.5"]),
            "seed": st.integers(-(2**63) + 1, 2**63 - 1).map(str),
            "scale": st.floats(0.001, 100).map(str) | st.sampled_from(["1", "0.5", "2"]),
        }
        if action.dest in by_dest:
            return by_dest[action.dest]
        if action.type is int:
            return st.integers().map(str)
        if action.type is float:
            return st.floats().map(str)
        return st.text(max_size=10) | st.integers().map(str)

    def near_miss(self, action: argparse.Action) -> st.SearchStrategy[str]:
        """Values close to the documented ones, by what the option holds."""
        db = self.dsn.rpartition("/")[2]
        ports = [
            "0",
            "-1",
            "65536",
            "99999",
            str(2**64),
            " 80",
            "80.0",
            "0x50",
            "+80",
            "\u0668\u0660",
        ]
        blocks = ["-1", str(2**63), str(2**64), "0x" + "f" * 20, "1.5", "1e3", "\u0663", " 7"]
        dsns = [
            f"postgresql://postgres@127.0.0.1:{port}/{db}" for port in ("0", "99999", "x", "")
        ] + [
            f"postgresql://postgres@127.0.0.1:5432/{db}?port=99999",
            f"postgresql://postgres@127.0.0.1:5432/{db}?sslmode=bogus",
            f"postgresql://postgres@127.0.0.1:5432/{db}?x",
            f"postgresql://postgres@[::1:5432/{db}",
            f"postgresql://postgres@[::1]:5432/{db}",
            f"postgresql://post@gres@127.0.0.1:5432/{db}",
            f"postgresql://postgres@a..b:5432/{db}",
            f"postgresql://postgres@{'a' * 70}:5432/{db}",
            "postgresql://postgres@127.0.0.1:5432/no_such_database_here",
            "postgresql://nobody@127.0.0.1:5432/no_such_database_here",
            "postgresql://postgres@127.0.0.1:1/none",
            f"mysql://postgres@127.0.0.1:5432/{db}",
            f"  {self.dsn}",
        ]
        hosts = [
            "a" * 64,
            "a..b",
            "-a.example",
            "a_b.example",
            "localhost:80",
            "[::1]",
            "1.2.3.4.5",
            "256.0.0.1",
            "bücher.example",
            "localhost\x00",
            "local host",
            "::1%eth99",
        ]
        origins = [
            "https://a.example/",
            "ftp://a.example",
            "https://",
            "https://a.example:99999",
            "https://user@a.example",
            "*,",
            "https://a..b",
            "https://a.example,,*",
            "https://bücher.example",
            "https://[::1",
            "null",
        ]
        dates = [
            "2024-02-30",
            "2024-13-01",
            "2024-1-1",
            "20240101",
            "2024W011",
            "2024-01-01T00:00",
            "0001-01-01",
            "1969-12-31",
            "0000-00-00",
            "+2024-01-01",
        ]
        numbers = ["0", "-1", "nan", "inf", "1e400", "1e-400", "4.9e-324", "1_0", "0x1", "3601"]
        by_dest: dict[str, list[str]] = {
            "config": ["", "/", str(self.folder), "\x00", "no/such/file.toml"],
            "database_url": dsns,
            "chain": ["", " ethereum", "ETHEREUM", "ethereum,polygon", "\u202eethereum"],
            "from_block": blocks,
            "to": [*blocks, "Finalized", "latest", "safe"],
            "metrics_port": ports,
            "port": ports,
            "metrics_host": hosts,
            "host": hosts,
            "cors": origins,
            "from_date": dates,
            "to_date": dates,
            "ports": ["", "1,,2", "8545,8545", "1,2,3,4,5,6", "8545;8546", *ports],
            "chains": ["", ",", "ethereum,,base", "ethereum,ethereum", " ethereum", "solana"],
            "block_time": numbers,
            "seed": ["1.5", "-", "9" * 20, "0x10", " 1", "\u0661"],
            "scale": [*numbers, "101", "0.001"],
        }
        return st.sampled_from(by_dest.get(action.dest, HOSTILE))

    def value(self, action: argparse.Action, valid: bool) -> st.SearchStrategy[str]:
        if valid:
            return self.plausible(action)
        hostile = (
            st.sampled_from(HOSTILE)
            | st.text(max_size=20)
            | st.integers(-(2**70), 2**70).map(str)
            | st.floats().map(str)
        )
        return self.plausible(action) | self.near_miss(action) | self.near_miss(action) | hostile

    def argv(self, data: st.DataObject) -> list[str]:
        commands = walk(cli.build_parser())
        path = data.draw(st.sampled_from(sorted(commands)), label="command")
        valid = data.draw(st.booleans(), label="valid")  # documented values only
        argv = self.options(data, commands[()], valid)
        argv += list(path)
        if path:
            argv += self.options(data, commands[path], valid)
        if not valid and data.draw(st.integers(0, 4), label="stray") == 0:
            stray = st.sampled_from(["--nope", "extra", "-x", "--help", "--", "-h"])
            argv.insert(data.draw(st.integers(0, len(argv))), data.draw(stray | st.text()))
        return argv

    def options(
        self, data: st.DataObject, actions: list[argparse.Action], valid: bool
    ) -> list[str]:
        if not actions:
            return []
        chosen = data.draw(st.lists(st.sampled_from(actions), max_size=5), label="options")
        argv: list[str] = []
        for action in chosen:
            flag = data.draw(st.sampled_from(action.option_strings))
            if data.draw(st.integers(0, 9)) == 0 and flag.startswith("--") and len(flag) > 4:
                flag = flag[: data.draw(st.integers(3, len(flag)))]  # an abbreviation
            if action.nargs == 0:
                argv.append(flag if valid or data.draw(st.integers(0, 9)) else f"{flag}=x")
                continue
            value = data.draw(self.value(action, valid), label=flag)
            if data.draw(st.booleans()):
                argv.append(f"{flag}={value}")
            else:
                argv += [flag, value]
        return argv


class Started(BaseException):
    """Raised where a devnet command would start its work: it got that far."""


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def run_main(argv: list[str]) -> Outcome:
    """indexer.cli.main(argv), its output captured; the logging it sets up undone."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as exc:  # --help
                code = exc.code if isinstance(exc.code, int) else 1
            except Started:
                code = 0
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return Outcome(code, out.getvalue(), err.getvalue())


class Snapshots:
    """Every table's row count and a hash of its rows, over one connection kept open on a
    loop of its own (main() runs asyncio.run itself)."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.loop.run_until_complete(asyncpg.connect(dsn))

    def take(self) -> dict[str, str]:
        return self.loop.run_until_complete(self._take())

    async def _take(self) -> dict[str, str]:
        tables = await self.conn.fetch(
            "SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
        )
        sql = " UNION ALL ".join(
            f"SELECT {i} AS i, count(*) || ':' || coalesce(md5(string_agg(x::text, ',' "
            f"ORDER BY x::text)), '') AS h FROM {r['t']} x"
            for i, r in enumerate(tables)
        )
        rows = {r["i"]: r["h"] for r in await self.conn.fetch(sql)}
        return {r["t"]: rows[i] for i, r in enumerate(tables)}

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


VALID_CONFIG = f"""
[chains.ethereum]
chain_id = 1
rpc_urls = ["{CLOSED}"]
[[chains.ethereum.pools]]
address = "0x1111111111111111111111111111111111111111"
oracle = "0x2222222222222222222222222222222222222222"
start_block = 1
"""


@pytest.fixture(scope="module")
def harness(pg_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    dsn = make_database(pg_template)
    folder = tmp_path_factory.mktemp("cli-fuzz")
    (folder / "good.toml").write_text(VALID_CONFIG)
    (folder / "bad.toml").write_text("[chains.ethereum\n")
    (folder / "binary.toml").write_bytes(b"\xff\xfe[chains]")
    configs = [str(folder / n) for n in ("good.toml", "bad.toml", "binary.toml", "none.toml")]
    h = Harness(dsn, folder, [*configs, str(folder)], Snapshots(dsn))

    import prometheus_client
    import uvicorn

    import indexer.devnet.anvil
    import indexer.devnet.runner
    import indexer.pipeline

    real_metrics = prometheus_client.start_http_server

    async def serving(server: uvicorn.Server) -> None:
        """uvicorn started (lifespan, bind): note where it listens; it then shuts down."""
        bound = {s.getsockname()[1] for srv in server.servers for s in srv.sockets}
        h.started.append(("serve", {"asked": server.config.port, "bound": bound}))

    def metrics(port: int, addr: str = "0.0.0.0") -> Any:
        httpd, thread = real_metrics(port, addr)
        h.started.append(("metrics", {"asked": port, "bound": {httpd.server_address[1]}}))
        httpd.shutdown()
        httpd.server_close()
        return httpd, thread

    def started(what: str) -> Any:
        def stop(*args: Any, **kwargs: Any) -> None:
            h.started.append((what, {}))
            raise Started(what)

        return stop

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("DATABASE_URL", dsn)
        mp.delenv("AAVE_INDEXER_CONFIG", raising=False)
        for name in CHAINS:
            mp.setenv(f"RPC_URL_{name.upper()}", CLOSED)
        mp.setattr(indexer.pipeline, "OPEN_ATTEMPTS", 1)
        mp.setattr(
            cli, "_resolves", lambda name: name.rstrip(".").lower() == "localhost", raising=False
        )
        mp.setattr(uvicorn.Server, "main_loop", serving)
        mp.setattr(prometheus_client, "start_http_server", metrics)
        # The devnet: its own checks run, then it would start anvil or read the devnet.
        mp.setattr(indexer.devnet.anvil, "anvil_binary", started("devnet up"))
        mp.setattr(indexer.devnet.runner, "read_state", started("devnet scenario"))
        yield h
    h.snapshots.close()
    drop_database(dsn)


def bind_once(host: str, port: int) -> None:
    """What a server does first with its address: bind it (then it would listen)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)


def check(argv: list[str], result: Outcome, chains: int = len(CHAINS)) -> None:
    """The contract of every command line, whatever it is."""
    where = f"argv={argv!r}\nexit={result.code}\nstderr={result.stderr}"
    assert result.code in (0, 2, 3), where
    assert "Traceback" not in result.stderr + result.stdout, where
    # A line ends at a newline; the user's own control characters are shown escaped (a
    # raw \r, \x0b or \x85 would break or overwrite the line on a terminal).
    lines = [line for line in result.stderr.split("\n") if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert all(line.isprintable() for line in errors), where
    if result.code == 2:
        assert len(lines) == 1 and errors, where
    elif result.code == 3:
        assert 1 <= len(errors) <= chains and len(set(errors)) == len(errors), where
    else:
        assert not errors, where


def test_generated_command_lines(harness: Harness) -> None:
    codes: Counter[str] = Counter()
    started: Counter[str] = Counter()
    findings: list[tuple[list[str], str]] = []
    slowest = 0.0

    def examine(argv: list[str]) -> None:
        nonlocal slowest
        before = harness.snapshots.take()
        harness.started.clear()
        begun = time.monotonic()
        result = run_main(argv)
        took = time.monotonic() - begun
        assert took < 20, (argv, took)
        slowest = max(slowest, took)
        check(argv, result)
        assert harness.snapshots.take() == before, f"argv={argv!r} wrote to the database"
        for what, values in harness.started:
            # Started: the command went on (`run` then meets the closed RPC port), on the
            # port it was given.
            assert result.code == (3 if what == "metrics" else 0), (argv, what, result.stderr)
            assert values.get("bound", {values.get("asked")}) == {values.get("asked")}, argv
            started[what] += 1
        codes[f"{command_of(argv)} {result.code}"] += 1

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        argv = harness.argv(data)
        if not KEEP_GOING:
            examine(argv)  # the first failure is shrunk and reported
            return
        try:
            examine(argv)
        except Exception as exc:  # a long run lists every finding
            what = " | ".join(line for line in str(exc).splitlines() if line.strip())
            findings.append((argv, f"{type(exc).__name__}: {what[:800]}"))

    begun = time.monotonic()
    one()
    publish(
        "cli-fuzz",
        cases=sum(codes.values()) + len(findings),
        seconds=round(time.monotonic() - begun, 1),
        slowest_case_s=round(slowest, 2),
        exit_codes=dict(sorted(codes.items())),
        started=dict(started),
        findings=len(findings),
    )
    for argv, what in findings:
        print(f"FINDING {argv!r}: {what}")
    assert not findings, f"{len(findings)} command lines broke the contract (FINDING lines)"


def command_of(argv: list[str]) -> str:
    """The (sub)command words of a command line, for the figures."""
    commands = walk(cli.build_parser())
    words = [a for a in argv if any(a in path for path in commands)]
    path: tuple[str, ...] = ()
    for word in words:
        if (*path, word) in commands:
            path = (*path, word)
    return " ".join(path) or "(none)"


# -- `run` and `serve` for real ------------------------------------------------------------

REAL_HOSTS = ["127.0.0.1", "localhost", "0.0.0.0", "::1", "a..b", "-x", "256.0.0.1", "192.0.2.1"]


@dataclass(frozen=True)
class RealOutcome:
    argv: list[str]
    code: int
    stderr: str
    started: bool  # listening on the port asked, then stopped with SIGTERM


def real_argv(data: st.DataObject, harness: Harness, path: tuple[str, ...]) -> list[str]:
    """`run` or `serve` with their options and the global ones; hosts are literal, or
    malformed (the subprocess's resolver is the real one: nothing is looked up)."""
    commands = walk(cli.build_parser())
    valid = data.draw(st.integers(0, 2)) > 0
    argv: list[str] = []
    for scope in ((), path):
        chosen = data.draw(st.lists(st.sampled_from(commands[scope]), max_size=3))
        for action in chosen:
            flag = action.option_strings[-1]
            if action.nargs == 0:
                argv.append(flag)
                continue
            if action.dest in ("host", "metrics_host"):
                value = data.draw(st.sampled_from(REAL_HOSTS[:4] if valid else REAL_HOSTS))
            elif action.dest in ("port", "metrics_port") and valid:
                value = str(free_port())
            else:
                value = data.draw(harness.value(action, valid))
            argv += [f"{flag}={value}".replace("\x00", "")]  # exec() takes no NUL
        if not scope:
            argv += path
    if valid and path == ("serve",) and not any(a.startswith("--port=") for a in argv):
        argv.append(f"--port={free_port()}")  # not 8000: another server may have it
    return argv


def run_real(argv: list[str], folder: Path, timeout: float = 30) -> RealOutcome:
    """The real CLI: it ends by itself, or listens on its --port (serve) and is stopped."""
    err = folder / f"stderr-{os.getpid()}-{time.monotonic_ns()}"
    with open(err, "wb") as stderr:
        proc = subprocess.Popen(
            [CLI, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
        )
    started = False
    port = serve_port(argv)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            said = f":{port} (Press CTRL+C" in err.read_text(errors="replace")
            if port is not None and said and listening(port):
                started = True
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            code = -9  # neither ended nor listening on the port asked
        else:
            code = proc.returncode
    return RealOutcome(argv, code, err.read_text(errors="backslashreplace"), started)


def serve_port(argv: list[str]) -> int | None:
    """The port `serve` was asked for, if the command line is one that would start."""
    if "serve" not in argv:
        return None
    port = 8000
    for arg in argv[argv.index("serve") :]:
        if arg.startswith("--port="):
            value = arg.partition("=")[2]
            port = int(value) if value.isascii() and value.isdigit() else -1
    return port if 0 < port < 65536 else None


def listening(port: int) -> bool:
    for host in ("127.0.0.1", "::1"):
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
    return False


def test_long_running_commands_for_real(harness: Harness) -> None:
    """`run` and `serve` without stand-ins: refused (2), unreachable RPC (3, `run`), or
    listening on the port asked and stopped by SIGTERM with exit 0."""
    from concurrent.futures import ThreadPoolExecutor

    drawn: list[list[str]] = []

    @settings(max_examples=REAL, derandomize=True, database=None, deadline=None)
    @given(data=st.data())
    def draw(data: st.DataObject) -> None:
        path = data.draw(st.sampled_from([("serve",), ("run",)]))
        drawn.append(real_argv(data, harness, path))

    draw()
    before = harness.snapshots.take()
    begun = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda a: run_real(a, harness.folder), drawn))
    findings: list[str] = []
    for outcome in outcomes:
        try:
            if outcome.started:
                # uvicorn shuts down, then ends by the SIGTERM it caught, as a supervisor
                # expects.
                where = f"argv={outcome.argv!r}\nstderr={outcome.stderr}"
                assert outcome.code in (0, -signal.SIGTERM), where
                assert "Traceback" not in outcome.stderr, where
                assert "ERROR" not in outcome.stderr, where
            else:
                check(outcome.argv, Outcome(outcome.code, "", outcome.stderr))
                assert outcome.code != 0 or "--help" in outcome.argv, outcome
        except AssertionError as exc:
            findings.append(str(exc))
    assert harness.snapshots.take() == before
    publish(
        "cli-fuzz-real",
        cases=len(outcomes),
        seconds=round(time.monotonic() - begun, 1),
        started=sum(o.started for o in outcomes),
        exit_codes=dict(Counter(f"{command_of(o.argv)} {o.code}" for o in outcomes)),
        findings=len(findings),
    )
    assert not findings, "\n\n".join(findings)
