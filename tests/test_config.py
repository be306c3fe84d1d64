"""Config: the shipped default loads; every kind of bad input is one error naming the key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from indexer.config import DEFAULT_CONFIG, ConfigError, load_config, mask_url, parse_config

POOL = {"address": "0x" + "11" * 20, "oracle": "0x" + "22" * 20, "start_block": 5}


def chain(**extra: object) -> dict[str, object]:
    return {"chain_id": 1, "rpc_urls": ["http://127.0.0.1:8545"], "pools": [POOL], **extra}


def test_shipped_default_has_the_five_chains() -> None:
    config = load_config(DEFAULT_CONFIG)
    assert {c.name: c.chain_id for c in config.chains.values()} == {
        "ethereum": 1,
        "polygon": 137,
        "avalanche": 43114,
        "arbitrum": 42161,
        "base": 8453,
    }
    assert (
        config.chains["ethereum"].pools[0].address == "0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2"
    )
    assert config.chains["polygon"].first_block == 25826028
    assert config.chains["base"].svr.model == "atlas"


def test_rpc_urls_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPC_URL_ETHEREUM", "https://a.example/key1, https://b.example/key2")
    config = load_config(DEFAULT_CONFIG)
    assert config.chains["ethereum"].endpoints() == [
        "https://a.example/key1",
        "https://b.example/key2",
    ]
    assert mask_url("https://user:pw@eth.example.com/v2/SECRET") == "https://eth.example.com/***"


def test_each_endpoint_has_its_own_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETH_PAID", "https://paid.example/KEY")
    monkeypatch.delenv("ETH_UNSET", raising=False)
    endpoints = [
        {"env": "ETH_PAID", "requests_per_second": 300},
        {"url": "https://free.example/", "requests_per_second": 10},
        {"url": "http://127.0.0.1:8545"},  # the chain's requests_per_second
        {"env": "ETH_UNSET"},  # not set: no endpoint
    ]
    body = chain(rpc_urls=[], rpc_endpoints=endpoints, requests_per_second=40)
    config = parse_config({"chains": {"ethereum": body}})
    eth = config.chains["ethereum"]
    assert eth.endpoint_limits() == [
        ("https://paid.example/KEY", 300),
        ("https://free.example/", 10),
        ("http://127.0.0.1:8545", 40),
    ]
    assert eth.endpoints() == [url for url, _ in eth.endpoint_limits()]
    assert eth.rpc_env_names == ["ETH_PAID", "ETH_UNSET"]
    plain = parse_config({"chains": {"ethereum": chain(requests_per_second=7)}})
    assert plain.chains["ethereum"].endpoint_limits() == [("http://127.0.0.1:8545", 7)]


def test_env_var_names_the_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[chains.ethereum]\nchain_id = 1\nrpc_urls = ["http://x:1"]\n'
        '[[chains.ethereum.pools]]\naddress = "0x' + "11" * 20 + '"\n'
        'oracle = "0x' + "22" * 20 + '"\nstart_block = 3\n'
    )
    monkeypatch.setenv("AAVE_INDEXER_CONFIG", str(path))
    assert list(load_config().chains) == ["ethereum"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "chains: at least one"),
        ({"chainz": {}}, "chainz: unknown key"),
        (
            {"chains": {"ethereum": chain(chain_id=5)}},
            "chains.ethereum.chain_id: ethereum is chain 1",
        ),
        (
            {"chains": {"ethereum": chain(pools=[{**POOL, "address": "0x12"}])}},
            "chains.ethereum.pools[0].address: not a 20-byte 0x address",
        ),
        ({"chains": {"ethereum": chain(finality_depth="ten")}}, "chains.ethereum.finality_depth"),
        ({"chains": {"ethereum": chain(max_block_range=0)}}, "chains.ethereum.max_block_range"),
        ({"chains": {"ethereum": chain(start_block=2**64)}}, "chains.ethereum.start_block"),
        (
            {"chains": {"ethereum": chain(pools=[{**POOL, "start_block": 10**30}])}},
            "chains.ethereum.pools[0].start_block",
        ),
        ({"chains": {"ethereum": chain(rpc_urls=["ftp://x"])}}, "chains.ethereum.rpc_urls"),
        ({"chains": {"ethereum": chain(colour="red")}}, "chains.ethereum.colour"),
        (
            {"chains": {"ethereum": chain(rpc_endpoints=[{"url": "http://a:1"}])}},
            "chains.ethereum: rpc_urls and rpc_endpoints: give one of them",
        ),
        (
            {
                "chains": {
                    "ethereum": chain(rpc_urls=[], rpc_endpoints=[{"requests_per_second": 5}])
                }
            },
            "chains.ethereum.rpc_endpoints[0]: give either url or env",
        ),
        (
            {
                "chains": {
                    "ethereum": chain(
                        rpc_urls=[], rpc_endpoints=[{"url": "http://a:1", "env": "X"}]
                    )
                }
            },
            "chains.ethereum.rpc_endpoints[0]: give either url or env",
        ),
        (
            {"chains": {"ethereum": chain(rpc_urls=[], rpc_endpoints=[{"url": "ftp://a"}])}},
            "chains.ethereum.rpc_endpoints[0]: not an http(s) URL",
        ),
        (
            {
                "chains": {
                    "ethereum": chain(
                        rpc_urls=[], rpc_endpoints=[{"url": "http://a:1", "requests_per_second": 0}]
                    )
                }
            },
            "chains.ethereum.rpc_endpoints[0].requests_per_second",
        ),
        (
            {
                "chains": {
                    "ethereum": chain(rpc_urls=[], rpc_endpoints=[{"url": "http://a:1", "rps": 5}])
                }
            },
            "chains.ethereum.rpc_endpoints[0].rps",
        ),
        ({"chains": {"ethereum": chain(pools=[])}}, "chains.ethereum.pools"),
        (
            {"chains": {"ethereum": chain(svr={"model": "atlas"})}},
            "chains.ethereum.svr: model 'atlas' needs",
        ),
        (
            {"chains": {"ethereum": chain(svr={"split": [{"from": "2025-13-40", "aave_bps": 1}]})}},
            "chains.ethereum.svr.split[0].from",
        ),
        (
            {
                "chains": {
                    "ethereum": chain(svr={"split": [{"from": "2025-01-01", "aave_bps": 10001}]})
                }
            },
            "chains.ethereum.svr.split[0].aave_bps",
        ),
    ],
)
def test_bad_config_names_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "test.toml")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[chains.ethereum\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[chains]")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_config(binary)


def test_split_schedule_is_dated() -> None:
    config = parse_config(
        {
            "chains": {
                "ethereum": chain(
                    svr={
                        "split": [
                            {"from": "2025-03-29", "aave_bps": 6500},
                            {"from": "2025-09-29", "aave_bps": 6000},
                        ]
                    }
                )
            }
        }
    )
    svr = config.chains["ethereum"].svr
    assert svr.split_at(datetime(2025, 5, 1, tzinfo=UTC)).aave_bps == 6500
    assert svr.split_at(datetime(2025, 9, 29, tzinfo=UTC)).aave_bps == 6000
    assert svr.split_at(datetime(2024, 1, 1, tzinfo=UTC)).aave_bps == 6500
