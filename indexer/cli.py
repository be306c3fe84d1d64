"""The command line: `aave-indexer [--config FILE] SUBCOMMAND`.

Exit codes a script can rely on: 0 success, 1 failure while running, 2 bad usage or
configuration, 3 an RPC endpoint or the database cannot be reached (or serves the wrong
chain), 4 a chain is halted and needs an operator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import os
import random
import re
import signal
import socket
import sys
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import asyncpg

from indexer import report
from indexer.config import (
    MAX_BLOCK,
    ChainConfig,
    Config,
    ConfigError,
    load_config,
    mask_url,
)
from indexer.networks import CHAIN_IDS
from indexer.pipeline import ChainHalted, ChainIndexer, PoolUnusable, Progress, WrongChain
from indexer.rpc.errors import AllEndpointsFailed, RpcError
from indexer.store import status
from indexer.store.migrate import SchemaTooNew, migrate

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_HALTED = 0, 1, 2, 3, 4
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
# `report` days: from the Unix epoch (no chain is older) to the last day a date can have.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 31)

log = logging.getLogger("aave_indexer")


class UserError(Exception):
    """One line for the user, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def one_line(text: str) -> str:
    """`text` with every unprintable character escaped: a newline, carriage return or
    direction mark in a value the user gave (argparse echoes some as they are) must not
    break, overwrite or reorder the error line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# -- logging ------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": round(record.created, 3),
                "level": record.levelname.lower(),
                "logger": record.name,
                "msg": record.getMessage(),
            }
        )


def setup_logging(json_logs: bool, verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("aiohttp", "asyncio", "web3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# -- helpers ------------------------------------------------------------------------------


def database_url(args: argparse.Namespace) -> str:
    """--database-url, else $DATABASE_URL, else the local default; refused here, with the
    option that gave it, when it is not a PostgreSQL URL at all."""
    given = getattr(args, "database_url", None)
    dsn = given or os.environ.get("DATABASE_URL") or DEFAULT_DSN
    problem = dsn_problem(dsn)
    if problem:
        raise UserError(f"{'--database-url' if given else 'DATABASE_URL'}: {problem}")
    return dsn


def dsn_problem(dsn: str) -> str | None:
    """What asyncpg would trip over in a DSN (ports out of range, a broken IPv6 host, a
    host no resolver can encode: exceptions that are not its own), else None."""
    if not dsn.startswith(("postgresql://", "postgres://")):
        return "not a database URL (expected postgresql://user@host:port/database)"
    try:
        parts = urllib.parse.urlsplit(dsn)
        query = urllib.parse.parse_qs(parts.query, strict_parsing=True) if parts.query else {}
    except ValueError as exc:
        return f"not a database URL ({exc})"
    netloc = parts.netloc.partition("@")[2] if "@" in parts.netloc else parts.netloc
    specs = [(s, True) for s in netloc.split(",") if s]
    specs += [(s, False) for v in query.get("host", []) for s in v.split(",") if s]
    ports = [p for v in query.get("port", []) for p in v.split(",")]
    for spec, quoted in specs:
        if spec.startswith("["):
            match = re.fullmatch(r"\[([^\]]+)\](?::(.*))?", spec)
            if not match:
                return f"not a database URL (a bracketed host is an IPv6 address: {spec!r})"
            host, port = match.group(1), match.group(2) or ""
        else:
            host, _, port = spec.partition(":")
        host = urllib.parse.unquote(host) if quoted else host
        if port:
            ports.append(urllib.parse.unquote(port) if quoted else port)
        if host and not host.startswith("/") and _host_problem(host, resolve=False):
            return f"not a database URL (host {host!r}: {_host_problem(host, resolve=False)})"
    for port in ports:
        if _port_problem(port):
            return f"not a database URL (port {port!r}: {_port_problem(port)})"
    return None


def load(args: argparse.Namespace) -> Config:
    try:
        return load_config(args.config)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def selected_chains(config: Config, names: Sequence[str] | None) -> list[ChainConfig]:
    try:
        # A chain named twice is indexed once (two indexers of one chain would wait for
        # each other's lock).
        chains = config.select(list(dict.fromkeys(names)) if names else None)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    for chain in chains:
        if not chain.endpoints():
            names = chain.rpc_env_names
            hint = f"set {', '.join(names)}" if names else "add rpc_urls or rpc_endpoints"
            raise UserError(f"{chain.name}: no RPC endpoint configured ({hint})")
    return chains


async def connect_db(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, timeout=10)
    except (asyncpg.ClientConfigurationError, ValueError, OverflowError) as exc:
        # ValueError and OverflowError: what asyncpg's DSN parsing lets through.
        raise UserError(f"database URL {mask_url(dsn)}: {exc}") from None
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise UserError(
            f"cannot reach the database at {mask_url(dsn)}: {exc}", EXIT_UNREACHABLE
        ) from None


def pool_markets(chains: Iterable[ChainConfig]) -> dict[tuple[int, str], str]:
    """(chain id, pool address) -> market, as the configuration names them: the markets a
    migration gives rows stored before markets were kept."""
    return {(c.chain_id, pool.address): pool.market for c in chains for pool in c.pools}


async def migrate_schema(
    conn: asyncpg.Connection, markets: dict[tuple[int, str], str] | None = None
) -> int:
    """migrate(), tried again when it lost a race on the server's shared catalogs: the
    reader role and its settings are one row for every database of the server, so two
    databases migrated at once make PostgreSQL refuse one of them ("tuple concurrently
    updated", or a duplicate role); the refused transaction changed nothing. (Two
    migrations of one database wait for each other on the migration lock.)"""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await migrate(conn, markets)
        except (asyncpg.InternalServerError, asyncpg.UniqueViolationError) as exc:
            lost_race = "concurrently updated" in str(exc) or "pg_authid" in str(exc)
            if not lost_race or attempt == 10:
                raise
            await asyncio.sleep(random.uniform(0.02, 0.1) * attempt)


async def ensure_schema(dsn: str, markets: dict[tuple[int, str], str] | None = None) -> None:
    conn = await connect_db(dsn)
    try:
        await migrate_schema(conn, markets)
    finally:
        await conn.close()


# -- progress display ---------------------------------------------------------------------


class ProgressView:
    """A live bar per chain on a terminal; one log line every few seconds otherwise."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.last_line: dict[str, float] = {}
        self.last_events: dict[str, int] = {}
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if mode == "bar":
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self._progress = RichProgress(
                TextColumn("[bold]{task.fields[chain]:<9}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    "blocks  {task.fields[events]:>9,} events  {task.fields[rate]:>8.0f} ev/s"
                ),
                TimeRemainingColumn(),
                transient=False,
            )

    def __enter__(self) -> ProgressView:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, p: Progress) -> None:
        total = max(0, p.target_block - p.start_block + 1)
        done = max(0, p.done_block - p.start_block + 1)
        if self._progress is not None:
            task = self._tasks.get(p.chain)
            if task is None:
                task = self._progress.add_task("", total=total, chain=p.chain, events=0, rate=0.0)
                self._tasks[p.chain] = task
            self._progress.update(task, completed=done, total=total, events=p.events, rate=p.rate)
            return
        if self.mode == "quiet":
            return
        now = time.monotonic()
        quiet_for = 60 if p.phase == "tail" else 5
        changed = self.last_events.get(p.chain) != p.events
        self.last_events[p.chain] = p.events
        finished = p.phase != "tail" and p.done_block >= p.target_block
        if (
            now - self.last_line.get(p.chain, 0) < quiet_for
            and not finished
            and not (p.phase == "tail" and changed)
        ):
            return
        self.last_line[p.chain] = now
        log.info(
            "%s %s: block %d/%d, %d events, %.0f events/s",
            p.chain,
            p.phase,
            p.done_block,
            p.target_block,
            p.events,
            p.rate,
        )


