"""Helpers for the reliability suite (no tests here): database fingerprints and their
comparison, invariant checks, the real CLI as a subprocess, a devnet that tests may change,
and the figures each test publishes (docs/RELIABILITY.md is written from them).

A fingerprint is every row of every table the indexer writes (base rows and rollups), as
exact values: two databases are "the same" when their fingerprints are equal, value for
value (NUMERIC compared as numbers, so 1.50 equals 1.5).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from indexer.config import ChainConfig, Config, load_config
from indexer.decode.topics import LIQUIDATION_CALL
from indexer.pipeline import ChainIndexer
from tests.conftest import ROOT, free_port

CLI = str(ROOT / ".venv" / "bin" / "aave-indexer")
if not Path(CLI).exists():  # an installed package outside the project's venv
    CLI = str(Path(sys.executable).with_name("aave-indexer"))

# Base tables: every column; the natural key first so that differences read well.
BASE_TABLES = {
    "liquidations": "chain_id, tx_hash, log_index",
    "svr_oracle_updates": "chain_id, tx_hash, log_index",
    "svr_recaptures": "chain_id, tx_hash, source_index",
}
ROLLUP_TABLES = {
    "liquidation_rollup": "grain, chain_id, bucket, collateral_asset, debt_asset",
    "liquidator_rollup_daily": "chain_id, bucket, liquidator",
    "chain_rollup_daily": "chain_id, bucket",
    "chain_rollup_hourly": "chain_id, bucket",
    "svr_revenue_rollup_daily": "chain_id, bucket, aggregator",
}
ALL_TABLES = {**BASE_TABLES, **ROLLUP_TABLES, "assets": "chain_id, address"}

ROWS_ABOVE_CHECKPOINT = """
SELECT t.chain_id, count(*) FROM (
    SELECT chain_id, block_number FROM liquidations
    UNION ALL SELECT chain_id, block_number FROM svr_oracle_updates
    UNION ALL SELECT chain_id, block_number FROM svr_recaptures) t
LEFT JOIN checkpoints c ON c.chain_id = t.chain_id AND c.stream = 'main'
WHERE c.block_number IS NULL OR t.block_number > c.block_number
GROUP BY 1
"""

Fingerprint = dict[str, frozenset[tuple[Any, ...]]]


def _normal(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(sorted(value))
    return value


async def fingerprint(
    dsn: str, *, upto: dict[int, int] | None = None, tables: Iterable[str] | None = None
) -> Fingerprint:
    """Every row of the indexer's tables. With `upto` (chain id -> block), only base rows
    at or below that block of each listed chain (rollups and assets are then skipped)."""
    conn = await asyncpg.connect(dsn)
    try:
        out: Fingerprint = {}
        names = list(tables or (BASE_TABLES if upto is not None else ALL_TABLES))
        for table in names:
            if upto is not None:
                rows = []
                for chain_id, block in upto.items():
                    rows += await conn.fetch(
                        f"SELECT * FROM {table} WHERE chain_id = $1 AND block_number <= $2",
                        chain_id,
                        block,
                    )
            else:
                rows = await conn.fetch(f"SELECT * FROM {table}")
            out[table] = frozenset(tuple(_normal(v) for v in r.values()) for r in rows)
        return out
    finally:
        await conn.close()


def describe_difference(got: Fingerprint, want: Fingerprint, limit: int = 3) -> str:
    """'' when equal; otherwise per table how many rows are missing / extra, with examples."""
    lines = []
    for table in sorted(set(got) | set(want)):
        g, w = got.get(table, frozenset()), want.get(table, frozenset())
        if g == w:
            continue
        missing, extra = sorted(w - g, key=repr), sorted(g - w, key=repr)
        lines.append(
            f"{table}: {len(g)} rows vs {len(w)} expected; {len(missing)} missing "
            f"{missing[:limit]}; {len(extra)} extra {extra[:limit]}"
        )
    return "\n".join(lines)


def total_rows(fp: Fingerprint) -> dict[str, int]:
    return {table: len(rows) for table, rows in sorted(fp.items())}


async def checkpoints(dsn: str) -> dict[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT chain_id, block_number FROM checkpoints WHERE stream = 'main'"
        )
        return {r["chain_id"]: int(r["block_number"]) for r in rows}
    finally:
        await conn.close()


async def invariant_violations(dsn: str) -> list[str]:
    """I1 (no row above its chain's checkpoint) and I3 (rollups = GROUP BY of the rows)."""
    from indexer.store.rollups import rollup_drift

    conn = await asyncpg.connect(dsn)
    try:
        problems = [
            f"chain {r['chain_id']}: {r['count']} rows above the checkpoint"
            for r in await conn.fetch(ROWS_ABOVE_CHECKPOINT)
        ]
        for table, rows in (await rollup_drift(conn)).items():
            if rows:
                problems.append(f"{table}: {rows} rows differ from GROUP BY of the base rows")
        return problems
    finally:
        await conn.close()


async def clean_backfill(config: Config, dsn: str, to_block: dict[str, int] | None = None) -> None:
    """The reference: every chain of `config` backfilled in-process, no faults."""

    async def one(name: str) -> None:
        ix = ChainIndexer(config.chains[name], dsn)
        try:
            await ix.open()
            await ix.backfill(to_block[name] if to_block else None)
        finally:
            await ix.close()

    await asyncio.gather(*(one(name) for name in config.chains))


_REFERENCES: dict[str, Fingerprint] = {}


def reference_fingerprint(config_path: Path, template: str) -> Fingerprint:
    """A clean in-process backfill of a devnet (by its config), once per test process."""
    key = str(config_path)
    if key not in _REFERENCES:
        from tests.conftest import drop_database, make_database

        dsn = make_database(template)
        try:
            asyncio.run(clean_backfill(load_config(config_path), dsn))
            _REFERENCES[key] = asyncio.run(fingerprint(dsn))
        finally:
            drop_database(dsn)
    return _REFERENCES[key]


# -- the real CLI --------------------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AAVE_INDEXER_CONFIG")}
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
        cwd=ROOT,
        check=False,
    )


