"""Compile the devnet's own Solidity contracts with the pinned solcjs, cached by source hash.

Build output is never committed: it is compiled from indexer/devnet/contracts/*.sol at set-up
time and kept under <workdir>/.devnet/build/contracts-<hash>.json (or in the directory named by
AAVE_DEVNET_BUILD_CACHE, to share it between work directories), so an edited source
recompiles.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import orjson

from .errors import DevnetError
from .toolchain import node_executable, solc_package

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"

_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}

# solc.compile() takes and returns standard JSON; stdout carries only that JSON.
_NODE_SCRIPT = (
    "const solc = require(process.argv[1]); let input = '';"
    "process.stdin.setEncoding('utf8'); process.stdin.on('data', d => { input += d; });"
    "process.stdin.on('end', () => { process.stdout.write(solc.compile(input)); });"
)


def _sources() -> dict[str, str]:
    files = sorted(CONTRACTS_DIR.glob("*.sol"))
    if not files:
        raise DevnetError(f"no Solidity sources in {CONTRACTS_DIR}")
    return {f.name: f.read_text() for f in files}


def compile_contracts(cache_dir: Path) -> dict[str, dict[str, Any]]:
    """Contract name -> {"abi": [...], "bytecode": "0x..", "deployedBytecode": "0x.."}."""
    shared = os.environ.get("AAVE_DEVNET_BUILD_CACHE")
    if shared:
        cache_dir = Path(shared)
    package = solc_package()
    version = orjson.loads((package / "package.json").read_bytes())["version"]
    sources = _sources()
    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": _SETTINGS,
    }
    encoded = orjson.dumps(standard_input, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(version.encode() + b"\0" + encoded).hexdigest()[:16]
    cached = cache_dir / f"contracts-{digest}.json"
    if cached.is_file():
        result: dict[str, dict[str, Any]] = orjson.loads(cached.read_bytes())
        return result
    output = run_solcjs(package, encoded)
    result = {}
    for per_file in output["contracts"].values():
        for name, data in per_file.items():
            result[name] = {
                "abi": data["abi"],
                "bytecode": "0x" + data["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
            }
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(result))
    tmp.replace(cached)
    return result


def run_solcjs(package: Path, encoded: bytes, timeout: int = 300) -> dict[str, Any]:
    """solc's standard-JSON output for `encoded` input; compile errors raise."""
    proc = subprocess.run(
        [node_executable(), "-e", _NODE_SCRIPT, str(package)],
        input=encoded,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise DevnetError(f"solc failed: {' '.join(tail) or 'no output'}")
    output: dict[str, Any] = orjson.loads(proc.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        first = errors[0]
        where = first.get("sourceLocation", {}).get("file", "?")
        raise DevnetError(f"solc could not compile {where}: {first.get('message')}")
    return output