def progress_mode(args: argparse.Namespace) -> str:
    if args.quiet:
        return "quiet"
    if args.log_json or not sys.stderr.isatty():
        return "log"
    return "bar"


# -- commands -----------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    markets = pool_markets(load(args).chains.values())

    async def go() -> int:
        conn = await connect_db(database_url(args))
        try:
            version = await migrate_schema(conn, markets)
        finally:
            await conn.close()
        print(f"schema at version {version}")
        return EXIT_OK

    return asyncio.run(go())


async def _run_chains(args: argparse.Namespace, chains: list[ChainConfig], tail: bool) -> int:
    dsn = database_url(args)
    await ensure_schema(dsn, pool_markets(chains))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    failures: dict[str, tuple[int, str]] = {}
    with ProgressView(progress_mode(args)) as view:

        async def one(chain: ChainConfig) -> None:
            indexer = ChainIndexer(chain, dsn, on_progress=view.update)
            try:
                await indexer.open(clear_halt=getattr(args, "clear_halt", False))
                if tail:
                    await indexer.run(stop)
                else:
                    await indexer.backfill(args.to, args.from_block)
            except ChainHalted as exc:
                failures[chain.name] = (EXIT_HALTED, str(exc))
            except WrongChain as exc:
                failures[chain.name] = (EXIT_UNREACHABLE, str(exc))
            except PoolUnusable as exc:
                failures[chain.name] = (EXIT_USAGE, str(exc))
            except AllEndpointsFailed as exc:
                failures[chain.name] = (EXIT_UNREACHABLE, str(exc))
            except (RpcError, asyncpg.PostgresError, OSError) as exc:
                failures[chain.name] = (EXIT_FAILED, f"{chain.name}: {exc}")
            except Exception as exc:
                log.exception("%s: unexpected failure", chain.name)
                failures[chain.name] = (EXIT_FAILED, f"{chain.name}: {type(exc).__name__}: {exc}")
            finally:
                await indexer.close()

        runner: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(one(c) for c in chains))
        )
        stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        await asyncio.wait([runner, stopper], return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set() and not runner.done():
            # Ctrl-C: give chains a moment to finish their transaction, then cancel.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(runner, timeout=5)
        stopper.cancel()
    for _, message in failures.values():
        print(f"error: {one_line(message)}", file=sys.stderr)
    if failures:
        return max(code for code, _ in failures.values())
    return EXIT_OK


def cmd_backfill(args: argparse.Namespace) -> int:
    config = load(args)
    chains = selected_chains(config, args.chain)
    return asyncio.run(_run_chains(args, chains, tail=False))


def cmd_run(args: argparse.Namespace) -> int:
    config = load(args)
    chains = selected_chains(config, args.chain)
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(args.metrics_port, addr=args.metrics_host)
        except OSError as exc:
            raise UserError(
                f"--metrics-port: cannot listen on {args.metrics_host}:{args.metrics_port}: "
                f"{exc.strerror or exc}"
            ) from None
    return asyncio.run(_run_chains(args, chains, tail=True))


def cmd_serve(args: argparse.Namespace) -> int:
    from api.server import run as serve

    dsn = database_url(args)
    asyncio.run(check_serving_database(dsn))
    check_listen(args.host, args.port, "--port")
    serve(args.host, args.port, dsn, args.cors or [])
    return EXIT_OK


async def check_serving_database(dsn: str) -> None:
    """`serve` starts while the database is down (the API answers 503 until it is up), but
    a server that says no to this URL (no such database, role or password) failed the
    app's startup with a traceback and exit 3: refused here as the other commands refuse
    it, in one line."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        raise UserError(
            f"cannot use the database at {mask_url(dsn)}: {exc}", EXIT_UNREACHABLE
        ) from None
    except (asyncpg.ClientConfigurationError, ValueError, OverflowError) as exc:
        raise UserError(f"database URL {mask_url(dsn)}: {exc}") from None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return  # down or busy: the API waits for it
    await conn.close()


def check_listen(host: str, port: int, option: str) -> None:
    """Bind host:port once, as uvicorn will: a port in use or an address of another machine
    is one line naming the option (uvicorn logs it and exits 3, which reads as
    "unreachable")."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        raise UserError(
            f"{option}: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None


def cmd_status(args: argparse.Namespace) -> int:
    async def go() -> list[asyncpg.Record]:
        conn = await connect_db(database_url(args))
        try:
            return await status.all_chains(conn)
        except asyncpg.UndefinedTableError:
            raise UserError("the database has no schema yet; run `aave-indexer migrate`") from None
        finally:
            await conn.close()

    rows = asyncio.run(go())
    if args.json:
        print(json.dumps([{**dict(r), "updated_at": r["updated_at"].isoformat()} for r in rows]))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title="aave-indexer status")
    for column in ("chain", "head", "indexed", "finalized", "lag", "last error"):
        table.add_column(
            column, justify="right" if column not in ("chain", "last error") else "left"
        )
    for r in rows:
        lag = (
            (r["head_block"] - r["indexed"])
            if r["head_block"] is not None and r["indexed"] is not None
            else None
        )
        error = ("HALTED: " if r["halted"] else "") + (r["last_error"] or "")
        table.add_row(
            r["name"],
            _fmt(r["head_block"]),
            _fmt(r["indexed"]),
            _fmt(r["finalized_block"]),
            _fmt(lag),
            error or "-",
        )
    Console().print(table)
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from indexer.store import bulk
    from indexer.store.rollups import rollup_drift

    async def go() -> tuple[dict[str, int], bulk.BulkState]:
        conn = await connect_db(database_url(args))
        try:
            return await rollup_drift(conn), await bulk.state(conn)
        except asyncpg.UndefinedTableError:
            raise UserError("the database has no schema yet; run `aave-indexer migrate`") from None
        finally:
            await conn.close()

    drift, loading = asyncio.run(go())
    for table, rows in drift.items():
        print(f"{table}: {'ok' if rows == 0 else f'{rows} rows differ from GROUP BY'}")
    if loading.interrupted:
        print(
            f"{bulk.TABLE} indexes: {len(loading.pending)} missing after an interrupted bulk"
            " load; `aave-indexer migrate` rebuilds them"
        )
    elif loading.pending:
        chains = ", ".join(map(str, loading.live))
        print(
            f"{bulk.TABLE} indexes: {len(loading.pending)} deferred, bulk load of chain(s) {chains}"
        )
    else:
        print(f"{bulk.TABLE} indexes: ok")
    return EXIT_OK if not any(drift.values()) and not loading.interrupted else EXIT_FAILED


