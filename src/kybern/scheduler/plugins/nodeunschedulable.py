"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take only pods that tolerate
the ``node.kubernetes.io/unschedulable:NoSchedule`` taint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kybern.scheduler import framework
from kybern.scheduler.plugins import tainttoleration

NAME = "NodeUnschedulable"
REASON = "node(s) were unschedulable"
TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
_REJECTED = framework.Status.unschedulable(REASON, plugin=NAME, resolvable=False)


def fits(pod: framework.PodInfo, node: framework.NodeInfo) -> bool:
    if not node.unschedulable:
        return True
    return any(tainttoleration.tolerates(t, TAINT) for t in pod.tolerations)


class NodeUnschedulable:
    name = NAME

    def filter(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> framework.Status:
        return framework.SUCCESS if fits(pod, node) else _REJECTED


def new(args: Mapping[str, Any]) -> NodeUnschedulable:
    return NodeUnschedulable()


_: framework.FilterPlugin = NodeUnschedulable()
