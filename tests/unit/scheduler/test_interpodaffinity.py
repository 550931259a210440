from __future__ import annotations

from typing import Any

import pytest

from kybern.scheduler import framework, nodeinfo
from kybern.scheduler.plugins import interpodaffinity as ipa

from . import objects

pytestmark = pytest.mark.timeout(10)
ZONE = "topology.kubernetes.io/zone"


def _term(app: str, key: str = ZONE, **extra: Any) -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key, **extra}


def _nodes(*existing: tuple[str, dict[str, Any]]) -> list[nodeinfo.NodeInfo]:
    """Zone a: n1 (existing pods), zone b: n2 (empty)."""
    pods = [
        objects.pod(f"e{i}", labels={"app": app}, node_name="n1", spec=spec)
        for i, (app, spec) in enumerate(existing)
    ]
    return [
        objects.node_info(objects.node("n1", labels={ZONE: "a"}), *pods),
        objects.node_info(objects.node("n2", labels={ZONE: "b"})),
    ]


def _filter(
    nodes: list[nodeinfo.NodeInfo], spec: dict[str, Any], labels: dict[str, str] | None = None
) -> list[framework.Status]:
    plugin = ipa.InterPodAffinity()
    p = objects.info(objects.pod("new", labels=labels or {"app": "new"}, spec=spec))
    state = framework.CycleState()
    _, status = plugin.pre_filter(state, p, objects.snapshot(*nodes))
    if status.code is framework.Code.SKIP:
        return [framework.SUCCESS for _ in nodes]
    return [plugin.filter(state, p, n) for n in nodes]


def _affinity(kind: str, *terms: dict[str, Any]) -> dict[str, Any]:
    return {"affinity": {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}}


def test_required_affinity_needs_a_matching_pod_in_the_domain() -> None:
    n1, n2 = _filter(_nodes(("db", {})), _affinity("podAffinity", _term("db")))
    assert n1.ok
    assert n2.reasons == ("node(s) didn't match pod affinity rules",)
    assert n2.code is framework.Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_first_pod_of_a_self_affine_group_may_go_anywhere() -> None:
    results = _filter(_nodes(), _affinity("podAffinity", _term("web")), labels={"app": "web"})
    assert all(s.ok for s in results)
    results = _filter(_nodes(), _affinity("podAffinity", _term("db")))
    assert not any(s.ok for s in results)


def test_required_anti_affinity_avoids_the_domain() -> None:
    n1, n2 = _filter(_nodes(("db", {})), _affinity("podAntiAffinity", _term("db")))
    assert n1.reasons == ("node(s) didn't match pod anti-affinity rules",)
    assert n1.code is framework.Code.UNSCHEDULABLE
    assert n2.ok


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    existing = ("db", _affinity("podAntiAffinity", _term("new", "kubernetes.io/hostname")))
    n1, n2 = _filter(_nodes(existing), {})
    assert n1.reasons == ("node(s) didn't satisfy existing pods anti-affinity rules",)
    assert n2.ok


def test_namespaces_limit_the_term() -> None:
    nodes = _nodes(("db", {}))
    term = _term("db", namespaces=["other"])
    assert all(s.ok for s in _filter(nodes, _affinity("podAntiAffinity", term)))


def test_preferred_affinity_scores_the_domain() -> None:
    nodes = _nodes(("db", {}))
    spec = {
        "affinity": {
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 50, "podAffinityTerm": _term("db")}
                ]
            }
        }
    }
    plugin = ipa.InterPodAffinity()
    p = objects.info(objects.pod("new", spec=spec))
    state = framework.CycleState()
    assert plugin.pre_score(state, p, nodes, objects.snapshot(*nodes)).ok
    scores = [plugin.score(state, p, n) for n in nodes]
    assert scores == [50, 0]
    plugin.normalize_score(state, p, scores)
    assert scores == [100, 0]


def test_preferred_anti_affinity_scores_against() -> None:
    nodes = _nodes(("db", {}))
    spec = {
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 20, "podAffinityTerm": _term("db")}
                ]
            }
        }
    }
    plugin = ipa.InterPodAffinity()
    p = objects.info(objects.pod("new", spec=spec))
    state = framework.CycleState()
    plugin.pre_score(state, p, nodes, objects.snapshot(*nodes))
    scores = [plugin.score(state, p, n) for n in nodes]
    plugin.normalize_score(state, p, scores)
    assert scores == [0, 100]