def cmd_report(args: argparse.Namespace) -> int:
    config = load(args)
    chain_ids = None
    if args.chain:
        try:
            chain_ids = tuple(sorted({c.chain_id for c in config.select(args.chain)}))
        except ConfigError as exc:
            raise UserError(str(exc)) from None
    if args.from_date and args.to_date and args.to_date <= args.from_date:
        raise UserError("--to must be after --from (--to is exclusive)")
    try:
        result = asyncio.run(
            report.collect(database_url(args), chain_ids, args.from_date, args.to_date)
        )
    except report.ReportError as exc:
        raise UserError(str(exc), exc.code) from None
    names = {c.chain_id: c.name for c in config.chains.values()}
    if args.json:
        print(json.dumps(report.to_json(result, names), indent=2))
    else:
        print(report.render(result, names))
    return EXIT_OK


def _fmt(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def cmd_config_check(args: argparse.Namespace) -> int:
    config = load(args)
    out: dict[str, Any] = {"source": config.source, "chains": {}}
    for chain in config.chains.values():
        data = chain.model_dump(mode="json", by_alias=True)
        data["rpc_urls"] = [mask_url(u) for u in chain.endpoints()]
        data["rpc_endpoints"] = [
            {"url": mask_url(u), "requests_per_second": rate} for u, rate in chain.endpoint_limits()
        ]
        data.pop("name", None)
        out["chains"][chain.name] = data
    print(json.dumps(out, indent=2))
    missing = [c.name for c in config.chains.values() if not c.endpoints()]
    if missing:
        names = [n for m in missing for n in config.chains[m].rpc_env_names]
        hint = f"set {', '.join(names)}" if names else "add rpc_urls or rpc_endpoints"
        print(f"warning: no RPC endpoint for {', '.join(missing)} ({hint})", file=sys.stderr)
    return EXIT_OK


# -- option values ------------------------------------------------------------------------
# Every value is checked where argparse reads it, so that a bad one is one line naming its
# option (exit 2) before anything starts. ASCII only: int() and float() also take other
# scripts' digits, underscores and surrounding blanks, which no documented value has.

_DECIMAL = re.compile(r"[0-9]+")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _port_problem(text: str) -> str | None:
    if not _DECIMAL.fullmatch(text.removeprefix("-")):
        return "not a port number"
    if not 1 <= int(text) <= 65535:
        return "ports are 1-65535"
    return None


def _port(value: str) -> int:
    problem = _port_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{problem}, got {value!r}")
    return int(value)


def _ports(value: str) -> str:
    """P1,P2,...: each a port, none twice (the devnet reads the text itself)."""
    ports = [_port(p) for p in value.split(",")]
    if len(set(ports)) != len(ports):
        raise argparse.ArgumentTypeError(f"a port is given twice: {value!r}")
    return value


def _block(value: str) -> int:
    try:
        number = int(value, 0) if value.isascii() and value == value.strip() else None
    except ValueError:
        number = None
    if number is None:
        raise argparse.ArgumentTypeError(f"not a block number: {value!r}")
    if number < 0:
        raise argparse.ArgumentTypeError("block numbers are not negative")
    if number > MAX_BLOCK:
        raise argparse.ArgumentTypeError(f"block number too large (at most {MAX_BLOCK})")
    return number


def _parse_to(value: str) -> int | None:
    if value == "finalized":
        return None
    try:
        return _block(value)
    except argparse.ArgumentTypeError as exc:
        if str(exc).startswith("not a block number"):
            raise argparse.ArgumentTypeError(
                f"expected a block number or 'finalized', got {value!r}"
            ) from None
        raise


def _seed(value: str) -> int:
    if not re.fullmatch(r"-?[0-9]{1,19}", value) or abs(int(value)) > MAX_BLOCK:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}")
    return int(value)


