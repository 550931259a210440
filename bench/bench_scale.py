"""Control plane at scale: big Deployments on many simulated nodes, memory and read latency.

Run: ``python bench/bench_scale.py`` (both scenarios) or ``--only deployment|big``.

- ``deployment``: one ``kybern server --simulated-nodes 1000``; one Deployment of 10,000
  replicas; time until its status reports every replica available (each pod created by the
  ReplicaSet controller, scheduled, bound through ``pods/binding`` and set Running by its
  simulated node: everything through the API), and the server's RSS then.
- ``big``: ``--simulated-nodes 5000`` and 150,000 pods (15 Deployments of 10,000 replicas in
  15 namespaces); once all are available: the server's RSS (VmRSS and peak VmHWM), LIST
  latency (all pods paginated at 500, one 10,000-pod namespace, a label-selected list, 5,000
  nodes), GET latency, and watch delivery latency to 100 pod watchers while pods are patched.

The whole control plane (API server, watch cache, controller manager, scheduler and the
simulated nodes with their shared informers) is one process, so its RSS is the number that
matters. Results print as Markdown; ``--write`` replaces the "## Scale" section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _report

from kybern import client as kclient
from kybern.testing import server_process

SECTION = "## Scale (simulated nodes, whole control plane in one process)"


def deployment(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.local/app:1",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ]
                },
            },
        },
    }


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


async def wait_nodes(client: kclient.Client, count: int) -> float:
    start = time.perf_counter()
    while True:
        page = await client.list("v1", "Node", limit=1)
        remaining = int(page["metadata"].get("remainingItemCount") or 0)
        if remaining + len(page["items"]) >= count:
            return time.perf_counter() - start
        await asyncio.sleep(0.5)


async def wait_available(client: kclient.Client, namespaces: list[str], replicas: int) -> None:
    """Until every namespace's Deployment reports all replicas available."""
    pending = set(namespaces)
    while pending:
        for ns in sorted(pending):
            d = await client.get("apps/v1", "Deployment", "app", namespace=ns)
            if (d.get("status") or {}).get("availableReplicas") == replicas:
                pending.discard(ns)
        if pending:
            await asyncio.sleep(1.0)


async def timed(work: Any, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await work()
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def list_all(client: kclient.Client, kind: str, api: str = "v1", **kw: Any) -> int:
    count, token = 0, None
    while True:
        page = await client.list(api, kind, limit=500, continue_=token or "", **kw)
        count += len(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            return count


async def watch_latency(
    client: kclient.Client, patcher: kclient.Client, namespace: str, watchers: int
) -> list[float]:
    """Patch 200 pods' labels at 20/s; delivery latency to ``watchers`` pod watchers (ms).
    The patches go through their own client: the watches hold every connection of theirs."""
    pods = (await client.list("v1", "Pod", namespace=namespace, limit=200))["items"]
    sent: dict[str, float] = {}
    latencies: list[float] = []
    rv = (await client.list("v1", "Pod", namespace=namespace, limit=1))["metadata"][
        "resourceVersion"
    ]

    async def watcher() -> None:
        async for event in client.watch("v1", "Pod", namespace=namespace, resource_version=rv):
            mark = (event.object["metadata"].get("labels") or {}).get("bench-mark")
            if mark in sent:
                latencies.append((time.perf_counter() - sent[mark]) * 1000)

    tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
    await asyncio.sleep(2)  # let every watch open before the first patch
    for i, pod in enumerate(pods):
        mark = f"m{i}"
        sent[mark] = time.perf_counter()
        await patcher.patch(
            "v1",
            "Pod",
            pod["metadata"]["name"],
            {"metadata": {"labels": {"bench-mark": mark}}},
            namespace=namespace,
        )
        await asyncio.sleep(0.05)
    deadline = time.perf_counter() + 30
    while len(latencies) < len(pods) * watchers and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def scenario_deployment(
    proc: server_process.ServerProcess, nodes: int, replicas: int
) -> dict[str, Any]:
    client = kclient.Client(await kclient.RESTTransport.from_kubeconfig(proc.kubeconfig))
    try:
        registered = await wait_nodes(client, nodes)
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "d0"}})
        t0 = time.perf_counter()
        await client.create(deployment("app", "d0", replicas))
        async with asyncio.timeout(1800):
            await wait_available(client, ["d0"], replicas)
        elapsed = time.perf_counter() - t0
        assert proc.process is not None
        rss, hwm = rss_mib(proc.process.pid)
        return {"registered": registered, "elapsed": elapsed, "rss": rss, "hwm": hwm}
    finally:
        await client.close()


