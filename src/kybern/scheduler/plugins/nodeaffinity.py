"""NodeAffinity: nodeSelector and required node affinity filter nodes (terms are ORed,
expressions within a term ANDed; matchFields on metadata.name narrows PreFilter to those
nodes); preferred node affinity adds the weights of matching terms to the score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kybern.scheduler import framework, podinfo

NAME = "NodeAffinity"
REASON = "node(s) didn't match Pod's node affinity/selector"
_REJECTED = framework.Status.unschedulable(REASON, plugin=NAME, resolvable=False)


def fits(pod: podinfo.PodInfo, node_labels: Mapping[str, str], node_name: str) -> bool:
    """Whether a node satisfies the pod's nodeSelector and required node affinity."""
    for key, value in pod.node_selector.items():
        if node_labels.get(key) != value:
            return False
    terms = pod.required_node_affinity
    if terms is None:
        return True
    return any(term.matches(node_labels, node_name) for term in terms)


def required_node_names(pod: podinfo.PodInfo) -> set[str] | None:
    """Node names the pod can only go to when every term pins metadata.name with In."""
    terms = pod.required_node_affinity
    if not terms:
        return None
    names: set[str] = set()
    for term in terms:
        pinned = [r for r in term.field_names if r.key == "metadata.name" and r.operator == "in"]
        if not pinned:
            return None
        term_names = set(pinned[0].values)
        for req in pinned[1:]:
            term_names &= set(req.values)
        names |= term_names
    return names


def preferred_score(pod: podinfo.PodInfo, node: framework.NodeInfo) -> int:
    return sum(
        weight
        for weight, term in pod.preferred_node_affinity
        if term.matches(node.labels, node.name)
    )


class NodeAffinity:
    name = NAME

    def pre_filter(
        self, state: framework.CycleState, pod: framework.PodInfo, snapshot: framework.Snapshot
    ) -> tuple[set[str] | None, framework.Status]:
        if not pod.node_selector and pod.required_node_affinity is None:
            return None, framework.SKIP
        return required_node_names(pod), framework.SUCCESS

    def filter(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> framework.Status:
        return framework.SUCCESS if fits(pod, node.labels, node.name) else _REJECTED

    def pre_score(
        self,
        state: framework.CycleState,
        pod: framework.PodInfo,
        nodes: Sequence[framework.NodeInfo],
        snapshot: framework.Snapshot,
    ) -> framework.Status:
        return framework.SUCCESS if pod.preferred_node_affinity else framework.SKIP

    def score(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> int:
        return preferred_score(pod, node)

    def normalize_score(
        self, state: framework.CycleState, pod: framework.PodInfo, scores: list[int]
    ) -> None:
        framework.default_normalize_score(scores)


def new(args: Mapping[str, Any]) -> NodeAffinity:
    return NodeAffinity()


_f: framework.FilterPlugin = NodeAffinity()
_pf: framework.PreFilterPlugin = NodeAffinity()
_s: framework.ScorePlugin = NodeAffinity()
