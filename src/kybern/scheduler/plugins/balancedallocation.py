"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory utilisation would be
close to each other after placing the pod (score = (1 - std deviation of fractions) * 100)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from kybern.scheduler import framework, podinfo

NAME = "NodeResourcesBalancedAllocation"
DEFAULT_RESOURCES = (podinfo.CPU, podinfo.MEMORY)


def balance(fractions: Sequence[float]) -> int:
    if not fractions:
        return framework.MAX_NODE_SCORE
    if len(fractions) == 2:
        std = abs(fractions[0] - fractions[1]) / 2
    else:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    return int((1 - std) * framework.MAX_NODE_SCORE)


class BalancedAllocation:
    name = NAME

    def __init__(self, resources: Sequence[str] = DEFAULT_RESOURCES) -> None:
        self.resources = tuple(resources)

    def pre_score(
        self,
        state: framework.CycleState,
        pod: framework.PodInfo,
        nodes: Sequence[framework.NodeInfo],
        snapshot: framework.Snapshot,
    ) -> framework.Status:
        if not any(pod.requests.get(name) for name in self.resources):
            return framework.SKIP  # best-effort pods would all pile onto one node
        return framework.SUCCESS

    def score(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> int:
        fractions = []
        for name in self.resources:
            capacity = node.allocatable.get(name, 0)
            if capacity == 0:
                continue
            requested = node.requested.get(name, 0) + pod.requests.get(name, 0)
            fractions.append(min(requested / capacity, 1.0))
        return balance(fractions)


def new(args: Mapping[str, Any]) -> BalancedAllocation:
    names = [r["name"] for r in args.get("resources") or ()]
    return BalancedAllocation(names or DEFAULT_RESOURCES)


_s: framework.ScorePlugin = BalancedAllocation()
_p: framework.PreScorePlugin = BalancedAllocation()
