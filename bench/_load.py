"""Load loops for the API benchmarks: closed loop (N clients, each sending its next request
when the last one is answered) and open loop (requests started on a schedule whatever
happened to earlier ones), with latency samples, errors and CPU use of the run."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import _client
import aiohttp
from _report import ms, percentile, rate

# op(client, worker index, sequence number): one request; raises on a failed one
Op = Callable[[aiohttp.ClientSession, int, int], Awaitable[Any]]
ERRORS = (TimeoutError, aiohttp.ClientError, RuntimeError)


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    meter: _client.CpuMeter | None = None

    @property
    def throughput(self) -> float:
        assert self.meter is not None
        return len(self.latencies) / self.meter.wall

    def record_error(self, exc: BaseException) -> None:
        self.errors += 1
        self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"[:200]

    def row(self, **first: Any) -> dict[str, Any]:
        assert self.meter is not None
        lat = self.latencies
        return {
            **first,
            "ops": len(lat),
            "ops/s": rate(self.throughput),
            "p50 ms": ms(percentile(lat, 0.50)),
            "p99 ms": ms(percentile(lat, 0.99)),
            "max ms": ms(max(lat, default=float("nan"))),
            "errors": self.errors,
            **self.meter.columns(),
        }


async def closed_loop(
    clients: list[aiohttp.ClientSession],
    op: Op,
    *,
    pid: int,
    seconds: float | None = None,
    total: int | None = None,
) -> Run:
    """Each client issues ``op`` back to back until the time is up or ``total`` ops are done
    (with ``total``, the sequence numbers 0..total-1 are shared out among the clients)."""
    run = Run()
    next_index = 0
    stop_at = time.perf_counter() + (seconds or 0)

    async def worker(w: int, client: aiohttp.ClientSession) -> None:
        nonlocal next_index
        i = -1
        while True:
            if total is not None:
                if next_index >= total:
                    return
                i, next_index = next_index, next_index + 1
            elif time.perf_counter() >= stop_at:
                return
            else:
                i += 1
            t0 = time.perf_counter()
            try:
                await op(client, w, i)
            except ERRORS as exc:
                run.record_error(exc)
                continue
            run.latencies.append(time.perf_counter() - t0)

    with _client.CpuMeter(pid) as run.meter:
        await asyncio.gather(*(worker(w, c) for w, c in enumerate(clients)))
    return run


async def open_loop(
    start: Callable[[int, float], Awaitable[None]], pace: float, count: int
) -> None:
    """Call ``start(i, scheduled)`` at ``scheduled = t0 + i / pace`` in a task of its own."""
    t0 = time.perf_counter() + 0.05
    tasks = []
    for i in range(count):
        scheduled = t0 + i / pace
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(start(i, scheduled)))
    await asyncio.gather(*tasks)


@contextlib.asynccontextmanager
async def sessions(
    creds: _client.Credentials, n: int
) -> AsyncIterator[list[aiohttp.ClientSession]]:
    """``n`` clients, each with one keep-alive connection, opened before they are handed out."""
    clients = [_client.session(creds) for _ in range(n)]
    try:
        await asyncio.gather(*(_client.request(c, "GET", "/version") for c in clients))
        yield clients
    finally:
        await asyncio.gather(*(c.close() for c in clients))
