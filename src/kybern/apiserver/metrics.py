"""Prometheus metrics of the API server, on /metrics.

Names follow kube-apiserver's where one exists (apiserver_request_total,
apiserver_request_duration_seconds, apiserver_longrunning_requests) so existing dashboards read
them; storage latency is measured around every backend call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import prometheus_client
from aiohttp import web

from kybern.storage import backend as storage_backend


class Metrics:
    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        self.requests = prometheus_client.Counter(
            "apiserver_request_total",
            "Requests by verb, resource and HTTP code.",
            ["verb", "resource", "code"],
            registry=self.registry,
        )
        self.latency = prometheus_client.Histogram(
            "apiserver_request_duration_seconds",
            "Request latency by verb and resource (watches excluded).",
            ["verb", "resource"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.watches = prometheus_client.Gauge(
            "apiserver_longrunning_requests",
            "Open long-running requests (watches) by resource.",
            ["verb", "resource"],
            registry=self.registry,
        )
        self.storage = prometheus_client.Histogram(
            "kybern_storage_operation_duration_seconds",
            "Storage backend operation latency by operation.",
            ["operation"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.exposition(), headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}
        )


def request_verb(request: web.Request, resource_path: tuple[str, str] | None) -> str:
    method = request.method
    is_watch = (
        request.query.get("watch") not in (None, "0", "false", "False") or "/watch/" in request.path
    )
    if method == "GET":
        if is_watch:
            return "WATCH"
        return "GET" if resource_path and resource_path[1] else "LIST"
    return method


class TimedBackend:
    """A Backend wrapper that records each operation's latency."""

    def __init__(self, inner: storage_backend.Backend, metrics: Metrics) -> None:
        self.inner = inner
        self._hist = metrics.storage

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _timed(self, op: str, coro: Any) -> Any:
        start = time.perf_counter()
        try:
            return await coro
        finally:
            self._hist.labels(op).observe(time.perf_counter() - start)

    async def create(self, key: str, value: bytes) -> int:
        return await self._timed("create", self.inner.create(key, value))  # type: ignore[no-any-return]

    async def get(self, key: str, rev: int = 0) -> storage_backend.KeyValue:
        return await self._timed("get", self.inner.get(key, rev))  # type: ignore[no-any-return]

    async def list(
        self, prefix: str, rev: int = 0, limit: int = 0, start_after: str = ""
    ) -> storage_backend.ListResult:
        return await self._timed("list", self.inner.list(prefix, rev, limit, start_after))  # type: ignore[no-any-return]

    async def update(self, key: str, value: bytes, expected_rev: int) -> int:
        return await self._timed("update", self.inner.update(key, value, expected_rev))  # type: ignore[no-any-return]

    async def delete(self, key: str, expected_rev: int = 0) -> storage_backend.KeyValue:
        return await self._timed("delete", self.inner.delete(key, expected_rev))  # type: ignore[no-any-return]

    def watch(self, prefix: str, after_rev: int) -> AsyncIterator[storage_backend.Event]:
        return self.inner.watch(prefix, after_rev)
