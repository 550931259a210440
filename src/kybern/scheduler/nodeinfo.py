"""NodeInfo: one node with the pods on it and what they use, aggregated.

The cache keeps one NodeInfo per node and updates it in place as pods are added, assumed
and removed; ``generation`` increases on every change, which is what invalidates
equivalence-class entries for that node. Preemption works on :meth:`NodeInfo.clone`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kybern.scheduler import podinfo

Obj = dict[str, Any]
DEFAULT_ALLOWED_PODS = 110


class NodeInfo:
    __slots__ = (
        "allocatable",
        "allowed_pods",
        "generation",
        "image_sizes",
        "labels",
        "name",
        "node",
        "non_zero_cpu",
        "non_zero_memory",
        "pods",
        "pods_with_affinity",
        "requested",
        "taints",
        "unschedulable",
        "used_ports",
    )

    def __init__(self, node: Obj | None = None, name: str = "") -> None:
        self.node: Obj | None = None
        self.name = name
        self.labels: dict[str, str] = {}
        self.taints: tuple[Mapping[str, Any], ...] = ()
        self.unschedulable = False
        self.allocatable: dict[str, int] = {}
        self.allowed_pods = 0
        self.image_sizes: dict[str, int] = {}
        self.pods: dict[str, podinfo.PodInfo] = {}
        self.requested: dict[str, int] = {}
        self.non_zero_cpu = 0
        self.non_zero_memory = 0
        self.used_ports: dict[tuple[str, str, int], int] = {}
        self.pods_with_affinity = 0
        self.generation = 0
        if node is not None:
            self.set_node(node)

    def set_node(self, node: Obj) -> None:
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.node = node
        self.name = meta.get("name") or self.name
        self.labels = dict(meta.get("labels") or {})
        self.taints = tuple(spec.get("taints") or ())
        self.unschedulable = bool(spec.get("unschedulable"))
        allocatable = status.get("allocatable") or status.get("capacity") or {}
        self.allocatable = podinfo.resource_list(allocatable)
        self.allowed_pods = self.allocatable.pop(podinfo.PODS, DEFAULT_ALLOWED_PODS)
        self.image_sizes = {}
        for image in status.get("images") or ():
            for image_name in image.get("names") or ():
                self.image_sizes[normalized_image(image_name)] = int(image.get("sizeBytes") or 0)
        self.generation += 1

    def add_pod(self, pod: podinfo.PodInfo) -> None:
        self.pods[pod.uid] = pod
        self._account(pod, 1)

    def remove_pod(self, uid: str) -> podinfo.PodInfo | None:
        pod = self.pods.pop(uid, None)
        if pod is not None:
            self._account(pod, -1)
        return pod

    def _account(self, pod: podinfo.PodInfo, sign: int) -> None:
        requested = self.requested
        for name, value in pod.requests.items():
            requested[name] = requested.get(name, 0) + sign * value
        self.non_zero_cpu += sign * pod.non_zero_cpu
        self.non_zero_memory += sign * pod.non_zero_memory
        for port in pod.ports:
            count = self.used_ports.get(port, 0) + sign
            if count > 0:
                self.used_ports[port] = count
            else:
                self.used_ports.pop(port, None)
        if pod.has_pod_affinity:
            self.pods_with_affinity += sign
        self.generation += 1

    def clone(self) -> NodeInfo:
        copy = NodeInfo(name=self.name)
        for slot in NodeInfo.__slots__:
            setattr(copy, slot, getattr(self, slot))
        copy.pods = dict(self.pods)
        copy.requested = dict(self.requested)
        copy.used_ports = dict(self.used_ports)
        return copy


def scheduling_properties(node: Obj) -> tuple[Any, ...]:
    """What plugins read from a Node; other changes (heartbeats) are not worth a move."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    return (
        meta.get("labels"),
        spec.get("taints"),
        spec.get("unschedulable"),
        status.get("allocatable") or status.get("capacity"),
        status.get("images"),
    )


def normalized_image(name: str) -> str:
    """Image names as ImageLocality compares them: a missing tag means ``:latest``."""
    last = name.rsplit("/", 1)[-1]
    if "@" in last or ":" in last:
        return name
    return name + ":latest"
