"""Benchmark of the scheduler: pods/s through the full cycle on in-memory nodes.

Run: ``python bench/bench_scheduler.py`` (``--pods``, ``--nodes 500 5000``, ``--no-equivalence``
to measure the plain path, ``--mixed`` for pods from 50 templates instead of one). Each pod
goes through queue pop, PreFilter, Filter, PreScore/Score/NormalizeScore, host selection,
assume, bind through an in-memory ClusterAPI that feeds the bound pod back (the watch event
confirming the assumption) and the Scheduled event. Prints a markdown table; it does not
touch bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kybern.scheduler import adapter, scheduler

Obj = dict[str, Any]


def node(i: int) -> Obj:
    return {
        "metadata": {
            "name": f"node-{i}",
            "labels": {
                "kubernetes.io/hostname": f"node-{i}",
                "topology.kubernetes.io/zone": f"zone-{i % 3}",
            },
        },
        "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"}},
    }


def pod(i: int, templates: int) -> Obj:
    t = i % templates
    return {
        "metadata": {
            "name": f"pod-{i}",
            "namespace": "default",
            "uid": f"uid-{i}",
            "labels": {"app": f"app-{t}"},
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": f"registry.example/app-{t}:v1",
                    "resources": {"requests": {"cpu": f"{100 + t}m", "memory": "128Mi"}},
                }
            ],
            "priority": 0,
        },
    }


async def run(nodes: int, pods: int, *, templates: int, use_equivalence: bool) -> dict[str, Any]:
    cluster = adapter.InMemoryCluster()
    sched = scheduler.Scheduler(cluster=cluster, use_equivalence=use_equivalence)
    cluster.scheduler = sched
    for i in range(nodes):
        sched.add_node(node(i))
    objects = [pod(i, templates) for i in range(pods)]
    t0 = time.perf_counter()
    for obj in objects:
        sched.add_pod(obj)
    t_queue = time.perf_counter() - t0
    t1 = time.perf_counter()
    while await sched.run_once():
        pass
    elapsed = time.perf_counter() - t1
    assert len(cluster.bindings) == pods, (len(cluster.bindings), pods)
    used = {n for _, n in cluster.bindings}
    eq = sched.equivalence
    return {
        "nodes": nodes,
        "pods": pods,
        "seconds": elapsed,
        "rate": pods / elapsed,
        "enqueue_rate": pods / t_queue,
        "nodes_used": len(used),
        "hit_ratio": (eq.hits / max(eq.hits + eq.misses, 1)) if eq else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--no-equivalence", action="store_true")
    parser.add_argument("--mixed", action="store_true", help="50 pod templates instead of 1")
    parser.add_argument("--no-write", action="store_true", help="accepted for run.py; no-op")
    args = parser.parse_args()
    templates = 50 if args.mixed else 1
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"equivalence classes: {not args.no_equivalence}, pod templates: {templates}\n")
    print("| nodes | pods | seconds | pods/s | nodes used | equivalence hit ratio |")
    print("|---|---|---|---|---|---|")
    for count in args.nodes:
        r = asyncio.run(
            run(count, args.pods, templates=templates, use_equivalence=not args.no_equivalence)
        )
        print(
            f"| {r['nodes']} | {r['pods']} | {r['seconds']:.2f} | {r['rate']:.0f} "
            f"| {r['nodes_used']} | {r['hit_ratio']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
