"""A tiny synchronous JSON-RPC client for anvil.

web3.py costs milliseconds per call; the scenario makes thousands of calls, so it talks raw
JSON-RPC over one keep-alive HTTP connection and sends many calls per request (batches).
"""

from __future__ import annotations

import http.client
from collections.abc import Sequence
from typing import Any

import orjson

from .errors import DevnetError

Call = tuple[str, list[Any]]


class RpcError(DevnetError):
    """A JSON-RPC error answer from the node."""

    def __init__(self, method: str, error: Any) -> None:
        message = error.get("message", error) if isinstance(error, dict) else error
        super().__init__(f"{method} failed: {message}")
        self.method = method
        self.error = error


class Rpc:
    """One HTTP/1.1 keep-alive connection to one node; not thread-safe (one per thread)."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        if not url.startswith("http://"):
            raise DevnetError(f"only http:// node URLs are supported, got {url}")
        hostport = url[len("http://") :].split("/", 1)[0]
        host, _, port = hostport.partition(":")
        self.url = url
        self._host = host
        self._port = int(port or 80)
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _post(self, payload: Any) -> Any:
        body = orjson.dumps(payload)
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
            try:
                self._conn.request("POST", "/", body, {"Content-Type": "application/json"})
                response = self._conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                self.close()
                if attempt == 1:
                    raise DevnetError(f"node at {self.url} is not answering: {exc}") from exc
                continue
            if response.status != 200:
                raise DevnetError(
                    f"node at {self.url} answered HTTP {response.status}: {data[:200]!r}"
                )
            return orjson.loads(data)
        raise AssertionError("unreachable")

    def call(self, method: str, *params: Any) -> Any:
        """One call; raises RpcError on an error answer."""
        answer = self._post({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        if "error" in answer:
            raise RpcError(method, answer["error"])
        return answer.get("result")

    def batch(self, calls: Sequence[Call], chunk: int = 500) -> list[Any]:
        """Many calls in few HTTP requests; results in call order.

        anvil runs the calls of one batch concurrently, so a batch must never mix calls whose
        order matters to each other (e.g. eth_sendTransaction and evm_mine).
        """
        results: list[Any] = []
        for start in range(0, len(calls), chunk):
            part = calls[start : start + chunk]
            payload = [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                for i, (m, p) in enumerate(part)
            ]
            answers = self._post(payload)
            by_id = {a["id"]: a for a in answers}
            for i, (method, _) in enumerate(part):
                answer = by_id[i]
                if "error" in answer:
                    raise RpcError(method, answer["error"])
                results.append(answer.get("result"))
        return results

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
