"""What a kubelet writes about its node: the Node object, its status, and its Lease.

Pure builders (no I/O) shared by the simulated nodes and, later, the real kubelet. They
follow what kubelet v1.32 writes: the well-known labels, capacity == allocatable here,
the four conditions with the kubelet's reasons and messages, ``nodeInfo``, addresses and a
``coordination.k8s.io/v1`` Lease in ``kube-node-lease`` named after the node (holder = the
node, 40 s duration, renewed every 10 s, ``renewTime`` a MicroTime).
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

KUBELET_VERSION = "v1.32.0-kybern"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
SIMULATED_ANNOTATION = "kybern.io/simulated"

# type -> (status when healthy, reason, message): kubelet's setters in nodestatus/setters.go
HEALTHY_CONDITIONS: list[tuple[str, str, str, str]] = [
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
]


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(moment: datetime.datetime) -> str:
    """Kubernetes' MicroTime: RFC 3339 with microseconds, in UTC."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class NodeSpec:
    """What a node says about itself when it registers."""

    name: str
    internal_ip: str
    pod_cidr: str = ""
    cpu: str = "4"
    memory: str = "16Gi"
    pods: str = "110"
    ephemeral_storage: str = "100Gi"
    arch: str = "amd64"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    taints: list[Obj] = field(default_factory=list)
    os_image: str = "kybern simulated node"
    runtime_version: str = "sim://1.0.0"
    kernel_version: str = "6.1.0-kybern"

    def capacity(self) -> dict[str, str]:
        return {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": self.pods,
            "ephemeral-storage": self.ephemeral_storage,
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
        }


def labels(spec: NodeSpec) -> dict[str, str]:
    return {
        "beta.kubernetes.io/arch": spec.arch,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": spec.arch,
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        **spec.labels,
    }


def node(spec: NodeSpec, now: datetime.datetime) -> Obj:
    """The Node a kubelet registers (status included, as kubelet does)."""
    body: Obj = {"taints": [dict(t) for t in spec.taints]} if spec.taints else {}
    if spec.pod_cidr:
        body["podCIDR"] = spec.pod_cidr
        body["podCIDRs"] = [spec.pod_cidr]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": labels(spec),
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                **spec.annotations,
            },
        },
        "spec": body,
        "status": status(spec, now, previous=None),
    }


def conditions(now: datetime.datetime, previous: list[Obj] | None = None) -> list[Obj]:
    """Healthy conditions; lastTransitionTime kept from ``previous`` when status is unchanged."""
    before = {c.get("type"): c for c in previous or [] if isinstance(c, dict)}
    stamp = rfc3339(now)
    out = []
    for type_, value, reason, message in HEALTHY_CONDITIONS:
        old = before.get(type_) or {}
        transition = old.get("lastTransitionTime") if old.get("status") == value else None
        out.append(
            {
                "type": type_,
                "status": value,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": transition or stamp,
                "reason": reason,
                "message": message,
            }
        )
    return out


def status(spec: NodeSpec, now: datetime.datetime, *, previous: Obj | None) -> Obj:
    """The full node status kubelet posts (conditions stamped ``now``)."""
    prev_conditions = (previous or {}).get("conditions")
    return {
        "capacity": spec.capacity(),
        "allocatable": spec.capacity(),
        "conditions": conditions(now, prev_conditions),
        "addresses": [
            {"type": "InternalIP", "address": spec.internal_ip},
            {"type": "Hostname", "address": spec.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": _id(spec.name, "m"),
            "systemUUID": _id(spec.name, "s"),
            "bootID": _id(spec.name, "b"),
            "kernelVersion": spec.kernel_version,
            "osImage": spec.os_image,
            "containerRuntimeVersion": spec.runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": spec.arch,
        },
        "images": [],
    }


def _id(name: str, salt: str) -> str:
    """A stable 32-hex id per node (machine-id style)."""
    return hashlib.sha256(f"{salt}:{name}".encode()).hexdigest()[:32]


def lease(node_name: str, now: datetime.datetime, *, node_uid: str = "") -> Obj:
    """The node's heartbeat Lease in kube-node-lease, owned by the Node."""
    meta: Obj = {"name": node_name, "namespace": LEASE_NAMESPACE}
    if node_uid:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}
        ]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {
            "holderIdentity": node_name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": micro_time(now),
        },
    }
