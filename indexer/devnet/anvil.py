"""Start and stop the anvil nodes of the devnet, one process per chain.

State lives under <workdir>/.devnet/: devnet.json (ports, pids, mining mode), <chain>.pid and
logs/<chain>.log. Nodes run in their own session so that `devnet up` can return while they
keep running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson

from .chains import CHAINS, check_chain_names, default_ports
from .errors import DevnetError
from .rpc import Rpc
from .toolchain import anvil_binary

#: Genesis time of every chain: 2026-01-30T00:00:00Z, the day before the scenario's crash.
GENESIS_TIMESTAMP = 1769731200
#: Large enough that a block never needs more than half of it (the base fee then only falls).
BLOCK_GAS_LIMIT = 1_000_000_000

_children: dict[int, subprocess.Popen[bytes]] = {}


def devnet_dir(workdir: Path) -> Path:
    return workdir / ".devnet"


def read_state(workdir: Path) -> dict[str, Any]:
    """The running devnet's description, or a DevnetError telling how to start one."""
    path = devnet_dir(workdir) / "devnet.json"
    if not path.is_file():
        raise DevnetError(f"no devnet in {workdir}; run `aave-indexer devnet up` first")
    state: dict[str, Any] = orjson.loads(path.read_bytes())
    return state


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As anvil (tokio) does: a socket of a closed connection in TIME_WAIT is no conflict.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (reaps our own children)."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        # A zombie not yet reaped by its parent is gone; but a multi-threaded process shows
        # "Z" for its leader while other threads still run, so count the threads too.
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return len(list(Path(f"/proc/{pid}/task").iterdir())) > 1
    return True


