"""Prometheus metrics of one API process (own registry, so several apps can coexist).

Labels are bounded: unknown paths and methods are counted as "other"."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Known paths keep their name as a label; anything else is "other" (bounded cardinality).
KNOWN_PATHS = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})
KNOWN_METHODS = frozenset({"GET", "POST", "OPTIONS", "HEAD"})


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "aave_api_requests",
            "HTTP requests served, by path, method and status",
            ["path", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "aave_api_request_duration_seconds",
            "HTTP request latency, by path",
            ["path"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "aave_api_requests_in_flight", "HTTP requests being served", registry=self.registry
        )
        self.graphql_operations = Counter(
            "aave_api_graphql_operations",
            "GraphQL operations executed",
            registry=self.registry,
        )
        self.graphql_errors = Counter(
            "aave_api_graphql_errors",
            "GraphQL errors returned, by kind: validation (refused before execution), "
            "user (bad input or a limit), internal (masked, logged with traceback)",
            ["kind"],
            registry=self.registry,
        )
        for kind in ("validation", "user", "internal"):
            self.graphql_errors.labels(kind=kind)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request. The labelled children are kept (their label
    sets are bounded): `labels()` costs about as much as a cached answer."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._latency: dict[str, Any] = {}
        self._requests: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        label = path if path in KNOWN_PATHS else "other"
        method = scope.get("method", "")
        method = method if method in KNOWN_METHODS else "other"
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            latency = self._latency.get(label)
            if latency is None:
                latency = self._latency[label] = self.metrics.latency.labels(path=label)
            latency.observe(time.perf_counter() - started)
            key = (label, method, status)
            requests = self._requests.get(key)
            if requests is None:
                requests = self.metrics.requests.labels(
                    path=label, method=method, status=str(status)
                )
                self._requests[key] = requests
            requests.inc()