class CliProcess:
    """`aave-indexer ...` in the background; its stderr goes to a file we can read."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log = log
        self._file = open(log, "ab")  # noqa: SIM115 - closed in wait/kill
        self.proc = subprocess.Popen(
            [CLI, *args],
            stdout=self._file,
            stderr=self._file,
            env=cli_env(),
            cwd=ROOT,
            start_new_session=True,
        )
        self.started = time.monotonic()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> bool:
        """SIGKILL; True when the process was still running (the kill landed)."""
        landed = self.alive()
        if landed:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._file.close()
        return landed

    def stop(self, timeout: float = 30) -> int:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(10)
        self._file.close()
        return code

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._file.close()
        return code


# -- a devnet tests may change -------------------------------------------------------------


@dataclass
class MutableDevnet:
    workdir: Path
    manifest: dict[str, Any]
    chains: list[str]
    config_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.config_path = self.workdir / ".devnet" / "devnet.toml"

    def config(self) -> Config:
        return load_config(self.config_path)

    def url(self, chain: str) -> str:
        return self.config().chains[chain].endpoints()[0]

    def wave(self, seed: int, scale: float = 0.1) -> dict[str, Any]:
        """Play the crash again on the same nodes (more liquidations, SVR included)."""
        from indexer.devnet import run_scenario

        self.manifest = run_scenario(self.workdir, seed=seed, scale=scale, chains=self.chains)
        return self.manifest


_SOLC: list[Path] = []


def solc_cache(tmp_path_factory: Any) -> Path:
    """The devnet's contracts compiled once per test process (a devnet started with this
    build/ directory copied in skips solc)."""
    if not _SOLC:
        from indexer.devnet.solc import compile_contracts

        build = tmp_path_factory.mktemp("solc-build")
        compile_contracts(build)
        _SOLC.append(build)
    return _SOLC[0]


def start_mutable_devnet(
    workdir: Path, chains: list[str], seed: int, scale: float, solc_cache: Path | None = None
) -> MutableDevnet:
    """Fresh anvil nodes for `chains` on free ports, the market deployed, one crash played.
    `solc_cache`: a build/ directory of an earlier devnet to reuse its compiled contracts."""
    from indexer.devnet import devnet_up, run_scenario

    if solc_cache is not None and solc_cache.is_dir():
        shutil.copytree(solc_cache, workdir / ".devnet" / "build", dirs_exist_ok=True)
    devnet_up(workdir, ports={name: free_port() for name in chains}, chains=chains)
    manifest = run_scenario(workdir, seed=seed, scale=scale, chains=chains)
    return MutableDevnet(workdir, manifest, chains)


_SHARED: dict[str, MutableDevnet] = {}
LIVE_CHAINS = ["ethereum", "arbitrum"]  # both SVR models: MEV-Share and Atlas


def shared_devnet(name: str, tmp_path_factory: Any, config: Any, seed: int) -> MutableDevnet:
    """A devnet (ethereum + arbitrum, one crash) shared by the reliability modules that
    change it, started once per test process and stopped at its end. Tests on it take the
    chain as they find it and compare with clean runs over the chain as they leave it.

    "live": more crashes are played and blocks mined on it (the chain grows); the load
    test's one shallow reorg replaces a few empty blocks.
    "reorg": the reorg tests, alone: anvil 1.7.1 sometimes loses contract state in
    anvil_reorg on a chain that has seen much else (docs/RELIABILITY.md)."""
    if name not in _SHARED:
        workdir = tmp_path_factory.mktemp(f"{name}-devnet")
        cache = solc_cache(tmp_path_factory)
        devnet = start_mutable_devnet(workdir, LIVE_CHAINS, seed=seed, scale=0.1, solc_cache=cache)
        _SHARED[name] = devnet
        config.add_cleanup(lambda: stop_mutable_devnet(workdir))
    return _SHARED[name]


def live_devnet(tmp_path_factory: Any, config: Any) -> MutableDevnet:
    return shared_devnet("live", tmp_path_factory, config, seed=11)


def reorg_devnet(tmp_path_factory: Any, config: Any) -> MutableDevnet:
    return shared_devnet("reorg", tmp_path_factory, config, seed=12)


def stop_mutable_devnet(workdir: Path) -> None:
    from indexer.devnet import devnet_down

    devnet_down(workdir)


# -- shared by the reliability modules ---------------------------------------------------


def retune(text: str, **values: object) -> str:
    """The devnet config with some per-chain keys changed (every chain)."""
    for key, value in values.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        if n == 0:  # a key the generated file does not have: add it to every chain
            text = re.sub(r"(?m)^(chain_id = .*)$", rf"\1\n{key} = {value}", text)
    return text


async def wait_backends_gone(dsn: str, timeout: float = 5) -> None:
    """After a SIGKILL the server ends the dead client's sessions (and its locks): wait."""
    name = dsn.rpartition("/")[2]
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            others = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                "AND pid <> pg_backend_pid()",
                name,
            )
            if others == 0:
                return
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