def _is_anvil(pid: int) -> bool:
    """Guard against a recycled pid: only signal a process that is an anvil."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust the pid file
    return b"anvil" in cmdline


def _log_tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1].strip()
    return "no output"


#: More blocks than any devnet mines (the default scenario's chains hold about 1,000).
STATES_IN_MEMORY = 100_000


def _anvil_args(
    binary: Path, port: int, chain_id: int, block_time: float | None, cache: Path
) -> list[str]:
    options = {
        # Old block states spill to disk; keep them in the devnet's folder (removed by
        # devnet down) rather than anvil's global temp folder, where a killed node would
        # leave them behind for good.
        "--cache-path": str(cache),
        # Every block's state in memory, none spilled: anvil_reorg back to a state anvil
        # had moved to disk (about 200 blocks deep) leaves the contracts without code.
        "--prune-history": str(STATES_IN_MEMORY),
        "--host": "127.0.0.1",
        "--port": str(port),
        "--chain-id": str(chain_id),
        "--order": "fifo",  # ready transactions in arrival order: blocks are reproducible
        "--timestamp": str(GENESIS_TIMESTAMP),
        "--gas-limit": str(BLOCK_GAS_LIMIT),
        "--balance": "1000000",
        "--color": "never",
    }
    if block_time is not None:
        options["--block-time"] = f"{block_time:g}"
    args = [str(binary)]
    for flag, value in options.items():
        args += [flag, value]
    return args


def devnet_up(
    workdir: Path,
    ports: dict[str, int] | None = None,
    chains: list[str] | None = None,
    block_time: float | None = None,
) -> None:
    """Start one anvil per chain on loopback and wait until each answers eth_chainId."""
    names = check_chain_names(chains)
    wanted = {**default_ports(), **(ports or {})}
    chosen = {name: wanted[name] for name in names}
    if block_time is not None and block_time <= 0:
        raise DevnetError("--block-time must be positive")
    if len(set(chosen.values())) != len(chosen):
        raise DevnetError(f"two chains share a port: {chosen}")
    binary = anvil_binary()
    base = devnet_dir(workdir)
    state_file = base / "devnet.json"
    if state_file.is_file():
        old = orjson.loads(state_file.read_bytes())
        running = [n for n, c in old.get("chains", {}).items() if _alive(int(c["pid"]))]
        if running:
            raise DevnetError(
                f"a devnet is already running in {workdir} ({', '.join(running)}); "
                "run `aave-indexer devnet down` first"
            )
    for name, port in chosen.items():
        if not _port_free(port):
            raise DevnetError(
                f"port {port} for {name} is already in use; stop whatever holds it or pass "
                "--ports with free ones"
            )
    # A fresh node is a fresh chain: whatever an earlier devnet left is stale now (the solc
    # cache in build/ stays; it is keyed by source hash).
    for leftover in ("state", "devnet.toml", "manifest.json", "cache"):
        path = base / leftover
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    (base / "logs").mkdir(parents=True, exist_ok=True)

    started: dict[str, dict[str, Any]] = {}
    try:
        for name, port in chosen.items():
            log_path = base / "logs" / f"{name}.log"
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    _anvil_args(binary, port, CHAINS[name], block_time, base / "cache" / name),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            _children[proc.pid] = proc
            (base / f"{name}.pid").write_text(f"{proc.pid}\n")
            started[name] = {
                "chain_id": CHAINS[name],
                "port": port,
                "url": f"http://127.0.0.1:{port}",
                "pid": proc.pid,
            }
        for name, info in started.items():
            _wait_ready(name, info, base / "logs" / f"{name}.log")
    except BaseException:
        for info in started.values():
            _stop(int(info["pid"]))
        for name in started:
            (base / f"{name}.pid").unlink(missing_ok=True)
        raise
    state = {"chains": started, "block_time": block_time}
    state_file.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))


def _wait_ready(name: str, info: dict[str, Any], log_path: Path, timeout: float = 30.0) -> None:
    rpc = Rpc(str(info["url"]), timeout=5.0)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if not _alive(int(info["pid"])):
                raise DevnetError(f"anvil for {name} exited at start: {_log_tail(log_path)}")
            try:
                chain_id = int(rpc.call("eth_chainId"), 16)
            except DevnetError:
                if time.monotonic() > deadline:
                    raise DevnetError(
                        f"anvil for {name} did not answer on port {info['port']} within "
                        f"{timeout:.0f}s (see {log_path})"
                    ) from None
                time.sleep(0.05)
                continue
            if chain_id != info["chain_id"]:
                raise DevnetError(
                    f"port {info['port']} answers chain id {chain_id}, not {name} "
                    f"({info['chain_id']}): another node holds it"
                )
            return
    finally:
        rpc.close()


def _stop(pid: int, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; returns when the process is gone."""
    if not _alive(pid) or not _is_anvil(pid):
        _children.pop(pid, None)
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=grace)


def devnet_down(workdir: Path) -> None:
    """Stop every node of the devnet in `workdir` and remove its pid files."""
    base = devnet_dir(workdir)
    pids: dict[str, int] = {}
    ports: list[int] = []
    for pid_file in sorted(base.glob("*.pid")):
        with contextlib.suppress(ValueError, OSError):
            pids[pid_file.stem] = int(pid_file.read_text().strip())
    state_file = base / "devnet.json"
    if state_file.is_file():
        with contextlib.suppress(ValueError, OSError):
            for name, info in orjson.loads(state_file.read_bytes()).get("chains", {}).items():
                pids.setdefault(name, int(info["pid"]))
                ports.append(int(info["port"]))
    for pid in pids.values():
        _stop(pid)
    left = [f"{name} (pid {pid})" for name, pid in pids.items() if _alive(pid)]
    if left:
        raise DevnetError(f"could not stop {', '.join(left)}")
    deadline = time.monotonic() + 5.0
    while ports and not all(_port_free(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.05)
    for name in pids:
        (base / f"{name}.pid").unlink(missing_ok=True)
    state_file.unlink(missing_ok=True)
    shutil.rmtree(base / "cache", ignore_errors=True)
