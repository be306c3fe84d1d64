"""The benchmarks' smoke run (`python -m bench.run --smoke`): every benchmark runs at a tiny
size and produces a result with sane fields; the counts it verifies match. Seconds, not a
measurement: the figures live in bench/README.md."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results: dict[str, Any] = json.loads(out.read_text())
    results["_elapsed"] = time.monotonic() - started
    results["_table"] = proc.stdout
    return results


def test_smoke_is_quick_and_complete(smoke: dict[str, Any]) -> None:
    # every benchmark in small, the backfill twice (one endpoint, then two): about 45 s on
    # a quiet machine
    assert smoke["_elapsed"] < 90
    assert smoke["mode"] == "smoke"
    for name in ("ingest", "backfill", "memory", "freshness", "api"):
        assert name in smoke, name
    assert "### 1. Raw ingest" in smoke["_table"]
    assert smoke["machine"]["cpus"] >= 1


def test_ingest_stored_every_event(smoke: dict[str, Any]) -> None:
    for run in smoke["ingest"]:
        assert run["stored"] == run["events"] >= 3000
        assert run["events_per_s"] > 0
        assert run["python_cpu_s"] > 0


def test_backfill_matches_the_ground_truth(smoke: dict[str, Any]) -> None:
    for run in smoke["backfill"] + smoke["memory"]:
        assert run["verified"] is True
        assert run["liquidations"] == run["expected_liquidations"] > 0
        assert set(run["chains"]) == {"ethereum", "polygon", "avalanche", "arbitrum", "base"}
        assert run["server"]["http_requests"] > 0
        assert run["server"]["calls"] >= run["server"]["http_requests"]
        assert 20 < run["peak_rss_mb"] < 2000
        assert run["events_per_s"] > 0


def test_backfill_through_two_endpoints_per_chain(smoke: dict[str, Any]) -> None:
    """The multi-endpoint run: every chain read through two replay servers, both used,
    and the data verified like a single endpoint's."""
    runs = [run for run in smoke["backfill"] if run.get("endpoints") == 2]
    assert len(runs) == 1
    run = runs[0]
    assert run["verified"] is True
    assert run["liquidations"] == run["expected_liquidations"] > 0
    each = run["server_by_endpoint"]
    assert len(each) == 2 and all(server["calls"] > 0 for server in each)
    assert sum(server["calls"] for server in each) == run["server"]["calls"]


def test_freshness_saw_every_liquidation(smoke: dict[str, Any]) -> None:
    fresh = smoke["freshness"]
    assert fresh["liquidations"] > 0
    assert 0 < fresh["min_ms"] <= fresh["p50_ms"] <= fresh["p99_ms"] <= fresh["max_ms"]
    assert fresh["max_ms"] < 30_000


def test_api_answered_every_query_without_errors(smoke: dict[str, Any]) -> None:
    sizes = smoke["api"]["sizes"]
    assert sizes
    for entry in sizes.values():
        assert entry["fill"]["rows"] > 0
        for query in ("list", "paging", "chain", "day", "svr"):
            for side in ("cold", "repeated", "sql"):
                m = entry[query][side]
                assert m["errors"] == 0
                assert m["requests"] > 0
                assert 0 < m["p50_ms"] <= m["p99_ms"]
