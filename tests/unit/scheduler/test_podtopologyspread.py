from __future__ import annotations

from typing import Any

import pytest

from kybern.scheduler import framework, nodeinfo
from kybern.scheduler.plugins import podtopologyspread as pts

from . import objects

pytestmark = pytest.mark.timeout(10)
ZONE = "topology.kubernetes.io/zone"


def _constraint(when: str = "DoNotSchedule", skew: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "maxSkew": skew,
        "topologyKey": ZONE,
        "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": {"app": "web"}},
        **extra,
    }


def _cluster(counts: dict[str, int], *, extra_zone: str = "") -> list[nodeinfo.NodeInfo]:
    nodes = []
    for zone, count in counts.items():
        pods = [
            objects.pod(f"{zone}-{i}", labels={"app": "web"}, node_name=f"n-{zone}")
            for i in range(count)
        ]
        nodes.append(objects.node_info(objects.node(f"n-{zone}", labels={ZONE: zone}), *pods))
    if extra_zone:
        nodes.append(objects.node_info(objects.node("n-nolabel")))
    return nodes


def _filter(
    nodes: list[nodeinfo.NodeInfo], constraint: dict[str, Any]
) -> dict[str, framework.Status]:
    plugin = pts.PodTopologySpread()
    p = objects.info(
        objects.pod("new", labels={"app": "web"}, spec={"topologySpreadConstraints": [constraint]})
    )
    state = framework.CycleState()
    _, status = plugin.pre_filter(state, p, objects.snapshot(*nodes))
    assert status.ok
    return {n.name: plugin.filter(state, p, n) for n in nodes}


def test_do_not_schedule_keeps_skew_within_max_skew() -> None:
    result = _filter(_cluster({"a": 2, "b": 1, "c": 1}), _constraint())
    assert [result[n].ok for n in ("n-a", "n-b", "n-c")] == [False, True, True]
    assert result["n-a"].reasons == ("node(s) didn't match pod topology spread constraints",)
    assert result["n-a"].code is framework.Code.UNSCHEDULABLE


def test_max_skew_two_allows_more() -> None:
    result = _filter(_cluster({"a": 2, "b": 1}), _constraint(skew=2))
    assert result["n-a"].ok
    assert result["n-b"].ok


def test_node_without_topology_key_is_unresolvable() -> None:
    result = _filter(_cluster({"a": 0}, extra_zone="x"), _constraint())
    status = result["n-nolabel"]
    assert status.code is framework.Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == (
        "node(s) didn't match pod topology spread constraints (missing required label)",
    )


def test_min_domains_counts_missing_domains_as_zero() -> None:
    # two domains with 1 pod each: min is 1 normally; with minDomains 3 the min is 0
    assert _filter(_cluster({"a": 1, "b": 1}), _constraint())["n-a"].ok
    assert not _filter(_cluster({"a": 1, "b": 1}), _constraint(minDomains=3))["n-a"].ok


def test_node_affinity_policy_honor_ignores_ineligible_domains() -> None:
    nodes = _cluster({"a": 3, "b": 0})
    nodes[1].labels["pool"] = "other"
    plugin = pts.PodTopologySpread()
    spec = {"topologySpreadConstraints": [_constraint()], "nodeSelector": {}}
    spec["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "DoesNotExist"}]}
                ]
            }
        }
    }
    p = objects.info(objects.pod("new", labels={"app": "web"}, spec=spec))
    state = framework.CycleState()
    plugin.pre_filter(state, p, objects.snapshot(*nodes))
    assert plugin.filter(state, p, nodes[0]).ok  # zone b is not eligible: only zone a counts


def test_schedule_anyway_scores_emptier_domains_higher() -> None:
    nodes = _cluster({"a": 3, "b": 1, "c": 0})
    plugin = pts.PodTopologySpread()
    p = objects.info(
        objects.pod(
            "new",
            labels={"app": "web"},
            spec={"topologySpreadConstraints": [_constraint("ScheduleAnyway")]},
        )
    )
    state = framework.CycleState()
    _, status = plugin.pre_filter(state, p, objects.snapshot(*nodes))
    assert status.code is framework.Code.SKIP
    assert plugin.pre_score(state, p, nodes, objects.snapshot(*nodes)).ok
    scores = [plugin.score(state, p, n) for n in nodes]
    plugin.normalize_score(state, p, scores)
    assert scores[2] == 100
    assert scores[0] < scores[1] < scores[2]
