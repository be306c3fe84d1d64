"""The Aave V3.6 market's contracts, compiled from @aave-dao/aave-v3-origin 3.6.0.

That package ships sources only. The contracts a market needs (and what they import, their
OpenZeppelin dependencies through the package's `openzeppelin-contracts/` import prefix) are
compiled once with the pinned solcjs and the settings of the package's own build (optimizer
200 runs, no IR pipeline, evm shanghai, no metadata hash), about 12 s. The output is kept by
hash of solc's version and its whole input in node_modules/.cache/aave-svr-devnet/ (beside
the sources it comes from, so every devnet of a checkout shares it; AAVE_DEVNET_ORIGIN_CACHE
moves it), so a changed package recompiles and nothing else does.

The Pool (PoolInstance, revision 10) emits DeficitCreated in a liquidation that leaves debt
without collateral and DeficitCovered in eliminateReserveDeficit, which only the provider's
UMBRELLA address may call.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from .artifacts import Artifact
from .errors import DevnetError
from .solc import run_solcjs
from .toolchain import aave_origin_sources, node_modules, solc_package

PACKAGE = "@aave-dao/aave-v3-origin"
_ROOT = f"{PACKAGE}/src/contracts/"
_LIB = "protocol/libraries/logic"
#: Contract name -> its file under src/contracts (the deployable "instances" where they exist).
PATHS: dict[str, str] = {
    "PoolAddressesProvider": "protocol/configuration/PoolAddressesProvider.sol",
    "ACLManager": "protocol/configuration/ACLManager.sol",
    "PoolInstance": "instances/PoolInstance.sol",
    "PoolConfiguratorInstance": "instances/PoolConfiguratorInstance.sol",
    "ATokenInstance": "instances/ATokenInstance.sol",
    "VariableDebtTokenInstance": "instances/VariableDebtTokenInstance.sol",
    "DefaultReserveInterestRateStrategyV2": "misc/DefaultReserveInterestRateStrategyV2.sol",
    "AaveOracle": "misc/AaveOracle.sol",
    "AaveProtocolDataProvider": "helpers/AaveProtocolDataProvider.sol",
    "BorrowLogic": f"{_LIB}/BorrowLogic.sol",
    "LiquidationLogic": f"{_LIB}/LiquidationLogic.sol",
    "PoolLogic": f"{_LIB}/PoolLogic.sol",
    "SupplyLogic": f"{_LIB}/SupplyLogic.sol",
    "FlashLoanLogic": f"{_LIB}/FlashLoanLogic.sol",
    "ConfiguratorLogic": f"{_LIB}/ConfiguratorLogic.sol",
}
#: The libraries PoolInstance and PoolConfiguratorInstance link, in a deployable order
#: (FlashLoanLogic links BorrowLogic).
LIBRARIES = (
    "BorrowLogic",
    "LiquidationLogic",
    "PoolLogic",
    "SupplyLogic",
    "FlashLoanLogic",
    "ConfiguratorLogic",
)
#: The package's import prefixes (its build's remappings) -> npm packages.
REMAPPINGS = (
    ("openzeppelin-contracts/contracts/", "@openzeppelin/contracts/"),
    ("openzeppelin-contracts-upgradeable/contracts/", "@openzeppelin/contracts-upgradeable/"),
    ("solidity-utils/contracts/", "@bgd-labs/solidity-utils/src/contracts/"),
)
_OUTPUTS = [
    "abi",
    "evm.bytecode.object",
    "evm.bytecode.linkReferences",
    "evm.deployedBytecode.object",
    "evm.deployedBytecode.linkReferences",
    "evm.deployedBytecode.immutableReferences",
]
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "shanghai",
    "metadata": {"bytecodeHash": "none"},
    "remappings": [f"{prefix}={target}" for prefix, target in REMAPPINGS],
}
_IMPORT = re.compile(r"""^\s*import\s+(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]""", re.M)


def _resolve(unit: str, path: str) -> str:
    """The source unit name an import means, as solc resolves it with the remappings."""
    if path.startswith("."):
        return posixpath.normpath(posixpath.join(posixpath.dirname(unit), path))
    for prefix, target in REMAPPINGS:
        if path.startswith(prefix):
            return target + path[len(prefix) :]
    return path


def sources() -> dict[str, str]:
    """Every file the needed contracts import, transitively, by source unit name."""
    aave_origin_sources()  # a clear error when the package is missing
    root = node_modules()
    todo = [_ROOT + rel for rel in PATHS.values()]
    out: dict[str, str] = {}
    while todo:
        unit = todo.pop()
        if unit in out:
            continue
        path = root / unit
        if not path.is_file():
            raise DevnetError(f"Aave V3.6 source missing: {path}; run `make install`")
        out[unit] = path.read_text()
        todo += [_resolve(unit, imp) for imp in _IMPORT.findall(out[unit])]
    return dict(sorted(out.items()))


def _cache_dir() -> Path:
    override = os.environ.get("AAVE_DEVNET_ORIGIN_CACHE")
    return Path(override) if override else node_modules() / ".cache" / "aave-svr-devnet"


def compile_origin() -> dict[str, dict[str, Any]]:
    """Contract name -> abi, bytecode, deployedBytecode and their link references."""
    package = solc_package()
    version = orjson.loads((package / "package.json").read_bytes())["version"]
    standard_input = {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources().items()},
        "settings": {
            **SETTINGS,
            "outputSelection": {_ROOT + rel: {"*": _OUTPUTS} for rel in PATHS.values()},
        },
    }
    encoded = orjson.dumps(standard_input, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(version.encode() + b"\0" + encoded).hexdigest()[:16]
    cached = _cache_dir() / f"aave-v3-origin-{digest}.json"
    if cached.is_file():
        result: dict[str, dict[str, Any]] = orjson.loads(cached.read_bytes())
        return result
    output = run_solcjs(package, encoded, timeout=900)
    result = {}
    for name, rel in PATHS.items():
        data = output["contracts"][_ROOT + rel][name]
        result[name] = {
            "abi": data["abi"],
            "bytecode": "0x" + data["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
            "linkReferences": data["evm"]["bytecode"]["linkReferences"],
            "deployedLinkReferences": data["evm"]["deployedBytecode"]["linkReferences"],
            "immutableReferences": data["evm"]["deployedBytecode"]["immutableReferences"],
        }
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(result))
    tmp.replace(cached)
    return result


@cache
def origin(name: str) -> Artifact:
    """One of the V3.6 contracts, as compiled (library placeholders still unlinked)."""
    data = compile_origin().get(name)
    if data is None:
        raise DevnetError(f"unknown Aave V3.6 contract {name}")
    return Artifact(
        name=name,
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        link_references=data["linkReferences"],
        deployed_link_references=data["deployedLinkReferences"],
    )


def immutable_offsets(name: str) -> list[tuple[int, int]]:
    """(start, length) of every immutable in the runtime code: where the deployed code may
    differ from the compiled one (besides libraries' own address)."""
    refs = compile_origin()[name]["immutableReferences"]
    return sorted((r["start"], r["length"]) for places in refs.values() for r in places)
