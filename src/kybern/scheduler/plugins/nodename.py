"""NodeName: a pod that names a node (spec.nodeName) fits only that node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kybern.scheduler import framework

NAME = "NodeName"
REASON = "node(s) didn't match the requested node name"
_REJECTED = framework.Status.unschedulable(REASON, plugin=NAME, resolvable=False)


def fits(pod: framework.PodInfo, node: framework.NodeInfo) -> bool:
    return not pod.node_name or pod.node_name == node.name


class NodeName:
    name = NAME

    def filter(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> framework.Status:
        return framework.SUCCESS if fits(pod, node) else _REJECTED


def new(args: Mapping[str, Any]) -> NodeName:
    return NodeName()


_: framework.FilterPlugin = NodeName()