def _number(lowest: float, highest: float, unit: str = "") -> Any:
    """A finite number from `lowest` to `highest`: the devnet's intervals and multipliers
    (anvil cannot tick faster than `lowest`; above `highest` is a typo, or days of work)."""

    def check(value: str) -> float:
        try:
            plain = value.isascii() and value == value.strip() and "_" not in value
            number = float(value) if plain else None
        except ValueError:
            number = None
        if number is None or not math.isfinite(number):
            raise argparse.ArgumentTypeError(f"not a finite number: {value!r}")
        if not lowest <= number <= highest:
            raise argparse.ArgumentTypeError(
                f"must be from {lowest:g} to {highest:g}{unit}, got {value!r}"
            )
        return number

    return check


def _host_problem(host: str, resolve: bool = True) -> str | None:
    """None for an IP address or a well-formed host name (that resolves, if `resolve`)."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    try:
        ascii_name = host.encode("idna").decode("ascii")
    except UnicodeError:
        return "not a host name or IP address"
    labels = ascii_name.removesuffix(".").split(".")
    if len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return "not a host name or IP address"
    if resolve and not _resolves(ascii_name):
        return "no such host"
    return None


def _resolves(name: str) -> bool:
    try:
        return bool(socket.getaddrinfo(name, None, type=socket.SOCK_STREAM))
    except (OSError, UnicodeError):
        return False


def _host(value: str) -> str:
    problem = _host_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{problem}: {value!r}")
    return value


def _origins(value: str) -> list[str]:
    """--cors: "*" or comma-separated scheme://host[:port], the form of a browser's Origin
    header (a path or a trailing slash would never match one), in lower case as browsers
    send it."""
    origins = []
    for item in value.split(","):
        origin = item.strip()
        match = re.fullmatch(r"(https?)://([^/?#@:\[\]]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]+))?", origin)
        host = match.group(2).strip("[]") if match else ""
        if origin == "*":
            origins.append(origin)
            continue
        if (
            not match
            or not host.isascii()
            or _host_problem(host, resolve=False)
            or (match.group(3) and _port_problem(match.group(3)))
        ):
            raise argparse.ArgumentTypeError(
                f"expected comma-separated origins like https://app.example[:port] "
                f"(no path), got {item!r}"
            )
        origins.append(origin.lower())
    return origins


def _devnet_chains(value: str) -> str:
    """C1,C2,...: chains the devnet runs, none twice (the devnet reads the text itself)."""
    names = [n.strip() for n in value.split(",")]
    unknown = [n for n in names if n not in CHAIN_IDS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown chain {unknown[0]!r}; known: {', '.join(CHAIN_IDS)}"
        )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a chain is given twice: {value!r}")
    return value


def _date(value: str) -> date:
    """YYYY-MM-DD, a day of the indexed era (fromisoformat alone also takes 2024W011,
    20240101 and years the API cannot represent)."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}")
    day = report.parse_date(value)
    if not FIRST_DAY <= day <= LAST_DAY:
        raise argparse.ArgumentTypeError(f"dates are {FIRST_DAY} to {LAST_DAY}, got {value!r}")
    return day


