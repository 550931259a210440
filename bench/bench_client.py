"""kybern.client: in-process transport vs HTTP(S), get and create latency.

Starts API servers in this process (one with TLS and the admin kubeconfig, one plain HTTP)
and drives each through ``kybern.client.Client``: the in-process transport
(``APIServer.local_api()``), HTTPS with the client certificate from the kubeconfig, and plain
HTTP. Sequential requests (one at a time: latency) and a concurrent burst (throughput).
Prints a table; it does not write bench/RESULTS.md.

    .venv/bin/python bench/bench_client.py [--gets 3000] [--creates 1000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kybern.apiserver import server
from kybern.client import Client, InProcessTransport, RESTTransport


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "bench"}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }
            ]
        },
    }


async def timed(n: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await call(i)
        out.append(time.perf_counter() - t0)
    return out


async def burst(n: int, concurrency: int, call: Callable[[int], Awaitable[object]]) -> float:
    """ops/s for n calls with `concurrency` in flight."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await call(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - t0)


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2] * 1e6
    p99 = ordered[int(len(ordered) * 0.99)] * 1e6
    return f"{statistics.fmean(samples) * 1e6:8.0f} {p50:8.0f} {p99:8.0f}"


async def measure(label: str, client: Client, args: argparse.Namespace) -> None:
    prefix = label.replace(" ", "-").lower()
    await client.create(pod(f"{prefix}-target"))
    for _ in range(50):  # warm up
        await client.get("v1", "Pod", f"{prefix}-target", namespace="default")

    async def get(i: int) -> object:
        return await client.get("v1", "Pod", f"{prefix}-target", namespace="default")

    async def create(i: int) -> object:
        return await client.create(pod(f"{prefix}-{i}"))

    async def create_burst(i: int) -> object:
        return await client.create(pod(f"{prefix}-b{i}"))

    gets = await timed(args.gets, get)
    creates = await timed(args.creates, create)
    get_rate = await burst(args.gets, args.concurrency, get)
    create_rate = await burst(args.creates, args.concurrency, create_burst)
    print(f"{label:<12} get    {summary(gets)} {get_rate:9.0f}")
    print(f"{label:<12} create {summary(creates)} {create_rate:9.0f}")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tls_dir, tempfile.TemporaryDirectory() as plain_dir:
        tls = server.APIServer(server.Config(data_dir=Path(tls_dir), port=0))
        plain = server.APIServer(server.Config(data_dir=Path(plain_dir), port=0, tls=False))
        await tls.start()
        await plain.start()
        clients = {
            "in-process": Client(InProcessTransport(tls.local_api())),
            "https": Client(await RESTTransport.from_kubeconfig(tls.kubeconfig_path)),
            "http": Client(RESTTransport.for_url(plain.url)),
        }
        print(
            f"{'transport':<12} {'verb':<6} {'mean_us':>8} {'p50_us':>8} {'p99_us':>8} "
            f"{'ops/s@' + str(args.concurrency):>9}"
        )
        try:
            for label, client in clients.items():
                await measure(label, client, args)
        finally:
            for client in clients.values():
                await client.close()
            await tls.stop()
            await plain.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=3000)
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-uvloop", action="store_true")
    ns = parser.parse_args()
    if ns.no_uvloop:
        asyncio.run(main(ns))
    else:
        import uvloop

        uvloop.run(main(ns))
