"""What an RPC failure means for the caller: retry, split the range, fail over, or stop.

Providers disagree on codes, so classification reads both the code and the message text.
"""

from __future__ import annotations

import re


class RpcError(Exception):
    """A JSON-RPC error answer that retrying will not fix (e.g. execution reverted)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientError(Exception):
    """Worth retrying, on this endpoint or another: 5xx, timeouts, resets, garbage bodies,
    node-side lags such as "header not found"."""


class RateLimited(TransientError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RangeTooLarge(Exception):
    """eth_getLogs refused the range; `suggested` is the provider's proposal, if any."""

    def __init__(self, message: str, suggested: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.suggested = suggested


class ResponseTooLarge(RangeTooLarge):
    """An answer larger than the caller accepts (the client stopped reading it): for
    eth_getLogs, the same as a provider's "too many results", so the span is split."""


class EndpointFault(TransientError):
    """The endpoint answered something impossible (wrong chain, a head that went back past
    finality, null for a block it claimed): stop trusting it for a while."""


class AllEndpointsFailed(Exception):
    """Every configured endpoint failed after retries: one line for the operator."""


_RANGE_PATTERNS = re.compile(
    r"block range|range too large|too many (results|logs|blocks)|more than \d+ results"
    r"|response size exceeded|query returned more than|limit exceeded|exceed(s|ed)? max"
    r"|range is too large|try with this block range|up to a \d+[kK]? block range"
    r"|limited to (a )?[\d,]+|ranges? over [\d,]+ blocks|maximum block range|max range",
    re.IGNORECASE,
)
_TRANSIENT_PATTERNS = re.compile(
    r"header not found|missing trie node|unknown block|timeout|timed out|busy|overloaded"
    r"|try again|temporarily|internal error|rate limit|capacity|backend|upstream",
    re.IGNORECASE,
)
_SUGGESTED = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")


def suggested_range(message: str) -> tuple[int, int] | None:
    match = _SUGGESTED.search(message)
    if not match:
        return None
    start, end = int(match.group(1), 16), int(match.group(2), 16)
    return (start, end) if end >= start else None


def classify(error: object, method: str) -> Exception:
    """Turn a JSON-RPC `error` object into the exception that says what to do."""
    if not isinstance(error, dict):
        return TransientError(f"malformed error object: {error!r:.200}")
    code = error.get("code")
    message = str(error.get("message", ""))
    data = error.get("data")
    full = f"{message} {data}" if isinstance(data, str) else message
    if method == "eth_getLogs" and _RANGE_PATTERNS.search(full):
        return RangeTooLarge(message, suggested_range(full))
    if code == 429 or (code == -32005 and "limit" in full.lower() and method != "eth_getLogs"):
        return RateLimited(message)
    if (
        isinstance(code, int)
        and code in (-32000, -32603, -32002, -32003)
        and (_TRANSIENT_PATTERNS.search(full))
    ):
        return TransientError(f"{method}: {message}")
    if _TRANSIENT_PATTERNS.search(full) and "revert" not in full.lower():
        return TransientError(f"{method}: {message}")
    return RpcError(f"{method}: {message}", code if isinstance(code, int) else None)
