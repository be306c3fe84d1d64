"""Configuration: one TOML file, validated into typed objects.

The shipped default (indexer/chains.toml) describes the five real chains; RPC endpoints come
from environment variables so secrets never live in the file. A bad file gives one
ConfigError naming the key, e.g. `chains.ethereum.pools[0].address: not a 20-byte address`.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from indexer.networks import CHAIN_IDS

DEFAULT_CONFIG = Path(__file__).with_name("chains.toml")
CONFIG_ENV = "AAVE_INDEXER_CONFIG"
MAX_BLOCK = 2**63 - 1  # block numbers are bigint in the database


_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class ConfigError(Exception):
    """A user-facing configuration problem: one line, naming the key."""


def _address(value: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValueError(f"not a 20-byte 0x address: {value!r}")
    return value.lower()


Address = Annotated[str, AfterValidator(_address)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PoolConfig(_Strict):
    """One Aave market: its Pool and AaveOracle. `market` names it (core, prime, ...); the
    older key `name` is read the same. Without start_block the Pool's deployment block is
    found on-chain at first start (fetch/deployment.py) and kept."""

    market: str = Field(
        default="core", min_length=1, validation_alias=AliasChoices("market", "name")
    )
    address: Address
    oracle: Address
    version: Literal[3] = 3
    start_block: int | None = Field(default=None, ge=0, le=MAX_BLOCK)


class SplitRule(_Strict):
    """From `start` on, Aave receives aave_bps / 10000 of a recapture, Chainlink the rest."""

    start: datetime = Field(alias="from")
    aave_bps: int = Field(ge=0, le=10000)

    @field_validator("start", mode="before")
    @classmethod
    def _parse_start(cls, value: object) -> object:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError(f"not an ISO date or datetime: {value!r}") from exc
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        raise ValueError('expected a date string such as "2025-03-29"')

    @property
    def name(self) -> str:
        return (
            f"{self.aave_bps / 100:g}/{(10000 - self.aave_bps) / 100:g} from {self.start:%Y-%m-%d}"
        )


class AggregatorConfig(_Strict):
    address: Address
    assets: list[Address] = Field(min_length=1)
    start_block: int = Field(default=0, ge=0, le=MAX_BLOCK)


class FeedConfig(_Strict):
    """An Aave SVR feed as the Aave address book names it (for listing and labels; which
    feeds an asset uses, and when, is read from the chain)."""

    name: str
    address: Address


class SvrConfig(_Strict):
    model: Literal["mev-share", "atlas", "none"] = "none"
    recipients: list[Address] = Field(default_factory=list)
    atlas: Address | None = None
    dapp_control: Address | None = None
    split: list[SplitRule] = Field(
        default_factory=lambda: [SplitRule.model_validate({"from": "2025-03-29", "aave_bps": 6500})]
    )
    aggregators: list[AggregatorConfig] = Field(default_factory=list)
    feeds: list[FeedConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> SvrConfig:
        if self.model == "atlas" and (self.atlas is None or self.dapp_control is None):
            raise ValueError("model 'atlas' needs both 'atlas' and 'dapp_control' addresses")
        if not self.split:
            raise ValueError("split: at least one rule is needed")
        starts = [rule.start for rule in self.split]
        if starts != sorted(starts):
            raise ValueError("split: rules must be in date order")
        return self

    def split_at(self, when: datetime) -> SplitRule:
        """The rule in force at `when` (the first rule also covers earlier times)."""
        current = self.split[0]
        for rule in self.split:
            if rule.start <= when:
                current = rule
        return current


class EndpointConfig(_Strict):
    """One RPC endpoint with its own rate limit: the URL in the file (`url`) or in an
    environment variable (`env`, so a key stays out of the file). requests_per_second:
    the provider's limit for this endpoint, counted per call (default: the chain's)."""

    url: str | None = None
    env: str | None = Field(default=None, min_length=1)
    requests_per_second: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> EndpointConfig:
        if (self.url is None) == (self.env is None):
            raise ValueError("give either url or env (the variable holding the URL)")
        if self.url is not None:
            _check_url(self.url)
        return self


def _check_url(url: str) -> None:
    if not re.match(r"^(https?|wss?)://", url):
        raise ValueError(f"not an http(s) URL: {mask_url(url)!r}")


class ChainConfig(_Strict):
    name: str
    chain_id: int = Field(gt=0, le=2**31 - 1)  # half of a two-part advisory lock key
    rpc_env: str | None = None
    rpc_urls: list[str] = Field(default_factory=list)
    rpc_endpoints: list[EndpointConfig] = Field(default_factory=list)
    start_block: int | None = Field(default=None, ge=0, le=MAX_BLOCK)
    finality_depth: int = Field(default=64, ge=1, le=100_000)
    use_finalized_tag: bool = True
    max_block_range: int = Field(default=2000, ge=1, le=MAX_BLOCK)
    requests_per_second: float = Field(default=25, gt=0)
    max_in_flight: int = Field(default=4, ge=1, le=64)
    # A backfill expected to write at least this many events (and at least as many as the
    # liquidations table holds) loads without its secondary indexes (store/bulk.py); 0: never.
    bulk_load_min_events: int = Field(default=0, ge=0)  # opt-in: bench/README.md, 1b
    block_time_seconds: float = Field(default=12, gt=0)
    poll_interval_seconds: float | None = Field(default=None, gt=0, le=60)
    native_price_asset: Address | None = None
    pools: list[PoolConfig] = Field(min_length=1)
    svr: SvrConfig = Field(default_factory=SvrConfig)

    @field_validator("rpc_urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            _check_url(url)
        return urls

    @property
    def first_block(self) -> int | None:
        """The block indexing starts at: start_block, else the lowest of the pools' start
        blocks; None while a pool's start is unknown (it is then found on-chain)."""
        if self.start_block is not None:
            return self.start_block
        starts = [pool.start_block for pool in self.pools]
        return None if None in starts else min(s for s in starts if s is not None)

    @model_validator(mode="after")
    def _markets(self) -> ChainConfig:
        names = [pool.market for pool in self.pools]
        if len(set(names)) != len(names):
            raise ValueError(f"pools: two pools share the market name {names!r}")
        if self.rpc_urls and self.rpc_endpoints:
            raise ValueError(
                "rpc_urls and rpc_endpoints: give one of them (rpc_endpoints when each URL "
                "has its own requests_per_second)"
            )
        return self

    def endpoints(self) -> list[str]:
        """RPC URLs: the file's own, else the environment variable's (comma-separated)."""
        return [url for url, _ in self.endpoint_limits()]

    def endpoint_limits(self) -> list[tuple[str, float]]:
        """Each RPC URL with its rate limit: rpc_endpoints (an `env` entry contributes each
        URL of its variable; an unset one, none), else rpc_urls, else rpc_env, at the
        chain's requests_per_second where no limit of its own is given."""
        if self.rpc_endpoints:
            out: list[tuple[str, float]] = []
            for entry in self.rpc_endpoints:
                rate = entry.requests_per_second or self.requests_per_second
                urls = [entry.url] if entry.url else _env_urls(entry.env)
                out += [(url, rate) for url in urls]
            return out
        urls = list(self.rpc_urls) if self.rpc_urls else _env_urls(self.rpc_env)
        return [(url, self.requests_per_second) for url in urls]

    @property
    def rpc_env_names(self) -> list[str]:
        """The environment variables the endpoints are read from (for hints)."""
        if self.rpc_endpoints:
            return [e.env for e in self.rpc_endpoints if e.env]
        return [self.rpc_env] if self.rpc_env and not self.rpc_urls else []


