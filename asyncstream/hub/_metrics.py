"""Prometheus metrics of one hub app, in a registry of its own.

A registry per app (not prometheus_client's global one) lets tests and a benchmark
run several hubs in one process without "duplicated timeseries" errors.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HubMetrics:
    """Counters of ingest and errors, and request latency per route."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.batches_accepted = Counter(
            "asyncstream_hub_batches_accepted",
            "Result batches stored.",
            registry=registry,
        )
        self.items_accepted = Counter(
            "asyncstream_hub_items_accepted", "Result items stored.", registry=registry
        )
        self.duplicates = Counter(
            "asyncstream_hub_batches_duplicate",
            "Result batches answered as duplicates (a retry of a stored batch).",
            registry=registry,
        )
        self.rejections = Counter(
            "asyncstream_hub_rejections",
            "Requests answered with an error, by error code.",
            ["reason"],
            registry=registry,
        )
        self.ingest_in_flight = Gauge(
            "asyncstream_hub_ingest_in_flight",
            "Ingest requests being processed now.",
            registry=registry,
        )
        self.ingest_waiting = Gauge(
            "asyncstream_hub_ingest_waiting",
            "Ingest requests waiting for a slot now.",
            registry=registry,
        )
        self.ingest_queued = Counter(
            "asyncstream_hub_ingest_queued",
            "Ingest requests that waited for a slot (served or refused after).",
            registry=registry,
        )
        self.stream_readers_waiting = Gauge(
            "asyncstream_hub_stream_readers_waiting",
            "Readers of an open stream waiting now for paths to be appended.",
            registry=registry,
        )
        self.latency = Histogram(
            "asyncstream_hub_request_duration_seconds",
            "Time from request start to response end.",
            ["method", "route", "status"],
            registry=registry,
        )

    def reject(self, reason: str) -> None:
        self.rejections.labels(reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class LatencyMiddleware:
    """Times every HTTP request under its route template (not its raw path)."""

    def __init__(self, app: ASGIApp, metrics: HubMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router stores the matched route in the shared scope dict.
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.latency.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - start
            )
