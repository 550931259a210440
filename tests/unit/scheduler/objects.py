"""Builders for the plain dicts the scheduler is fed (nodes, pods), for the tests."""

from __future__ import annotations

from typing import Any

from kybern.scheduler import framework, nodeinfo, podinfo

Obj = dict[str, Any]


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    unschedulable: bool = False,
    extra: dict[str, str] | None = None,
    images: list[Obj] | None = None,
) -> Obj:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {"allocatable": allocatable, "images": images or []},
    }


def pod(
    name: str,
    *,
    cpu: str | None = None,
    memory: str | None = None,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    node_name: str = "",
    priority: int | None = None,
    spec: Obj | None = None,
    requests: dict[str, str] | None = None,
    ports: list[Obj] | None = None,
    image: str = "busybox",
    created: str = "2026-01-01T00:00:00Z",
) -> Obj:
    reqs = dict(requests or {})
    if cpu:
        reqs["cpu"] = cpu
    if memory:
        reqs["memory"] = memory
    container: Obj = {"name": "c", "image": image, "resources": {"requests": reqs}}
    if ports:
        container["ports"] = ports
    body: Obj = {"containers": [container], **(spec or {})}
    if node_name:
        body["nodeName"] = node_name
    if priority is not None:
        body["priority"] = priority
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "labels": labels or {},
            "creationTimestamp": created,
        },
        "spec": body,
        "status": {},
    }


def info(obj: Obj) -> podinfo.PodInfo:
    return podinfo.pod_info(obj)


def node_info(obj: Obj, *pods: Obj) -> nodeinfo.NodeInfo:
    ni = nodeinfo.NodeInfo(obj)
    for p in pods:
        ni.add_pod(podinfo.pod_info(p))
    return ni


def snapshot(*nodes: nodeinfo.NodeInfo) -> framework.Snapshot:
    snap = framework.Snapshot(list(nodes), {n.name: n for n in nodes})
    snap.affinity_pods = sum(n.pods_with_affinity for n in nodes)
    for n in nodes:
        for image in n.image_sizes:
            snap.image_nodes[image] = snap.image_nodes.get(image, 0) + 1
    return snap
