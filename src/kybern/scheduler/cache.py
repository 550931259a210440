"""The scheduler cache: nodes, the pods on them, and assumed pods.

A pod is *assumed* on a node as soon as the scheduler picks it, before the binding is
written, so the next cycle already sees its resources. When the binding is observed (the
pod arrives through ``add_pod`` with ``spec.nodeName``) the assumption is confirmed. If the
binding call fails the scheduler ``forget``s it; if it finished but the pod never shows
up, the assumption expires ``assumed_ttl`` seconds after ``finish_binding`` (Kubernetes
keeps it forever by default; ttl 0 does the same here).

``snapshot()`` is cheap: NodeInfos are shared, not copied (the cycle runs synchronously
between cache updates); the node order is rebuilt only when nodes come or go.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kybern.scheduler import framework, nodeinfo, podinfo

Obj = dict[str, Any]
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
DEFAULT_ASSUMED_TTL = 900.0


@dataclass(slots=True)
class _Assumed:
    pod: podinfo.PodInfo
    node: str
    deadline: float | None = None  # set once binding finished


class Cache:
    def __init__(self, *, assumed_ttl: float = DEFAULT_ASSUMED_TTL) -> None:
        self.assumed_ttl = assumed_ttl
        self.nodes: dict[str, nodeinfo.NodeInfo] = {}
        self.pod_nodes: dict[str, str] = {}  # uid -> node name, for added and assumed pods
        self.assumed: dict[str, _Assumed] = {}
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.pdbs: dict[str, Obj] = {}
        self.affinity_pods = 0
        self.epoch = 0  # bumps when nodes come, go or change images: equivalence resets
        self._snapshot: framework.Snapshot | None = None

    # --- nodes ---------------------------------------------------------------------

    def add_node(self, node: Obj) -> bool:
        """Add or update a node; False when nothing the scheduler reads changed (a status
        heartbeat), in which case cached results for the node stay valid."""
        name = (node.get("metadata") or {}).get("name") or ""
        info = self.nodes.get(name)
        if info is None or info.node is None:
            if info is None:
                info = self.nodes[name] = nodeinfo.NodeInfo(name=name)
            info.set_node(node)
            self._changed()
            return True
        if nodeinfo.scheduling_properties(info.node) == nodeinfo.scheduling_properties(node):
            info.node = node
            return False
        images_before = info.image_sizes
        info.set_node(node)
        if info.image_sizes != images_before:
            self._changed()
        return True

    update_node = add_node

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None:
            return
        if info.pods:  # pods whose deletion is not seen yet keep a placeholder
            info.node = None
            info.generation += 1
        else:
            del self.nodes[name]
        self._changed()

    def _changed(self) -> None:
        self.epoch += 1
        self._snapshot = None

    # --- pods ----------------------------------------------------------------------

    def add_pod(self, pod: podinfo.PodInfo) -> None:
        """A pod bound to a node was observed; confirms an assumption for it."""
        self.assumed.pop(pod.uid, None)
        if pod.uid in self.pod_nodes:  # assumed (maybe elsewhere) or an update: replace
            self._remove(pod.uid)
        self._place(pod, pod.node_name)

    update_pod = add_pod

    def remove_pod(self, uid: str) -> None:
        self.assumed.pop(uid, None)
        self._remove(uid)

    def assume(self, pod: podinfo.PodInfo, node_name: str) -> None:
        if pod.uid in self.pod_nodes:
            raise ValueError(f"pod {pod.key} is already in the cache")
        self.assumed[pod.uid] = _Assumed(pod, node_name)
        self._place(pod, node_name)

    def finish_binding(self, uid: str, now: float) -> None:
        assumed = self.assumed.get(uid)
        if assumed is not None and self.assumed_ttl > 0:
            assumed.deadline = now + self.assumed_ttl

    def forget(self, uid: str) -> None:
        if self.assumed.pop(uid, None) is not None:
            self._remove(uid)

    def is_assumed(self, uid: str) -> bool:
        return uid in self.assumed

    def cleanup_expired(self, now: float) -> list[str]:
        expired = [
            uid for uid, a in self.assumed.items() if a.deadline is not None and a.deadline <= now
        ]
        for uid in expired:
            self.forget(uid)
        return expired

    def _place(self, pod: podinfo.PodInfo, node_name: str) -> None:
        info = self.nodes.get(node_name)
        if info is None:  # pod seen before its node: a placeholder until the node arrives
            info = self.nodes[node_name] = nodeinfo.NodeInfo(name=node_name)
        info.add_pod(pod)
        self.pod_nodes[pod.uid] = node_name
        if pod.has_pod_affinity:
            self.affinity_pods += 1

    def _remove(self, uid: str) -> None:
        node_name = self.pod_nodes.pop(uid, None)
        info = self.nodes.get(node_name or "")
        if info is None:
            return
        pod = info.remove_pod(uid)
        if pod is not None and pod.has_pod_affinity:
            self.affinity_pods -= 1
        if info.node is None and not info.pods:
            del self.nodes[info.name]
            self._changed()

    def pods(self) -> Iterator[podinfo.PodInfo]:
        for info in self.nodes.values():
            yield from info.pods.values()

    # --- other objects -------------------------------------------------------------

    def set_namespace(self, name: str, namespace_labels: Mapping[str, str] | None) -> None:
        if namespace_labels is None:
            self.namespace_labels.pop(name, None)
        else:
            self.namespace_labels[name] = dict(namespace_labels)

    def set_pdb(self, key: str, pdb: Obj | None) -> None:
        if pdb is None:
            self.pdbs.pop(key, None)
        else:
            self.pdbs[key] = pdb

    # --- snapshot ------------------------------------------------------------------

    def snapshot(self) -> framework.Snapshot:
        snap = self._snapshot
        if snap is None:
            real = [info for info in self.nodes.values() if info.node is not None]
            ordered = zone_interleaved(real)
            image_nodes: dict[str, int] = {}
            for info in ordered:
                for image in info.image_sizes:
                    image_nodes[image] = image_nodes.get(image, 0) + 1
            by_name = {info.name: info for info in ordered}
            snap = self._snapshot = framework.Snapshot(ordered, by_name, image_nodes)
        snap.namespace_labels = self.namespace_labels
        snap.pdbs = list(self.pdbs.values())
        snap.affinity_pods = self.affinity_pods
        return snap


def zone_interleaved(nodes: list[nodeinfo.NodeInfo]) -> list[nodeinfo.NodeInfo]:
    """One node from each zone in turn (kube-scheduler's node tree), so that stopping after
    a percentage of nodes still spreads over zones."""
    zones: dict[str, list[nodeinfo.NodeInfo]] = {}
    for info in nodes:
        zone = f"{info.labels.get(REGION_LABEL, '')}:\x00:{info.labels.get(ZONE_LABEL, '')}"
        zones.setdefault(zone, []).append(info)
    if len(zones) <= 1:
        return list(nodes)
    ordered: list[nodeinfo.NodeInfo] = []
    lists = list(zones.values())
    for i in range(max(len(z) for z in lists)):
        ordered.extend(z[i] for z in lists if i < len(z))
    return ordered
