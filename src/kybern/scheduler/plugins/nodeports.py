"""NodePorts: a pod's host ports must be free on the node (same protocol and port, and
the same host IP or either side on 0.0.0.0)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kybern.scheduler import framework

NAME = "NodePorts"
REASON = "node(s) didn't have free ports for the requested pod ports"
_REJECTED = framework.Status.unschedulable(REASON, plugin=NAME)
ANY_IP = "0.0.0.0"

Port = tuple[str, str, int]


def fits(wanted: Iterable[Port], used: Mapping[Port, int]) -> bool:
    if not used:
        return True
    for ip, protocol, port in wanted:
        for used_ip, used_protocol, used_port in used:
            if used_port != port or used_protocol != protocol:
                continue
            if ANY_IP in (ip, used_ip) or ip == used_ip:
                return False
    return True


class NodePorts:
    name = NAME

    def pre_filter(
        self, state: framework.CycleState, pod: framework.PodInfo, snapshot: framework.Snapshot
    ) -> tuple[set[str] | None, framework.Status]:
        return None, framework.SUCCESS if pod.ports else framework.SKIP

    def filter(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> framework.Status:
        return framework.SUCCESS if fits(pod.ports, node.used_ports) else _REJECTED


def new(args: Mapping[str, Any]) -> NodePorts:
    return NodePorts()


_f: framework.FilterPlugin = NodePorts()
_p: framework.PreFilterPlugin = NodePorts()
