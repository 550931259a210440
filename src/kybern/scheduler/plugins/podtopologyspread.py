"""PodTopologySpread: spread matching pods across topology domains.

DoNotSchedule constraints filter: placing the pod must keep ``count(domain) + self -
min(count over domains)`` within maxSkew (the minimum is 0 while fewer than minDomains
domains exist). ScheduleAnyway constraints score: fewer matching pods in the node's domain
is better. Only nodes that pass the pod's nodeSelector/node affinity (nodeAffinityPolicy
Honor, the default) and carry the topology key count as domains. No default constraints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from kybern.scheduler import framework, podinfo
from kybern.scheduler.plugins import nodeaffinity, tainttoleration

NAME = "PodTopologySpread"
REASON = "node(s) didn't match pod topology spread constraints"
REASON_MISSING_LABEL = REASON + " (missing required label)"
DO_NOT_SCHEDULE = "DoNotSchedule"
SCHEDULE_ANYWAY = "ScheduleAnyway"
_FILTER_KEY = NAME + "/filter"
_SCORE_KEY = NAME + "/score"
_REJECTED = framework.Status.unschedulable(REASON, plugin=NAME)
_MISSING = framework.Status.unschedulable(REASON_MISSING_LABEL, plugin=NAME, resolvable=False)

Counts = dict[tuple[str, str], int]


def eligible(
    pod: podinfo.PodInfo, node: framework.NodeInfo, constraint: podinfo.SpreadConstraint
) -> bool:
    if constraint.honor_node_affinity and not nodeaffinity.fits(pod, node.labels, node.name):
        return False
    return not (
        constraint.honor_taints and tainttoleration.untolerated(node.taints, pod.tolerations)
    )


def count_matching(node: framework.NodeInfo, namespace: str, selector: Any) -> int:
    return sum(
        1
        for other in node.pods.values()
        if other.namespace == namespace
        and selector.matches(other.labels)
        and not (other.obj.get("metadata") or {}).get("deletionTimestamp")
    )


def domain_counts(
    pod: podinfo.PodInfo,
    nodes: Sequence[framework.NodeInfo],
    constraints: Sequence[podinfo.SpreadConstraint],
) -> Counts:
    counts: Counts = {}
    keys = [c.topology_key for c in constraints]
    for node in nodes:
        if any(k not in node.labels for k in keys):
            continue
        for c in constraints:
            if not eligible(pod, node, c):
                continue
            pair = (c.topology_key, node.labels[c.topology_key])
            counts[pair] = counts.get(pair, 0) + count_matching(node, pod.namespace, c.selector)
    return counts


def skew_ok(
    pod: podinfo.PodInfo, node: framework.NodeInfo, c: podinfo.SpreadConstraint, counts: Counts
) -> bool:
    domains = [n for (key, _), n in counts.items() if key == c.topology_key]
    global_min = min(domains) if domains else 0
    if len(domains) < c.min_domains:
        global_min = 0
    self_match = 1 if c.selector.matches(pod.labels) else 0
    match = counts.get((c.topology_key, node.labels[c.topology_key]), 0)
    return match + self_match - global_min <= c.max_skew


class PodTopologySpread:
    name = NAME

    def pre_filter(
        self, state: framework.CycleState, pod: framework.PodInfo, snapshot: framework.Snapshot
    ) -> tuple[set[str] | None, framework.Status]:
        hard = [c for c in pod.spread_constraints if c.when_unsatisfiable == DO_NOT_SCHEDULE]
        if not hard:
            return None, framework.SKIP
        state.data[_FILTER_KEY] = (hard, domain_counts(pod, snapshot.nodes, hard))
        return None, framework.SUCCESS

    def filter(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> framework.Status:
        hard, counts = state.data[_FILTER_KEY]
        for c in hard:
            if c.topology_key not in node.labels:
                return _MISSING
            if not skew_ok(pod, node, c, counts):
                return _REJECTED
        return framework.SUCCESS

    def pre_score(
        self,
        state: framework.CycleState,
        pod: framework.PodInfo,
        nodes: Sequence[framework.NodeInfo],
        snapshot: framework.Snapshot,
    ) -> framework.Status:
        soft = [c for c in pod.spread_constraints if c.when_unsatisfiable == SCHEDULE_ANYWAY]
        if not soft:
            return framework.SKIP
        counts = domain_counts(pod, snapshot.nodes, soft)
        weights = []
        for c in soft:
            domains = {n.labels[c.topology_key] for n in nodes if c.topology_key in n.labels}
            weights.append(math.log(len(domains) + 2))
        state.data[_SCORE_KEY] = (soft, counts, weights)
        return framework.SUCCESS

    def score(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> int:
        soft, counts, weights = state.data[_SCORE_KEY]
        if any(c.topology_key not in node.labels for c in soft):
            return -1  # ignored node: scores 0 after normalisation
        total = 0.0
        for c, weight in zip(soft, weights, strict=True):
            matched = counts.get((c.topology_key, node.labels[c.topology_key]), 0)
            total += matched * weight + (c.max_skew - 1)
        return round(total)

    def normalize_score(
        self, state: framework.CycleState, pod: framework.PodInfo, scores: list[int]
    ) -> None:
        valid = [s for s in scores if s >= 0]
        if not valid:
            scores[:] = [0] * len(scores)
            return
        low, high = min(valid), max(valid)
        for i, s in enumerate(scores):
            if s < 0:
                scores[i] = 0
            elif high == 0:
                scores[i] = framework.MAX_NODE_SCORE
            else:
                scores[i] = framework.MAX_NODE_SCORE * (high + low - s) // high


def new(args: Mapping[str, Any]) -> PodTopologySpread:
    return PodTopologySpread()


_f: framework.FilterPlugin = PodTopologySpread()
_pf: framework.PreFilterPlugin = PodTopologySpread()
_s: framework.ScorePlugin = PodTopologySpread()
