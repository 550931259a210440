"""TaintToleration: NoSchedule and NoExecute taints must be tolerated (filter); nodes with
fewer untolerated PreferNoSchedule taints score higher."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kybern.api import placement
from kybern.scheduler import framework

NAME = "TaintToleration"
_STATE_KEY = NAME + "/preferNoSchedule"
_HARD = ("NoSchedule", "NoExecute")


tolerates = placement.tolerates  # shared with the DaemonSet controller


def untolerated(
    taints: Iterable[Mapping[str, Any]], tolerations: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The first NoSchedule/NoExecute taint no toleration tolerates, if any."""
    for taint in taints:
        if taint.get("effect") in _HARD and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def count_intolerable(
    taints: Iterable[Mapping[str, Any]], tolerations: Sequence[Mapping[str, Any]]
) -> int:
    return sum(
        1
        for taint in taints
        if taint.get("effect") == "PreferNoSchedule"
        and not any(tolerates(t, taint) for t in tolerations)
    )


class TaintToleration:
    name = NAME

    def filter(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> framework.Status:
        if not node.taints:
            return framework.SUCCESS
        taint = untolerated(node.taints, pod.tolerations)
        if taint is None:
            return framework.SUCCESS
        reason = (
            f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"
        )
        return framework.Status.unschedulable(reason, plugin=NAME, resolvable=False)

    def pre_score(
        self,
        state: framework.CycleState,
        pod: framework.PodInfo,
        nodes: Sequence[framework.NodeInfo],
        snapshot: framework.Snapshot,
    ) -> framework.Status:
        state.data[_STATE_KEY] = [
            t for t in pod.tolerations if (t.get("effect") or "") in ("", "PreferNoSchedule")
        ]
        return framework.SUCCESS

    def score(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> int:
        if not node.taints:
            return 0
        return count_intolerable(node.taints, state.data.get(_STATE_KEY, pod.tolerations))

    def normalize_score(
        self, state: framework.CycleState, pod: framework.PodInfo, scores: list[int]
    ) -> None:
        framework.default_normalize_score(scores, reverse=True)


def new(args: Mapping[str, Any]) -> TaintToleration:
    return TaintToleration()


_f: framework.FilterPlugin = TaintToleration()
_s: framework.ScorePlugin = TaintToleration()
_n: framework.NormalizeScorePlugin = TaintToleration()
_p: framework.PreScorePlugin = TaintToleration()