async def scenario_big(
    proc: server_process.ServerProcess, nodes: int, deployments: int, replicas: int
) -> dict[str, Any]:
    client = kclient.Client(await kclient.RESTTransport.from_kubeconfig(proc.kubeconfig))
    try:
        await wait_nodes(client, nodes)
        namespaces = [f"big-{i}" for i in range(deployments)]
        t0 = time.perf_counter()
        for ns in namespaces:
            await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            await client.create(deployment("app", ns, replicas))
        async with asyncio.timeout(3600):
            await wait_available(client, namespaces, replicas)
        out: dict[str, Any] = {"elapsed": time.perf_counter() - t0}
        await asyncio.sleep(10)  # let the loops settle before measuring memory and latency
        assert proc.process is not None
        out["rss"], out["hwm"] = rss_mib(proc.process.pid)
        total = await list_all(client, "Pod")
        out["pods"] = total
        out["list_all"] = await timed(lambda: list_all(client, "Pod"), 3)
        out["list_ns"] = await timed(lambda: list_all(client, "Pod", namespace=namespaces[0]), 5)
        out["list_label"] = await timed(
            lambda: client.list(
                "v1", "Pod", namespace=namespaces[1], label_selector="app=app", limit=100
            ),
            20,
        )
        out["list_nodes"] = await timed(lambda: list_all(client, "Node"), 5)
        some = (await client.list("v1", "Pod", namespace=namespaces[2], limit=1))["items"][0]
        out["get"] = await timed(
            lambda: client.get("v1", "Pod", some["metadata"]["name"], namespace=namespaces[2]), 200
        )
        patcher = kclient.Client(await kclient.RESTTransport.from_kubeconfig(proc.kubeconfig))
        try:
            out["watch"] = await watch_latency(client, patcher, namespaces[3 % deployments], 100)
        finally:
            await patcher.close()
        out["rss_after"], out["hwm_after"] = rss_mib(proc.process.pid)
        return out
    finally:
        await client.close()


def start(tmp: Path, nodes: int) -> server_process.ServerProcess:
    args = ["--simulated-nodes", str(nodes), "--disable-agent", "--log-level", "warning"]
    return server_process.ServerProcess(data_dir=tmp, extra_args=args).start(timeout=120)


def run_scenario(work: Any, nodes: int) -> tuple[dict[str, Any], list[str]]:
    with tempfile.TemporaryDirectory(prefix="kybern-bench-scale-") as tmp:
        proc = start(Path(tmp), nodes)
        try:
            result = asyncio.run(work(proc))
        finally:
            proc.stop()
        problems = [line for line in proc.logs().splitlines() if " ERROR " in line]
    return result, problems


def ms(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {pct(values, 0.99):.1f}"


def report(dep: dict[str, Any] | None, big: dict[str, Any] | None, args: argparse.Namespace) -> str:
    lines = [
        SECTION,
        "",
        "Command: `python bench/bench_scale.py`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
        f"Machine: {_report.machine()}",
        "",
    ]
    if dep is not None:
        rate = args.replicas / dep["elapsed"]
        lines += [
            f"### {args.replicas:,}-replica Deployment on {args.nodes:,} simulated nodes",
            "",
            "| nodes registered (s) | create -> all available (s) | pods/s | RSS after (MiB) | peak RSS (MiB) |",
            "|---:|---:|---:|---:|---:|",
            f"| {dep['registered']:.1f} | {dep['elapsed']:.1f} | {rate:,.0f} | {dep['rss']:,.0f} | {dep['hwm']:,.0f} |",
            "",
        ]
    if big is not None:
        target = "pass" if big["hwm_after"] <= 8192 else "**miss**"
        lines += [
            f"### {big['pods']:,} pods on {args.big_nodes:,} simulated nodes",
            "",
            f"All {big['pods']:,} pods available {big['elapsed']:.0f} s after the first create.",
            "",
            "| measure | value | target |",
            "|---|---:|---|",
            f"| RSS after settling (MiB) | {big['rss']:,.0f} | |",
            f"| peak RSS over the run (MiB) | {big['hwm_after']:,.0f} | <= 8,192 ({target}) |",
            f"| LIST all pods, pages of 500 (ms, median / p99 of 3) | {ms(big['list_all'])} | |",
            f"| LIST one 10,000-pod namespace, pages of 500 (ms) | {ms(big['list_ns'])} | |",
            f"| LIST 100 pods by label selector (ms) | {ms(big['list_label'])} | |",
            f"| LIST 5,000 nodes, pages of 500 (ms) | {ms(big['list_nodes'])} | |",
            f"| GET one pod (ms, median / p99 of 200) | {ms(big['get'])} | |",
            f"| watch delivery to 100 pod watchers (ms, median / p99 of {len(big['watch']):,}) | {ms(big['watch'])} | |",
            "",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("deployment", "big"))
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=10_000)
    parser.add_argument("--big-nodes", type=int, default=5000)
    parser.add_argument("--big-deployments", type=int, default=15)
    parser.add_argument("--big-replicas", type=int, default=10_000)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="never update RESULTS.md")
    args = parser.parse_args()
    dep = big = None
    if args.only in (None, "deployment"):
        dep, problems = run_scenario(
            lambda p: scenario_deployment(p, args.nodes, args.replicas), args.nodes
        )
        print(
            f"deployment: {dep}; {len(problems)} error lines",
            *problems[:5],
            sep="\n",
            file=sys.stderr,
        )
    if args.only in (None, "big"):
        big, problems = run_scenario(
            lambda p: scenario_big(p, args.big_nodes, args.big_deployments, args.big_replicas),
            args.big_nodes,
        )
        print(f"big: {len(problems)} error lines", *problems[:5], sep="\n", file=sys.stderr)
    text = report(dep, big, args)
    print(text)
    if args.write and not args.no_write:
        _report.write_section(SECTION, text)


if __name__ == "__main__":
    main()
