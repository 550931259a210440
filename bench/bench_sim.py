"""Scheduling through the real API: time for N pods to be Running on M simulated nodes.

Run: ``python bench/bench_sim.py`` (``--pods 1000 --nodes 100``). Starts one
``kybern server --simulated-nodes M`` subprocess (API server, controller manager, scheduler
and simulated nodes in one process), creates N bare pods over HTTPS with a few concurrent
requests, and follows a pod watch until every pod is bound and then Running. Everything the
cluster does goes through the API (binding, status patches, events). Prints the timings;
it does not touch bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kybern import client as kclient
from kybern.testing import server_process

NAMESPACE = "default"


def pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"bench-{i}", "namespace": NAMESPACE, "labels": {"bench": "sim"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "busybox", "resources": {"requests": {"cpu": "10m"}}}
            ]
        },
    }


async def wait_nodes(client: kclient.Client, count: int) -> None:
    # polling a remote server: there is no local event to wait on
    while len((await client.list("v1", "Node"))["items"]) < count:  # noqa: ASYNC110
        await asyncio.sleep(0.1)


async def follow(client: kclient.Client, count: int, start: float, out: dict[str, float]) -> None:
    bound: set[str] = set()
    running: set[str] = set()
    async for event in client.watch("v1", "Pod", namespace=NAMESPACE, label_selector="bench=sim"):
        obj = event.object
        name = obj["metadata"]["name"]
        if obj["spec"].get("nodeName"):
            bound.add(name)
            if len(bound) == count and "bound" not in out:
                out["bound"] = time.perf_counter() - start
        if (obj.get("status") or {}).get("phase") == "Running":
            running.add(name)
            if len(running) == count:
                out["running"] = time.perf_counter() - start
                return


async def create_all(client: kclient.Client, count: int, concurrency: int) -> None:
    pending = iter(range(count))

    async def worker() -> None:
        for i in pending:
            await client.create(pod(i))

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def measure(kubeconfig: Path, pods: int, nodes: int, concurrency: int) -> dict[str, float]:
    client = kclient.Client(await kclient.RESTTransport.from_kubeconfig(kubeconfig))
    try:
        async with asyncio.timeout(120):
            await wait_nodes(client, nodes)
        out: dict[str, float] = {}
        start = time.perf_counter()
        watcher = asyncio.create_task(follow(client, pods, start, out))
        await asyncio.sleep(0.2)  # let the watch open before the first create
        start_create = time.perf_counter()
        await create_all(client, pods, concurrency)
        out["created"] = time.perf_counter() - start_create
        async with asyncio.timeout(600):
            await watcher
        out["running"] -= start_create - start
        out["bound"] -= start_create - start
        return out
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kybern-bench-sim-") as tmp:
        proc = server_process.ServerProcess(
            data_dir=Path(tmp), extra_args=["--simulated-nodes", str(args.nodes), "--disable-agent"]
        )
        proc.start(timeout=60)
        try:
            result = asyncio.run(measure(proc.kubeconfig, args.pods, args.nodes, args.concurrency))
        finally:
            proc.stop()
        problems = [
            line for line in proc.logs().splitlines() if " WARNING " in line or " ERROR " in line
        ]
    print(
        f"## Simulated scheduling ({platform.python_implementation()} {platform.python_version()})"
    )
    print()
    print(
        "| pods | nodes | all created (s) | all bound (s) | all Running (s) | pods/s to Running |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.pods} | {args.nodes} | {result['created']:.2f} | {result['bound']:.2f} "
        f"| {result['running']:.2f} | {args.pods / result['running']:.0f} |"
    )
    print(f"\nserver log: {len(problems)} warning/error lines", *problems[:5], sep="\n")


if __name__ == "__main__":
    main()