async def wait_for_owners(dsn: str, chains: int, timeout: float = 20) -> None:
    """Until `chains` advisory locks (one per chain: its writer) are held in the database."""
    name = dsn.rpartition("/")[2]
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = await conn.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1",
                name,
            )
            if held >= chains:
                return
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


async def tail_caught_up(dsn: str, urls: dict[int, str], timeout: float = 60) -> dict[int, int]:
    """Wait until every chain's checkpoint (and its hash) is the node's head."""
    deadline = time.monotonic() + timeout
    while True:
        heads = {c: head(u) for c, u in urls.items()}
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT chain_id, block_number, block_hash FROM checkpoints")
        finally:
            await conn.close()
        stored = {r["chain_id"]: (r["block_number"], r["block_hash"]) for r in rows}
        if all(
            stored.get(c, (None, None))[0] == h
            and stored[c][1] == rpc(urls[c], "eth_getBlockByNumber", hex(h), False)["hash"]
            for c, h in heads.items()
        ):
            return heads
        if time.monotonic() > deadline:
            raise AssertionError(f"tail did not catch up: heads {heads}, stored {stored}")
        await asyncio.sleep(0.1)


def tx_request(tx: dict[str, Any]) -> dict[str, Any]:
    """A mined transaction as a request anvil_reorg can replay (the senders are
    impersonated on the devnet, so the hash stays the same)."""
    keys = ("from", "to", "input", "value", "gas", "gasPrice", "nonce")
    return {k: tx[k] for k in keys if tx.get(k) is not None}


def window(url: str, depth: int) -> tuple[int, list[dict[str, Any]]]:
    """The first block of the last `depth` blocks, and those blocks with transactions."""
    top = head(url)
    first = top - depth + 1
    return first, [rpc(url, "eth_getBlockByNumber", hex(n), True) for n in range(first, top + 1)]


