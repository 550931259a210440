"""NodeResourcesFit: the pod's requests (cpu, memory, ephemeral-storage, extended
resources, and one more pod) must fit the node's allocatable minus what its pods request.

Scoring strategies (Borg's names in brackets): LeastAllocated [worst fit, spreads load,
the default], MostAllocated [best fit, packs nodes], RequestedToCapacityRatio [hybrid: a
piecewise-linear utilisation -> score shape]. Scoring counts cpu and memory with
Kubernetes' non-zero defaults (100m, 200Mi) for containers that request nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from kybern.scheduler import framework, podinfo

NAME = "NodeResourcesFit"
LEAST_ALLOCATED = "LeastAllocated"
MOST_ALLOCATED = "MostAllocated"
REQUESTED_TO_CAPACITY_RATIO = "RequestedToCapacityRatio"
TOO_MANY_PODS = "Too many pods"
DEFAULT_RESOURCES = ((podinfo.CPU, 1), (podinfo.MEMORY, 1))
DEFAULT_SHAPE = ((0, 0), (100, 10))  # RequestedToCapacityRatio: bin packing
_FIXED = (podinfo.CPU, podinfo.MEMORY, podinfo.EPHEMERAL_STORAGE)


def insufficient(pod: podinfo.PodInfo, node: framework.NodeInfo) -> list[str]:
    """Kubernetes' reasons, in its order: pods, cpu, memory, ephemeral-storage, extended."""
    reasons = []
    if len(node.pods) + 1 > node.allowed_pods:
        reasons.append(TOO_MANY_PODS)
    requests = pod.requests
    if not requests:
        return reasons
    allocatable, requested = node.allocatable, node.requested
    for name in _FIXED:
        want = requests.get(name, 0)
        if want and want > allocatable.get(name, 0) - requested.get(name, 0):
            reasons.append(f"Insufficient {name}")
    for name, want in requests.items():
        if name in _FIXED or not want:
            continue
        if want > allocatable.get(name, 0) - requested.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


def requested_after(pod: podinfo.PodInfo, node: framework.NodeInfo, name: str) -> int:
    """What the node would have requested for ``name`` with the pod, non-zero defaults."""
    if name == podinfo.CPU:
        return node.non_zero_cpu + pod.non_zero_cpu
    if name == podinfo.MEMORY:
        return node.non_zero_memory + pod.non_zero_memory
    return node.requested.get(name, 0) + pod.requests.get(name, 0)


def least_allocated(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * framework.MAX_NODE_SCORE // capacity


def most_allocated(requested: int, capacity: int) -> int:
    if capacity == 0:
        return 0
    return min(requested, capacity) * framework.MAX_NODE_SCORE // capacity


def shape_scorer(shape: Sequence[tuple[int, int]]) -> Any:
    """A piecewise-linear utilisation (0-100) -> score (0-10, scaled to 0-100) function."""
    points = [(u, s * framework.MAX_NODE_SCORE // 10) for u, s in shape]

    def score(requested: int, capacity: int) -> int:
        if capacity == 0:
            return 0
        utilization = min(requested * 100 // capacity, 100)
        if utilization <= points[0][0]:
            return points[0][1]
        for (u0, s0), (u1, s1) in itertools.pairwise(points):
            if utilization <= u1:
                return s0 + (s1 - s0) * (utilization - u0) // (u1 - u0)
        return points[-1][1]

    return score


class NodeResourcesFit:
    name = NAME

    def __init__(
        self,
        *,
        strategy: str = LEAST_ALLOCATED,
        resources: Sequence[tuple[str, int]] = DEFAULT_RESOURCES,
        shape: Sequence[tuple[int, int]] = DEFAULT_SHAPE,
    ) -> None:
        self.strategy = strategy
        self.resources = tuple(resources)
        self._scorer = {
            LEAST_ALLOCATED: least_allocated,
            MOST_ALLOCATED: most_allocated,
            REQUESTED_TO_CAPACITY_RATIO: shape_scorer(shape),
        }[strategy]

    def filter(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> framework.Status:
        reasons = insufficient(pod, node)
        if not reasons:
            return framework.SUCCESS
        return framework.Status.unschedulable(*reasons, plugin=NAME)

    def score(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> int:
        total = weights = 0
        allocatable = node.allocatable
        for name, weight in self.resources:
            capacity = allocatable.get(name, 0)
            if capacity == 0 and name not in (podinfo.CPU, podinfo.MEMORY):
                continue  # an extended resource this node does not have does not count
            total += self._scorer(requested_after(pod, node, name), capacity) * weight
            weights += weight
        return total // weights if weights else 0


def new(args: Mapping[str, Any]) -> NodeResourcesFit:
    strategy = args.get("scoringStrategy") or {}
    resources = [(r["name"], int(r.get("weight", 1))) for r in strategy.get("resources") or ()]
    shape = (strategy.get("requestedToCapacityRatio") or {}).get("shape") or ()
    return NodeResourcesFit(
        strategy=strategy.get("type") or LEAST_ALLOCATED,
        resources=resources or DEFAULT_RESOURCES,
        shape=[(int(p["utilization"]), int(p["score"])) for p in shape] or DEFAULT_SHAPE,
    )


_f: framework.FilterPlugin = NodeResourcesFit()
_s: framework.ScorePlugin = NodeResourcesFit()
