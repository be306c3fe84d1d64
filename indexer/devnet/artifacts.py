"""Load contract artifacts (Aave's unmodified ones, and ours from solc), link libraries and
encode calls.

Aave's artifacts are Hardhat JSON: `bytecode` holds `__$..$__` placeholders where library
addresses go, and `linkReferences` gives their byte offsets; linking fills those offsets and
nothing else, so the deployed code is the audited code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from eth_abi import encode as abi_encode
from eth_utils import keccak

from .errors import DevnetError
from .toolchain import aave_artifacts

_LIB = "protocol/libraries/logic"
AAVE_PATHS: dict[str, str] = {
    "PoolAddressesProvider": "protocol/configuration/PoolAddressesProvider.sol",
    "ACLManager": "protocol/configuration/ACLManager.sol",
    "Pool": "protocol/pool/Pool.sol",
    "L2Pool": "protocol/pool/L2Pool.sol",
    "PoolConfigurator": "protocol/pool/PoolConfigurator.sol",
    "DefaultReserveInterestRateStrategy": "protocol/pool/DefaultReserveInterestRateStrategy.sol",
    "AToken": "protocol/tokenization/AToken.sol",
    "StableDebtToken": "protocol/tokenization/StableDebtToken.sol",
    "VariableDebtToken": "protocol/tokenization/VariableDebtToken.sol",
    "AaveOracle": "misc/AaveOracle.sol",
    "AaveProtocolDataProvider": "misc/AaveProtocolDataProvider.sol",
    "MintableERC20": "mocks/tokens/MintableERC20.sol",
    "MockAggregator": "mocks/oracle/CLAggregators/MockAggregator.sol",
    "BorrowLogic": f"{_LIB}/BorrowLogic.sol",
    "BridgeLogic": f"{_LIB}/BridgeLogic.sol",
    "EModeLogic": f"{_LIB}/EModeLogic.sol",
    "FlashLoanLogic": f"{_LIB}/FlashLoanLogic.sol",
    "LiquidationLogic": f"{_LIB}/LiquidationLogic.sol",
    "PoolLogic": f"{_LIB}/PoolLogic.sol",
    "SupplyLogic": f"{_LIB}/SupplyLogic.sol",
    "ConfiguratorLogic": f"{_LIB}/ConfiguratorLogic.sol",
}

#: Libraries the Pool links, in a deployable order (FlashLoanLogic links BorrowLogic).
POOL_LIBRARIES = (
    "BorrowLogic",
    "BridgeLogic",
    "EModeLogic",
    "LiquidationLogic",
    "PoolLogic",
    "SupplyLogic",
    "FlashLoanLogic",
)


def _abi_type(param: dict[str, Any]) -> str:
    """ABI JSON parameter -> eth_abi type string (tuples spelled out)."""
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@dataclass(frozen=True)
class Function:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.inputs)})"

    @property
    def selector(self) -> bytes:
        return keccak(text=self.signature)[:4]


@dataclass
class Artifact:
    """One contract type: ABI, creation and runtime code (possibly still unlinked)."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    link_references: dict[str, dict[str, list[dict[str, int]]]] = field(default_factory=dict)
    deployed_link_references: dict[str, dict[str, list[dict[str, int]]]] = field(
        default_factory=dict
    )
    #: name -> (function, selector): the scenario encodes thousands of calls, and a lookup
    #: through Pool's ABI costs a fifth of a millisecond.
    _functions: dict[str, tuple[Function, bytes]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def function(self, name: str) -> Function:
        """By plain name, or by full signature when the name is overloaded."""
        return self._function(name)[0]

    def _function(self, name: str) -> tuple[Function, bytes]:
        known = self._functions.get(name)
        if known is not None:
            return known
        found = []
        for item in self.abi:
            if item.get("type") != "function":
                continue
            fn = Function(
                item["name"],
                tuple(_abi_type(p) for p in item["inputs"]),
                tuple(_abi_type(p) for p in item.get("outputs", [])),
            )
            if name in (fn.name, fn.signature):
                found.append(fn)
        if len(found) != 1:
            raise DevnetError(f"{self.name}: {len(found)} functions match {name!r}")
        self._functions[name] = (found[0], found[0].selector)
        return self._functions[name]

    def encode(self, name: str, *args: Any) -> str:
        fn, selector = self._function(name)
        return "0x" + (selector + abi_encode(list(fn.inputs), list(args))).hex()

    def deploy_data(self, *args: Any, libraries: dict[str, str] | None = None) -> str:
        """Creation code (linked) followed by the ABI-encoded constructor arguments."""
        code = link(self.bytecode, self.link_references, libraries or {}, self.name)
        ctor = next((i for i in self.abi if i.get("type") == "constructor"), None)
        types = [_abi_type(p) for p in ctor["inputs"]] if ctor else []
        if len(types) != len(args):
            raise DevnetError(f"{self.name} constructor takes {len(types)} arguments")
        return code + abi_encode(types, list(args)).hex()

    def linked_runtime(self, libraries: dict[str, str]) -> str:
        return link(self.deployed_bytecode, self.deployed_link_references, libraries, self.name)


def link(
    code: str,
    references: dict[str, dict[str, list[dict[str, int]]]],
    libraries: dict[str, str],
    owner: str = "contract",
) -> str:
    """Write each library's address at the byte offsets the artifact names."""
    body = bytearray(code[2:] if code.startswith("0x") else code, "ascii")
    for refs in references.values():
        for lib, places in refs.items():
            address = libraries.get(lib)
            if address is None:
                raise DevnetError(f"{owner} needs library {lib} linked")
            hex_addr = address.lower().removeprefix("0x").encode()
            for place in places:
                start = place["start"] * 2
                body[start : start + place["length"] * 2] = hex_addr
    text = body.decode()
    if "__" in text:
        raise DevnetError(f"{owner}: unlinked library placeholder left in bytecode")
    return "0x" + text


@cache
def aave(name: str) -> Artifact:
    """An artifact of @aave/core-v3, unmodified."""
    rel = AAVE_PATHS.get(name)
    if rel is None:
        raise DevnetError(f"unknown Aave artifact {name}")
    path: Path = aave_artifacts() / rel / f"{name}.json"
    if not path.is_file():
        raise DevnetError(f"Aave artifact missing: {path}; run `make install`")
    data = orjson.loads(path.read_bytes())
    return Artifact(
        name=name,
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        link_references=data.get("linkReferences", {}),
        deployed_link_references=data.get("deployedLinkReferences", {}),
    )


def from_solc(name: str, compiled: dict[str, dict[str, Any]]) -> Artifact:
    """One of the devnet's own contracts, from solc.compile_contracts output."""
    data = compiled.get(name)
    if data is None:
        raise DevnetError(f"contract {name} not in the compiled devnet sources")
    return Artifact(name, data["abi"], data["bytecode"], data["deployedBytecode"])


def event_topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


def event_signatures(artifact: Artifact) -> dict[str, str]:
    """Event name -> canonical signature, from the ABI (so tests can check topic hashes)."""
    out = {}
    for item in artifact.abi:
        if item.get("type") == "event":
            types = ",".join(_abi_type(p) for p in item["inputs"])
            out[item["name"]] = f"{item['name']}({types})"
    return out