# A transfer between two funded dev accounts, put into every new branch: without it a
# branch of empty blocks can come out identical to the old one (same timestamps, same
# hashes), and nothing would have been reorganised.
MARKER = {
    "from": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
    "to": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
    "value": "0x1",
}


def reorg(url: str, depth: int, placed: list[tuple[dict[str, Any], int]], marker: int) -> None:
    """Replace the last `depth` blocks: `placed` transactions at their block offsets, and
    the marker transfer at offset `marker`. Checks that the first replaced block changed."""
    first = head(url) - depth + 1
    old = rpc(url, "eth_getBlockByNumber", hex(first), False)["hash"]
    txs = [[tx_request(tx), offset] for tx, offset in placed]
    rpc(url, "anvil_reorg", depth, [*txs, [dict(MARKER), marker]])
    if marker == 0:
        assert rpc(url, "eth_getBlockByNumber", hex(first), False)["hash"] != old


# -- rpc helpers ---------------------------------------------------------------------------


def rpc(url: str, method: str, *params: Any, timeout: float = 30) -> Any:
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        answer = json.loads(resp.read())
    if answer.get("error"):
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def head(url: str) -> int:
    return int(rpc(url, "eth_blockNumber"), 16)


# -- published figures ---------------------------------------------------------------------

REPORT_ENV = "RELIABILITY_REPORT"


def publish(section: str, **figures: Any) -> None:
    """Print a test's figures, and append them to $RELIABILITY_REPORT (a JSON-lines file)
    when set: docs/RELIABILITY.md quotes them."""
    line = {"section": section, **figures}
    print(f"\nRELIABILITY {json.dumps(line, default=str)}")
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(line, default=str) + "\n")


def scaled(env: str, default: int) -> int:
    """A count a test uses, scaled up through the environment for the published figures."""
    try:
        return max(1, int(os.environ.get(env, default)))
    except ValueError:
        return default


class Follower:
    """One chain tailed in-process, checked against the node."""

    def __init__(
        self,
        chain: ChainConfig,
        dsn: str,
        *,
        poll_interval: float = 0.02,
        catch_up_timeout: float = 60,
    ) -> None:
        self.chain = chain
        self.url = chain.endpoints()[0]
        self.dsn = dsn
        self.catch_up_timeout = catch_up_timeout
        self.indexer = ChainIndexer(chain, dsn, poll_interval=poll_interval)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.indexer.open()
        await self.indexer.backfill()
        self.task = asyncio.create_task(self.indexer.tail(self.stop))

    async def caught_up(self, timeout: float | None = None) -> int:
        """Wait until the stored checkpoint and its hash equal the node's head; re-raise
        what stopped the tail if it stopped."""
        deadline = time.monotonic() + (timeout or self.catch_up_timeout)
        while True:
            assert self.task is not None
            if self.task.done():
                self.task.result()
            top = await asyncio.to_thread(head, self.url)
            block = await asyncio.to_thread(rpc, self.url, "eth_getBlockByNumber", hex(top), False)
            conn = await asyncpg.connect(self.dsn)
            try:
                row = await conn.fetchrow(
                    "SELECT block_number, block_hash FROM checkpoints WHERE chain_id = $1",
                    self.chain.chain_id,
                )
            finally:
                await conn.close()
            if row and row["block_number"] == top and row["block_hash"] == block["hash"]:
                return top
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.chain.name} did not catch up: {top} vs {row}")
            await asyncio.sleep(0.03)

    async def matches_chain(self) -> None:
        """Stored liquidations = the node's LiquidationCall logs (position and block hash)."""
        logs = await asyncio.to_thread(
            rpc,
            self.url,
            "eth_getLogs",
            {
                "fromBlock": hex(self.chain.first_block),
                "toBlock": "latest",
                "address": [pool.address for pool in self.chain.pools],
                "topics": [LIQUIDATION_CALL],
            },
        )
        chain = {(lg["transactionHash"], int(lg["logIndex"], 16), lg["blockHash"]) for lg in logs}
        conn = await asyncpg.connect(self.dsn)
        try:
            rows = await conn.fetch(
                "SELECT tx_hash, log_index, block_hash FROM liquidations WHERE chain_id = $1",
                self.chain.chain_id,
            )
        finally:
            await conn.close()
        stored = {(r["tx_hash"], r["log_index"], r["block_hash"]) for r in rows}
        assert stored == chain, (self.chain.name, len(stored - chain), len(chain - stored))

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        await self.indexer.close()