def _path(value: str) -> str:
    if not value or "\0" in value:
        raise argparse.ArgumentTypeError(f"not a file name: {value!r}")
    return value


def _dsn(value: str) -> str:
    problem = dsn_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


# -- parser -------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        """`--port=--`: Python 3.11's argparse drops the "--" and gives the option an empty
        list, past its type check (uvicorn then got port []); refused as a missing value."""
        if action.option_strings and action.nargs in (None, "?") and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected one argument")
        return super()._get_values(action, arg_strings)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="aave-indexer",
        description="Index Aave V3 liquidations and Chainlink SVR revenue into PostgreSQL.",
    )
    parser.add_argument(
        "--config",
        type=_path,
        help="TOML config (default: $AAVE_INDEXER_CONFIG or the shipped five-chain config)",
    )
    parser.add_argument("--database-url", type=_dsn, help="PostgreSQL DSN (default: $DATABASE_URL)")
    parser.add_argument("--log-json", action="store_true", help="JSON log lines on stderr")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    p = sub.add_parser("migrate", help="create or update the database schema (idempotent)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("backfill", help="index from the checkpoint to the finalized block, exit")
    p.add_argument("--chain", action="append", help="chain name (repeatable; default: all)")
    p.add_argument("--from", dest="from_block", type=_block, help="skip ahead to this block")
    p.add_argument(
        "--to", type=_parse_to, default=None, help="last block, or 'finalized' (default)"
    )
    p.add_argument("--clear-halt", action="store_true", help="resume a halted chain")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("run", help="backfill, then follow new blocks (reorg-safe) until stopped")
    p.add_argument("--chain", action="append", help="chain name (repeatable; default: all)")
    p.add_argument(
        "--metrics-port", type=_port, help="serve Prometheus metrics on this port (1-65535)"
    )
    p.add_argument("--metrics-host", type=_host, default="127.0.0.1")
    p.add_argument("--clear-halt", action="store_true", help="resume a halted chain")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("serve", help="serve the GraphQL API")
    p.add_argument("--host", type=_host, default="127.0.0.1")
    p.add_argument("--port", type=_port, default=8000, help="1-65535 (default 8000)")
    p.add_argument(
        "--cors", type=_origins, help="comma-separated allowed origins (scheme://host[:port])"
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("status", help="per chain: head, indexed, finalized, lag, last error")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("verify", help="check that every rollup equals a GROUP BY of the rows")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "report", help="liquidations and SVR revenue per chain and market, with a total"
    )
    p.add_argument("--from", dest="from_date", type=_date, help="first UTC day")
    p.add_argument("--to", dest="to_date", type=_date, help="UTC day after the last (exclusive)")
    p.add_argument("--chain", action="append", help="chain name (repeatable; default: all)")
    p.add_argument("--json", action="store_true", help="exact decimal strings, as JSON")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("config", help="configuration tools")
    config_sub = p.add_subparsers(dest="config_command", metavar="ACTION", parser_class=Parser)
    config_sub.required = True
    check = config_sub.add_parser("check", help="validate and print the resolved config")
    check.set_defaults(func=cmd_config_check)

    try:
        from indexer.devnet.cli import add_devnet_parser
    except ImportError:  # the devnet ships with the package; a broken install says so below
        pass
    else:
        check_devnet_options(add_devnet_parser(sub))
    return parser


# The devnet's options that take values, and the check each gets here.
DEVNET_OPTIONS: dict[str, Any] = {
    "ports": _ports,
    "chains": _devnet_chains,
    "block_time": _number(0.01, 3600, " s"),
    "seed": _seed,
    "scale": _number(0.01, 100),
}


def check_devnet_options(devnet: argparse.ArgumentParser) -> None:
    """Give the devnet's options the parse-time checks ours have (its own checks run once
    it started, and end in exit 1), and make its ACTION required (without one it printed
    its help on stderr)."""
    for action in devnet._actions:
        if isinstance(action, argparse._SubParsersAction):
            action.required = True
            for sub in action.choices.values():
                for option in sub._actions:
                    if option.dest in DEVNET_OPTIONS and option.option_strings:
                        option.type = DEVNET_OPTIONS[option.dest]
                if any(o.dest == "ports" for o in sub._actions):
                    sub.set_defaults(check_usage=_check_devnet_ports)


def _check_devnet_ports(args: argparse.Namespace) -> None:
    """`devnet up --ports`: one port per chain started."""
    if args.ports is None:
        return
    chains = args.chains.split(",") if getattr(args, "chains", None) else list(CHAIN_IDS)
    ports = args.ports.split(",")
    if len(ports) != len(chains):
        raise UserError(
            f"aave-indexer devnet up: argument --ports: {len(ports)} ports for "
            f"{len(chains)} chains ({', '.join(c.strip() for c in chains)})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        check_usage = getattr(args, "check_usage", None)
        if check_usage is not None:
            check_usage(args)
        setup_logging(args.log_json, args.verbose)
        if args.config and not os.path.isfile(args.config):
            raise UserError(f"config file not found: {args.config}")
        code: int = args.func(args)
        return code
    except UserError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return exc.code
    except SchemaTooNew as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except asyncpg.PostgresError as exc:
        # The database failed a statement it should not have (two databases of one server
        # migrated at once: "tuple concurrently updated" on the shared roles).
        print(f"error: the database failed: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
