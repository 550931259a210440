from __future__ import annotations

from typing import Any

import pytest

from kybern.scheduler import framework, preemption, scheduler

from . import objects

pytestmark = pytest.mark.timeout(10)


def _preempt(
    nodes: list[Any], pending: Any, pdbs: list[Any] | None = None
) -> framework.PostFilterResult:
    sched = scheduler.Scheduler()
    for n in nodes:
        sched.add_node(n["node"])
        for p in n["pods"]:
            sched.add_pod(p)
    for i, pdb in enumerate(pdbs or []):
        sched.cache.set_pdb(str(i), pdb)
    snap = sched.cache.snapshot()
    pod = sched.pod_info(pending)
    state = framework.CycleState()
    _, _status, _ = sched.framework.run_pre_filter(state, pod, snap)
    statuses = {n.name: sched.framework.run_filter(state, pod, n) for n in snap.nodes}
    return preemption.DefaultPreemption().post_filter(state, pod, snap, statuses, sched.framework)


def _node(name: str, *pods: Any, cpu: str = "2", **kw: Any) -> dict[str, Any]:
    return {"node": objects.node(name, cpu=cpu, **kw), "pods": list(pods)}


def test_evicts_the_fewest_lowest_priority_pods() -> None:
    nodes = [
        _node(
            "n1",
            objects.pod("a", cpu="1", priority=5, node_name="n1"),
            objects.pod("b", cpu="1", priority=1, node_name="n1"),
        ),
        _node(
            "n2",
            objects.pod("c", cpu="1", priority=9, node_name="n2"),
            objects.pod("d", cpu="1", priority=9, node_name="n2"),
        ),
    ]
    result = _preempt(nodes, objects.pod("p", cpu="1", priority=10))
    assert result.status.ok
    assert result.nominated_node == "n1"
    assert [v.name for v in result.victims] == ["b"]  # a is reprieved


def test_only_lower_priority_pods_are_victims() -> None:
    nodes = [_node("n1", objects.pod("a", cpu="2", priority=10, node_name="n1"))]
    result = _preempt(nodes, objects.pod("p", cpu="1", priority=10))
    assert not result.status.ok
    assert result.status.message == (
        "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    )


def test_unresolvable_nodes_are_not_helped() -> None:
    taint = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    nodes = [
        _node("n1", objects.pod("a", cpu="2", priority=0, node_name="n1"), taints=[taint]),
        _node("n2", objects.pod("b", cpu="2", priority=0, node_name="n2"), taints=[taint]),
    ]
    result = _preempt(nodes, objects.pod("p", cpu="1", priority=10))
    assert result.status.message == (
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )


def test_pod_too_big_even_after_evicting_everything() -> None:
    nodes = [_node("n1", objects.pod("a", cpu="1", priority=0, node_name="n1"))]
    result = _preempt(nodes, objects.pod("p", cpu="3", priority=10))
    assert result.status.message == "preemption: 0/1 nodes are available: 1 Insufficient cpu."


def test_preemption_policy_never() -> None:
    nodes = [_node("n1", objects.pod("a", cpu="2", priority=0, node_name="n1"))]
    result = _preempt(
        nodes, objects.pod("p", cpu="1", priority=10, spec={"preemptionPolicy": "Never"})
    )
    assert result.status.message == "not eligible due to preemptionPolicy=Never."


def test_pdb_protected_pods_are_spared_when_another_node_works() -> None:
    nodes = [
        _node("n1", objects.pod("a", cpu="2", priority=0, node_name="n1", labels={"app": "db"})),
        _node("n2", objects.pod("b", cpu="2", priority=0, node_name="n2", labels={"app": "web"})),
    ]
    pdb = {
        "metadata": {"namespace": "default", "name": "db"},
        "spec": {"selector": {"matchLabels": {"app": "db"}}},
        "status": {"disruptionsAllowed": 0},
    }
    result = _preempt(nodes, objects.pod("p", cpu="1", priority=10), [pdb])
    assert result.nominated_node == "n2"
    assert [v.name for v in result.victims] == ["b"]


def test_prefers_node_with_lower_highest_victim_priority() -> None:
    nodes = [
        _node("n1", objects.pod("a", cpu="2", priority=7, node_name="n1")),
        _node("n2", objects.pod("b", cpu="2", priority=3, node_name="n2")),
    ]
    result = _preempt(nodes, objects.pod("p", cpu="1", priority=10))
    assert result.nominated_node == "n2"


def test_split_by_pdb_counts_down_allowed_disruptions() -> None:
    pods = [objects.info(objects.pod(f"p{i}", labels={"app": "x"})) for i in range(3)]
    budget = preemption.Budget(
        "default", preemption.labels.from_label_selector({"matchLabels": {"app": "x"}}), 1
    )
    violating, fine = preemption.split_by_pdb(pods, [budget])
    assert [p.name for p in fine] == ["p0"]
    assert [p.name for p in violating] == ["p1", "p2"]
