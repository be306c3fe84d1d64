"""Provider profiles: how a paid JSON-RPC provider limits and fails, and the exact texts its
errors carry (as captured from the real services), so that the indexer's range splitting,
retry and back-off code meet what production meets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# eth_getLogs limit styles
LOGS_NONE = "none"  # no limit at all
LOGS_ALCHEMY = "alchemy"  # free up to a block span, else a cap on the number of logs
LOGS_INFURA = "infura"  # a cap on the number of logs (and a hard span limit if set)
LOGS_RANGE = "range"  # a hard block-span limit regardless of the result size


@dataclass(frozen=True)
class Profile:
    name: str
    latency_s: float = 0.0  # added to every HTTP request (asyncio.sleep, no CPU)
    latency_jitter_s: float = 0.0  # plus uniform(0, jitter)
    logs_style: str = LOGS_NONE
    logs_free_span: int | None = None  # Alchemy: spans up to this are never capped
    logs_max_results: int | None = None  # cap on logs in one response
    logs_max_span: int | None = None  # hard limit on toBlock - fromBlock + 1
    logs_hard_max_results: int | None = None  # even a free span fails above this ("timeout")
    requests_per_second: float | None = None  # token bucket per chain endpoint -> HTTP 429
    rate_limit_style: str = "generic"  # "alchemy" | "infura" | "generic": body of the 429
    error_5xx_rate: float = 0.0  # share of HTTP requests answered 500/502/503
    timeout_rate: float = 0.0  # share of HTTP requests that hang for hang_s, then 504
    hang_s: float = 60.0
    finality_lag: int | None = None  # finalized = head - lag; None: the chain's finality depth
    beyond_head: str = "clamp"  # eth_getLogs toBlock above the head: "clamp" | "error"
    max_batch: int | None = None  # longest JSON-RPC batch accepted
    # logs carry `blockTimestamp` (geth >= 1.16, reth, erigon 3, besu, anvil do; whether a
    # provider passes it on varies, so the provider profiles default to without)
    logs_block_timestamp: bool = False
    # what the generated indexer config asks for
    config_max_block_range: int = 2000
    config_requests_per_second: int = 300

    def with_overrides(self, **changes: Any) -> Profile:
        return dataclasses.replace(self, **changes)


# a typical paid plan: Alchemy's range rule, a rate limit and a little unreliability
DEFAULT = Profile(
    name="default",
    latency_s=0.030,
    logs_style=LOGS_ALCHEMY,
    logs_free_span=2000,
    logs_max_results=10_000,
    logs_hard_max_results=100_000,
    requests_per_second=300,
    rate_limit_style="alchemy",
    error_5xx_rate=0.005,
    timeout_rate=0.001,
    hang_s=60.0,
)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        # raw ingest: nothing between the indexer and the data
        Profile(
            name="none",
            config_max_block_range=10_000,
            config_requests_per_second=10_000,
        ),
        DEFAULT,
        # the same plan behind a node whose logs carry blockTimestamp (no header calls)
        DEFAULT.with_overrides(name="default-ts", logs_block_timestamp=True),
        Profile(
            name="alchemy",
            latency_s=0.040,
            latency_jitter_s=0.030,
            logs_style=LOGS_ALCHEMY,
            logs_free_span=2000,
            logs_max_results=10_000,
            logs_hard_max_results=100_000,
            requests_per_second=330,
            rate_limit_style="alchemy",
            error_5xx_rate=0.002,
            timeout_rate=0.0005,
            max_batch=1000,
        ),
        Profile(
            name="infura",
            latency_s=0.050,
            latency_jitter_s=0.040,
            logs_style=LOGS_INFURA,
            logs_max_results=10_000,
            logs_max_span=10_000,
            requests_per_second=100,
            rate_limit_style="infura",
            error_5xx_rate=0.002,
            timeout_rate=0.0005,
            config_max_block_range=10_000,
            config_requests_per_second=100,
        ),
        # a bad day: slow, tight limits, many failures, a lagging load balancer
        Profile(
            name="flaky",
            latency_s=0.080,
            latency_jitter_s=0.150,
            logs_style=LOGS_RANGE,
            logs_max_span=1000,
            requests_per_second=50,
            rate_limit_style="generic",
            error_5xx_rate=0.08,
            timeout_rate=0.02,
            hang_s=30.0,
            beyond_head="error",
            config_max_block_range=1000,
            config_requests_per_second=50,
        ),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None


# --------------------------------------------------------------------------- error texts
def _hex(n: int) -> str:
    return hex(n)


def alchemy_range_error(suggest_from: int, suggest_to: int, span: int, cap: int) -> dict[str, Any]:
    span_text = f"{span // 1000}K" if span % 1000 == 0 else f"{span:,}"
    cap_text = f"{cap // 1000}K" if cap % 1000 == 0 else f"{cap:,}"
    return {
        "code": -32602,
        "message": (
            "Log response size exceeded. You can make eth_getLogs requests with up to a "
            f"{span_text} block range and no limit on the response size, or you can request any "
            f"block range with a cap of {cap_text} logs in the response. Based on your parameters "
            "and the response size limit, this block range should work: "
            f"[{_hex(suggest_from)}, {_hex(suggest_to)}]"
        ),
    }


def alchemy_timeout_error(suggest_from: int, suggest_to: int) -> dict[str, Any]:
    return {
        "code": -32000,
        "message": (
            "Query timeout exceeded. Consider reducing your block range. Based on your "
            "parameters and the response size limit, this block range should work: "
            f"[{_hex(suggest_from)}, {_hex(suggest_to)}]"
        ),
    }


def infura_results_error(suggest_from: int, suggest_to: int, cap: int) -> dict[str, Any]:
    f, t = f"0x{suggest_from:X}", f"0x{suggest_to:X}"
    return {
        "code": -32005,
        "message": f"query returned more than {cap} results. Try with this block range [{f}, {t}].",
        "data": {"from": f, "limit": cap, "to": t},
    }


def infura_span_error(span: int, limit: int) -> dict[str, Any]:
    return {"code": -32602, "message": f"range {span} exceeds limit of {limit}"}


def range_error(limit: int) -> dict[str, Any]:
    # the wording of QuickNode's gateway; other nodes say "block range is too wide"
    return {"code": -32614, "message": f"eth_getLogs is limited to a {limit:,} range"}


def beyond_head_error(requested: int, head: int) -> dict[str, Any]:
    return {
        "code": -32000,
        "message": (
            f"block range extends beyond current head block: requested {requested}, head {head}"
        ),
    }


def rate_limit_body(style: str, rps: float) -> dict[str, Any]:
    if style == "alchemy":
        error: dict[str, Any] = {
            "code": 429,
            "message": (
                "Your app has exceeded its compute units per second capacity. If you have "
                "retries enabled, you can safely ignore this message. If not, check out "
                "https://docs.alchemy.com/reference/throughput"
            ),
        }
    elif style == "infura":
        error = {
            "code": -32005,
            "message": "project ID request rate exceeded",
            "data": {
                "see": "https://infura.io/dashboard",
                "current_rps": round(rps * 1.2, 3),
                "allowed_rps": float(rps),
                "backoff_seconds": 1.0,
            },
        }
    else:
        error = {"code": -32005, "message": "Too Many Requests"}
    return {"jsonrpc": "2.0", "id": None, "error": error}


# (status, content type, body) of the 5xx answers a gateway gives
SERVER_ERRORS: tuple[tuple[int, str, bytes], ...] = (
    (
        502,
        "text/html",
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
        b"</body>\r\n</html>\r\n",
    ),
    (
        503,
        "text/plain",
        b"upstream connect error or disconnect/reset before headers. "
        b"reset reason: connection failure",
    ),
    (
        500,
        "application/json",
        b'{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}',
    ),
)
GATEWAY_TIMEOUT: tuple[int, str, bytes] = (
    504,
    "text/html",
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n",
)