def _env_urls(name: str | None) -> list[str]:
    raw = os.environ.get(name, "") if name else ""
    return [url.strip() for url in raw.split(",") if url.strip()]


class Config(_Strict):
    chains: dict[str, ChainConfig]
    source: str = "<memory>"

    def select(self, names: list[str] | None) -> list[ChainConfig]:
        if not names:
            return list(self.chains.values())
        unknown = [n for n in names if n not in self.chains]
        if unknown:
            raise ConfigError(f"unknown chain {unknown[0]!r}; configured: {', '.join(self.chains)}")
        return [self.chains[n] for n in names]


def mask_url(url: str) -> str:
    """Hide API keys: keep scheme and host, mask the path/query and any credentials."""
    match = re.match(r"^([a-z]+://)(?:[^@/]*@)?([^/?#]+)(.*)$", url)
    if not match:
        return "***"
    scheme, host, rest = match.groups()
    return f"{scheme}{host}{'/***' if rest.strip('/') else ''}"


def _error_key(error: dict[str, object]) -> str:
    parts: list[str] = []
    loc = error.get("loc", ())
    for item in loc if isinstance(loc, tuple | list) else ():
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]" if parts else f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts) or "<root>"


def parse_config(data: dict[str, object], source: str = "<memory>") -> Config:
    chains_raw = data.get("chains")
    unknown_top = sorted(set(data) - {"chains"})
    if unknown_top:
        raise ConfigError(f"{source}: {unknown_top[0]}: unknown key (expected [chains.NAME])")
    if not isinstance(chains_raw, dict) or not chains_raw:
        raise ConfigError(f"{source}: chains: at least one [chains.NAME] section is needed")
    chains: dict[str, object] = {}
    for name, body in chains_raw.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: chains.{name}: expected a table")
        chains[name] = {"name": name, **body}
    try:
        config = Config.model_validate({"chains": chains, "source": source})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _error_key(dict(first))
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise ConfigError(f"{source}: {key}: {message}") from None
    for chain in config.chains.values():
        expected = CHAIN_IDS.get(chain.name)
        if expected is not None and expected != chain.chain_id:
            raise ConfigError(
                f"{source}: chains.{chain.name}.chain_id: {chain.name} is chain {expected}, "
                f"not {chain.chain_id}"
            )
    return config


def load_config(path: str | Path | None = None) -> Config:
    """Load --config, else $AAVE_INDEXER_CONFIG, else the shipped five-chain default."""
    chosen = Path(path) if path else None
    if chosen is None and os.environ.get(CONFIG_ENV):
        chosen = Path(os.environ[CONFIG_ENV])
    chosen = chosen or DEFAULT_CONFIG
    try:
        text = chosen.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {chosen}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {chosen}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{chosen}: not a UTF-8 text file (byte {exc.start}: {exc.reason})"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{chosen}: not valid TOML: {exc}") from None
    return parse_config(data, str(chosen))
