"""InterPodAffinity: required pod affinity / anti-affinity of the incoming pod, the
required anti-affinity of pods already running (symmetry), and preferred terms scored by
topology domain (existing pods' preferred terms and required affinity count too)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kybern.scheduler import framework, podinfo

NAME = "InterPodAffinity"
REASON_AFFINITY = "node(s) didn't match pod affinity rules"
REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1
_FILTER_KEY = NAME + "/filter"
_SCORE_KEY = NAME + "/score"
_AFFINITY = framework.Status.unschedulable(REASON_AFFINITY, plugin=NAME, resolvable=False)
_ANTI = framework.Status.unschedulable(REASON_ANTI_AFFINITY, plugin=NAME)
_EXISTING = framework.Status.unschedulable(REASON_EXISTING_ANTI_AFFINITY, plugin=NAME)

Counts = dict[tuple[str, str], int]
NamespaceLabels = Mapping[str, Mapping[str, str]]


def _bump(counts: Counts, term: podinfo.AffinityTerm, node: framework.NodeInfo, by: int) -> None:
    value = node.labels.get(term.topology_key)
    if value is not None:
        pair = (term.topology_key, value)
        counts[pair] = counts.get(pair, 0) + by


def required_counts(
    pod: podinfo.PodInfo, nodes: Sequence[framework.NodeInfo], ns: NamespaceLabels
) -> tuple[Counts, Counts, Counts]:
    """(existing pods' anti-affinity to this pod, affinity matches, anti-affinity matches)
    per (topologyKey, value)."""
    existing: Counts = {}
    affinity: Counts = {}
    anti: Counts = {}
    own_terms = bool(pod.affinity or pod.anti_affinity)
    for node in nodes:
        if not own_terms and not node.pods_with_affinity:
            continue
        for other in node.pods.values():
            if node.pods_with_affinity:
                for term in other.anti_affinity:
                    if term.matches(pod, ns):
                        _bump(existing, term, node, 1)
            if pod.affinity and all(t.matches(other, ns) for t in pod.affinity):
                for term in pod.affinity:
                    _bump(affinity, term, node, 1)
            for term in pod.anti_affinity:
                if term.matches(other, ns):
                    _bump(anti, term, node, 1)
    return existing, affinity, anti


def _any_pair(labels: Mapping[str, str], counts: Counts) -> bool:
    return any(counts.get((key, value), 0) > 0 for key, value in labels.items())


def satisfies_affinity(
    pod: podinfo.PodInfo, node: framework.NodeInfo, affinity: Counts, ns: NamespaceLabels
) -> bool:
    ok = True
    for term in pod.affinity:
        value = node.labels.get(term.topology_key)
        if value is None or affinity.get((term.topology_key, value), 0) <= 0:
            ok = False
            break
    if ok:
        return True
    # No pod anywhere matches: the first pod of a self-affine group may go anywhere.
    return not affinity and all(t.matches(pod, ns) for t in pod.affinity)


class InterPodAffinity:
    name = NAME

    def pre_filter(
        self, state: framework.CycleState, pod: framework.PodInfo, snapshot: framework.Snapshot
    ) -> tuple[set[str] | None, framework.Status]:
        if not pod.affinity and not pod.anti_affinity and not snapshot.has_pods_with_affinity:
            return None, framework.SKIP
        ns = snapshot.namespace_labels
        state.data[_FILTER_KEY] = (required_counts(pod, snapshot.nodes, ns), ns)
        return None, framework.SUCCESS

    def filter(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> framework.Status:
        (existing, affinity, anti), ns = state.data[_FILTER_KEY]
        if existing and _any_pair(node.labels, existing):
            return _EXISTING
        for term in pod.anti_affinity:
            value = node.labels.get(term.topology_key)
            if value is not None and anti.get((term.topology_key, value), 0) > 0:
                return _ANTI
        if pod.affinity and not satisfies_affinity(pod, node, affinity, ns):
            return _AFFINITY
        return framework.SUCCESS

    def pre_score(
        self,
        state: framework.CycleState,
        pod: framework.PodInfo,
        nodes: Sequence[framework.NodeInfo],
        snapshot: framework.Snapshot,
    ) -> framework.Status:
        has_preferred = pod.preferred_affinity or pod.preferred_anti_affinity
        if not has_preferred and not snapshot.has_pods_with_affinity:
            return framework.SKIP
        state.data[_SCORE_KEY] = topology_scores(pod, snapshot)
        return framework.SUCCESS

    def score(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> int:
        scores: Counts = state.data[_SCORE_KEY]
        return sum(scores.get((key, value), 0) for key, value in node.labels.items())

    def normalize_score(
        self, state: framework.CycleState, pod: framework.PodInfo, scores: list[int]
    ) -> None:
        low, high = min(scores, default=0), max(scores, default=0)
        span = high - low
        for i, s in enumerate(scores):
            scores[i] = framework.MAX_NODE_SCORE * (s - low) // span if span else 0


def topology_scores(pod: podinfo.PodInfo, snapshot: framework.Snapshot) -> Counts:
    ns = snapshot.namespace_labels
    scores: Counts = {}
    for node in snapshot.nodes:
        for other in node.pods.values():
            for term in pod.preferred_affinity:
                if term.matches(other, ns):
                    _bump(scores, term, node, term.weight)
            for term in pod.preferred_anti_affinity:
                if term.matches(other, ns):
                    _bump(scores, term, node, -term.weight)
            if not other.has_pod_affinity:
                continue
            for term in other.affinity:
                if term.matches(pod, ns):
                    _bump(scores, term, node, HARD_POD_AFFINITY_WEIGHT)
            for term in other.preferred_affinity:
                if term.matches(pod, ns):
                    _bump(scores, term, node, term.weight)
            for term in other.preferred_anti_affinity:
                if term.matches(pod, ns):
                    _bump(scores, term, node, -term.weight)
    return scores


def new(args: Mapping[str, Any]) -> InterPodAffinity:
    return InterPodAffinity()


_f: framework.FilterPlugin = InterPodAffinity()
_pf: framework.PreFilterPlugin = InterPodAffinity()
_s: framework.ScorePlugin = InterPodAffinity()
