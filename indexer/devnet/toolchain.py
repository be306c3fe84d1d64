"""Where the pinned node packages live: the anvil binary, the Aave artifacts and solc."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from .errors import DevnetError

_INSTALL_HINT = "run `make install`"

_ANVIL_PLATFORMS = {
    ("linux", "x86_64"): "linux-amd64",
    ("linux", "amd64"): "linux-amd64",
    ("linux", "aarch64"): "linux-arm64",
    ("linux", "arm64"): "linux-arm64",
    ("darwin", "x86_64"): "darwin-amd64",
    ("darwin", "arm64"): "darwin-arm64",
    ("windows", "amd64"): "win32-amd64",
    ("windows", "x86_64"): "win32-amd64",
}


def node_modules() -> Path:
    """The project's node_modules: next to the source tree, else in the working directory."""
    here = Path(__file__).resolve().parents[2] / "node_modules"
    for candidate in (here, Path.cwd() / "node_modules"):
        if candidate.is_dir():
            return candidate
    raise DevnetError(f"node_modules not found (looked in {here}); {_INSTALL_HINT}")


def anvil_binary() -> Path:
    """The anvil executable from @foundry-rs/anvil-<platform> (the npm postinstall may not run).

    AAVE_DEVNET_ANVIL overrides the path.
    """
    override = os.environ.get("AAVE_DEVNET_ANVIL")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise DevnetError(f"AAVE_DEVNET_ANVIL={override} is not an executable file")
        return path
    key = (platform.system().lower(), platform.machine().lower())
    suffix = _ANVIL_PLATFORMS.get(key)
    if suffix is None:
        raise DevnetError(f"no anvil package for platform {key[0]}/{key[1]}")
    exe = "anvil.exe" if key[0] == "windows" else "anvil"
    path = node_modules() / "@foundry-rs" / f"anvil-{suffix}" / "bin" / exe
    if not path.is_file():
        raise DevnetError(f"anvil binary missing at {path}; {_INSTALL_HINT}")
    if not os.access(path, os.X_OK):
        raise DevnetError(
            f"anvil binary at {path} is not executable; chmod +x it or {_INSTALL_HINT}"
        )
    return path


def aave_artifacts() -> Path:
    path = node_modules() / "@aave" / "core-v3" / "artifacts" / "contracts"
    if not path.is_dir():
        raise DevnetError(f"Aave V3 artifacts missing at {path}; {_INSTALL_HINT}")
    return path


def solc_package() -> Path:
    path = node_modules() / "solc"
    if not (path / "soljson.js").is_file():
        raise DevnetError(f"solc (solcjs) missing at {path}; {_INSTALL_HINT}")
    return path


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise DevnetError("node (Node.js) is not on PATH; it is needed to run solc")
    return node


def aave_origin_sources() -> Path:
    """The Solidity sources of @aave-dao/aave-v3-origin (no compiled artifacts ship)."""
    path = node_modules() / "@aave-dao" / "aave-v3-origin" / "src" / "contracts"
    if not path.is_dir():
        raise DevnetError(f"Aave V3.6 sources missing at {path}; {_INSTALL_HINT}")
    return path
