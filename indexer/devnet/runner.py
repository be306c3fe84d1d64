"""run_scenario: deploy (once per node) and play the crash on every chain, in parallel.

Per chain the deployment and everything the scenario recorded is kept in
.devnet/state/<chain>.json, so a second run on the same nodes adds to the manifest instead
of forgetting the first. devnet.toml and manifest.json are rewritten from that state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from . import manifest as mf
from .anvil import GENESIS_TIMESTAMP, devnet_dir, read_state
from .chains import CHAINS, PROFILES, check_chain_names
from .deploy import Deployment, deploy_market, fund_actors
from .errors import DevnetError
from .prices import price_path
from .rpc import Rpc
from .scenario import DAY, ChainScenario
from .session import ChainSession
from .solc import compile_contracts

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _state_path(workdir: Path, chain: str) -> Path:
    return devnet_dir(workdir) / "state" / f"{chain}.json"


def _load_chain_state(workdir: Path, chain: str) -> dict[str, Any] | None:
    path = _state_path(workdir, chain)
    if not path.is_file():
        return None
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def _save_chain_state(workdir: Path, chain: str, state: dict[str, Any]) -> None:
    path = _state_path(workdir, chain)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(state))
    tmp.replace(path)


def _crash_block(head: int, scale: float) -> int:
    """First block of the crash: the same on every fresh chain, so block numbers align."""
    most = max(p.borrowers for p in PROFILES.values())
    needed = head + 40 + 2 * math.ceil(most * scale / 120)
    return max(100, -(-needed // 100) * 100)


def _day0(head_time: int) -> int:
    """Midnight UTC of the day the positions open (2026-01-30 on a fresh chain)."""
    if head_time < GENESIS_TIMESTAMP + 1800:
        return GENESIS_TIMESTAMP
    return (head_time // DAY + 1) * DAY


def _play_chain(
    workdir: Path,
    chain: str,
    url: str,
    compiled: dict[str, dict[str, Any]],
    prices: dict[str, list[int]],
    seed: int,
    scale: float,
    block_time: float | None,
    log: Progress,
) -> dict[str, Any]:
    rpc = Rpc(url)
    try:
        try:
            chain_id = int(rpc.call("eth_chainId"), 16)
        except DevnetError as exc:
            raise DevnetError(f"{chain} node at {url} is not running; run `devnet up`") from exc
        if chain_id != CHAINS[chain]:
            raise DevnetError(f"{url} is chain {chain_id}, not {chain} ({CHAINS[chain]})")
        rpc.call("evm_setIntervalMining", 0)
        rpc.call("evm_setAutomine", False)
        # Empty blocks get timestamps last + interval (not the wall clock): same hashes per run.
        rpc.call("anvil_setBlockTimestampInterval", PROFILES[chain].block_time)
        try:
            rpc.call("anvil_autoImpersonateAccount", True)
            return _play_paused(workdir, chain, rpc, compiled, prices, seed, scale, log)
        finally:
            rpc.call("anvil_removeBlockTimestampInterval")
            if block_time is not None:
                # The RPC takes whole seconds only; anvil's --block-time also takes fractions.
                seconds = max(1, round(block_time))
                if seconds != block_time:
                    log(f"{chain}: interval mining resumes every {seconds}s, not {block_time:g}s")
                rpc.call("evm_setIntervalMining", seconds)
            else:
                rpc.call("evm_setAutomine", True)
    finally:
        rpc.close()


def _play_paused(
    workdir: Path,
    chain: str,
    rpc: Rpc,
    compiled: dict[str, dict[str, Any]],
    prices: dict[str, list[int]],
    seed: int,
    scale: float,
    log: Progress,
) -> dict[str, Any]:
    session = ChainSession(chain, rpc, CHAINS[chain])
    state = _load_chain_state(workdir, chain)
    deployment: Deployment | None = None
    if state is not None:
        deployment = Deployment.from_json(state["deployment"])
        if rpc.call("eth_getCode", deployment.core.pool, "latest") in ("0x", None):
            deployment, state = None, None  # a different node now answers on this port
    head_at_start = session.head
    if deployment is None:
        deployment, sources = deploy_market(session, compiled)
        fund_actors(session, deployment)
        pools = ", ".join(f"{m.name} {m.pool}" for m in deployment.markets.values())
        log(f"{chain}: Aave V3 deployed (pools: {pools})")
        state = {
            "deployment": deployment.to_json(),
            "runs": [],
            "journal": {
                "liquidations": [],
                "oracle_updates": [],
                "recaptures": [],
                "sources": sources,
                "metacalls": [],
                "deficits": [],
            },
        }
    assert state is not None
    run = len(state["runs"])
    scenario = ChainScenario(session, deployment, compiled, prices, seed, scale, run, log)
    journal = scenario.play(_day0(session.head_time), _crash_block(head_at_start, scale))
    for key in ("liquidations", "oracle_updates", "recaptures", "sources", "metacalls", "deficits"):
        state["journal"].setdefault(key, []).extend(getattr(journal, key))
    state["deployment"] = deployment.to_json()  # sources switched during the run
    state["runs"].append({"seed": seed, "scale": scale})
    _save_chain_state(workdir, chain, state)
    svr = sum(1 for e in journal.liquidations if e["svr"])
    log(
        f"{chain}: {len(journal.liquidations)} liquidations ({svr} SVR), "
        f"{len(journal.recaptures)} recaptures"
    )
    return state


def run_scenario(
    workdir: Path,
    seed: int = 1,
    scale: float = 1.0,
    chains: list[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Deploy where needed, play the crash, write devnet.toml and manifest.json.

    Returns the manifest (see manifest.json); `progress` receives one-line status messages.
    """
    if scale <= 0:
        raise DevnetError("--scale must be positive")
    log = progress or _quiet
    devnet = read_state(workdir)
    running = devnet["chains"]
    names = check_chain_names(chains) if chains else [n for n in CHAINS if n in running]
    missing = [n for n in names if n not in running]
    if missing:
        raise DevnetError(
            f"chain(s) {', '.join(missing)} not in the running devnet; "
            "start them with `devnet up --chains ...`"
        )
    base = devnet_dir(workdir)
    compiled = compile_contracts(base / "build")
    prices = price_path(seed)
    block_time = devnet["block_time"]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {
            name: pool.submit(
                _play_chain,
                workdir,
                name,
                running[name]["url"],
                compiled,
                prices,
                seed,
                scale,
                block_time,
                log,
            )
            for name in names
        }
        errors = []
        for name, future in futures.items():
            exc = future.exception()
            if exc is not None:
                errors.append((name, exc))
    if errors:
        name, exc = errors[0]
        if isinstance(exc, DevnetError):
            raise DevnetError(f"{name}: {exc}") from exc
        raise exc
    return write_outputs(workdir, seed, scale)


def write_outputs(workdir: Path, seed: int, scale: float) -> dict[str, Any]:
    """devnet.toml and manifest.json from every chain's saved state."""
    devnet = read_state(workdir)
    deployments: dict[str, Deployment] = {}
    chain_entries: dict[str, Any] = {}
    for name in CHAINS:
        state = _load_chain_state(workdir, name)
        if state is None or name not in devnet["chains"]:
            continue
        deployment = Deployment.from_json(state["deployment"])
        deployments[name] = deployment
        chain_entries[name] = {
            **mf.chain_manifest(deployment, state["journal"]),
            "runs": state["runs"],
        }
    urls = {n: devnet["chains"][n]["url"] for n in deployments}
    base = devnet_dir(workdir)
    (base / "devnet.toml").write_text(mf.devnet_toml(deployments, urls))
    manifest = {"seed": seed, "scale": scale, "chains": chain_entries}
    mf.write_manifest(base / "manifest.json", manifest)
    return manifest
