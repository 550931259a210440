"""The whole cycle on in-memory nodes and pods, through the in-memory ClusterAPI."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from kybern.scheduler import adapter, framework, plugins, scheduler

from . import objects

pytestmark = pytest.mark.timeout(30)
CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _setup(
    *nodes: dict[str, Any], **kw: Any
) -> tuple[scheduler.Scheduler, adapter.InMemoryCluster, FakeClock]:
    clock = FakeClock()
    cluster = adapter.InMemoryCluster()
    sched = scheduler.Scheduler(cluster=cluster, clock=clock, rng=random.Random(1), **kw)
    cluster.scheduler = sched
    for n in nodes:
        sched.add_node(n)
    return sched, cluster, clock


async def _drain(sched: scheduler.Scheduler) -> None:
    while await sched.run_once():
        pass


async def test_binds_and_records_the_scheduled_event() -> None:
    sched, cluster, _ = _setup(objects.node("n1"))
    sched.add_pod(objects.pod("p", cpu="1"))
    await _drain(sched)
    assert cluster.bindings == [("default/p", "n1")]
    assert cluster.events == [
        ("default/p", "Normal", "Scheduled", "Successfully assigned default/p to n1")
    ]
    assert not sched.cache.is_assumed("uid-default-p")  # confirmed by the fed-back pod


async def test_failed_scheduling_message_is_kubernetes_summary() -> None:
    sched, cluster, _ = _setup(
        objects.node("worker", cpu="1"),
        objects.node("cp1", cpu="8", taints=[CONTROL_PLANE]),
        objects.node("cp2", cpu="8", taints=[CONTROL_PLANE]),
    )
    sched.add_pod(objects.pod("p", cpu="2"))
    await _drain(sched)
    message = (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: "
        "1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
    )
    assert cluster.events == [("default/p", "Warning", "FailedScheduling", message)]
    _name, status = cluster.statuses[0]
    assert status["conditions"] == [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    ]
    assert "uid-default-p" in sched.queue.unschedulable


async def test_preemption_message_when_nothing_can_be_preempted() -> None:
    sched, cluster, _ = _setup(*(objects.node(f"n{i}", taints=[CONTROL_PLANE]) for i in range(3)))
    sched.add_pod(objects.pod("p"))
    await _drain(sched)
    assert cluster.events[0][3] == (
        "0/3 nodes are available: 3 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )


async def test_unschedulable_pod_retried_when_a_node_arrives() -> None:
    sched, cluster, clock = _setup(objects.node("small", cpu="1"))
    sched.add_pod(objects.pod("p", cpu="2"))
    await _drain(sched)
    assert not cluster.bindings
    sched.add_node(objects.node("big", cpu="4"))
    clock.now += 1  # backoff
    await _drain(sched)
    assert cluster.bindings == [("default/p", "big")]


async def test_no_nodes() -> None:
    sched, cluster, _ = _setup()
    sched.add_pod(objects.pod("p"))
    await _drain(sched)
    assert cluster.events[0][3] == "no nodes available to schedule pods"


async def test_preemption_deletes_victims_nominates_then_binds() -> None:
    sched, cluster, clock = _setup(objects.node("n1", cpu="2"))
    sched.add_pod(objects.pod("low", cpu="2", priority=0, node_name="n1"))
    sched.add_pod(objects.pod("high", cpu="1", priority=100))
    assert await sched.run_once()
    assert cluster.deleted == ["default/low"]
    assert cluster.statuses[0][1]["nominatedNodeName"] == "n1"
    assert (
        "default/low",
        "Normal",
        "Preempted",
        "Preempted by pod uid-default-high on node n1",
    ) in cluster.events
    clock.now += 1
    await _drain(sched)  # the victim's deletion requeued the preemptor
    assert cluster.bindings == [("default/high", "n1")]


async def test_nominated_pod_holds_its_room_against_lower_priority_pods() -> None:
    sched, cluster, clock = _setup(objects.node("n1", cpu="2"))
    sched.add_pod(objects.pod("low", cpu="2", priority=0, node_name="n1"))
    sched.add_pod(objects.pod("high", cpu="2", priority=100))
    cluster.scheduler = None  # victims are not deleted yet (graceful termination)
    assert await sched.run_once()
    sched.remove_pod(objects.pod("low", node_name="n1"))  # victim gone
    sched.add_pod(objects.pod("other", cpu="1", priority=0))
    cluster.scheduler = sched
    clock.now += 0.5  # high still in backoff; other pops first
    await _drain(sched)
    assert ("default/other", "n1") not in cluster.bindings
    clock.now += 1
    await _drain(sched)
    assert ("default/high", "n1") in cluster.bindings


async def test_bind_failure_forgets_and_retries() -> None:
    sched, cluster, clock = _setup(objects.node("n1", cpu="1"))
    cluster.fail_binds.add("p")
    sched.add_pod(objects.pod("p", cpu="1"))
    await _drain(sched)
    assert sched.cache.nodes["n1"].requested.get("cpu", 0) == 0
    assert cluster.events[-1][2] == "FailedScheduling"
    assert "binding default/p rejected" in cluster.events[-1][3]
    cluster.fail_binds.clear()
    clock.now += 1
    await _drain(sched)
    assert cluster.bindings == [("default/p", "n1")]


async def test_pods_fill_nodes_until_resources_run_out() -> None:
    sched, cluster, _ = _setup(objects.node("n1", cpu="2"), objects.node("n2", cpu="2"))
    for i in range(5):
        sched.add_pod(objects.pod(f"p{i}", cpu="1"))
    await _drain(sched)
    assert len(cluster.bindings) == 4
    per_node = {n: sum(1 for _, x in cluster.bindings if x == n) for n in ("n1", "n2")}
    assert per_node == {"n1": 2, "n2": 2}  # LeastAllocated spreads


async def test_priority_resolved_from_priority_class_when_not_set() -> None:
    sched, _, _ = _setup(objects.node("n1"))
    sched.set_priority_class({"metadata": {"name": "high"}, "value": 1000})
    sched.set_priority_class({"metadata": {"name": "default"}, "value": 7, "globalDefault": True})
    with_class = objects.pod("a", spec={"priorityClassName": "high"})
    assert sched.pod_info(with_class).priority == 1000
    assert sched.pod_info(objects.pod("b")).priority == 7
    assert sched.pod_info(objects.pod("c", priority=3)).priority == 3


async def test_other_schedulers_pods_and_finished_pods_are_ignored() -> None:
    sched, cluster, _ = _setup(objects.node("n1"))
    sched.add_pod(objects.pod("mine"))
    sched.add_pod(objects.pod("theirs", spec={"schedulerName": "other"}))
    await _drain(sched)
    assert [b[0] for b in cluster.bindings] == ["default/mine"]
    done = objects.pod("mine", node_name="n1")
    done["status"] = {"phase": "Succeeded"}
    sched.add_pod(done)
    assert not sched.cache.nodes["n1"].pods


async def test_equivalence_gives_the_same_placements_as_the_plain_path() -> None:
    async def placements(use_equivalence: bool) -> list[tuple[str, str]]:
        nodes = [
            objects.node(f"n{i}", cpu=str(2 + i % 3), labels={"zone": str(i % 2)})
            for i in range(12)
        ]
        sched, cluster, _ = _setup(*nodes, use_equivalence=use_equivalence)
        for i in range(40):
            spec = {"nodeSelector": {"zone": "1"}} if i % 4 == 0 else {}
            sched.add_pod(objects.pod(f"p{i:02}", cpu="500m", memory="100Mi", spec=spec))
        await _drain(sched)
        return cluster.bindings

    with_eq = await placements(True)
    assert with_eq == await placements(False)
    assert len(with_eq) == 40


async def test_equivalence_cache_hits_and_invalidation() -> None:
    sched, cluster, _ = _setup(*(objects.node(f"n{i}", cpu="1") for i in range(3)))
    for i in range(3):
        sched.add_pod(objects.pod(f"p{i}", cpu="1"))
    await _drain(sched)
    assert sorted(n for _, n in cluster.bindings) == ["n0", "n1", "n2"]  # never reused a full node
    assert sched.equivalence is not None
    assert sched.equivalence.hits > 0


async def test_pod_affinity_end_to_end() -> None:
    zone = "topology.kubernetes.io/zone"
    sched, cluster, _ = _setup(
        objects.node("a1", labels={zone: "a"}), objects.node("b1", labels={zone: "b"})
    )
    sched.add_pod(objects.pod("db", labels={"app": "db"}, node_name="b1"))
    term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": zone}
    spec = {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}}
    for i in range(3):
        sched.add_pod(objects.pod(f"web{i}", spec=spec))
    await _drain(sched)
    assert {n for _, n in cluster.bindings} == {"b1"}


async def test_topology_spread_end_to_end() -> None:
    zone = "topology.kubernetes.io/zone"
    sched, cluster, _ = _setup(
        *(objects.node(f"{z}{i}", labels={zone: z}) for z in "abc" for i in range(2))
    )
    constraint = {
        "maxSkew": 1,
        "topologyKey": zone,
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "web"}},
    }
    for i in range(9):
        sched.add_pod(
            objects.pod(
                f"w{i}", labels={"app": "web"}, spec={"topologySpreadConstraints": [constraint]}
            )
        )
    await _drain(sched)
    per_zone = {z: sum(1 for _, n in cluster.bindings if n.startswith(z)) for z in "abc"}
    assert per_zone == {"a": 3, "b": 3, "c": 3}


async def test_percentage_of_nodes_to_score_rotates_the_start() -> None:
    sched, _cluster, _ = _setup(*(objects.node(f"n{i:03}") for i in range(200)))
    sched.framework.percentage_of_nodes_to_score = 10  # -> at least 100 nodes
    sched.add_pod(objects.pod("p"))
    await _drain(sched)
    assert sched.next_start == 100


class SignallingCluster(adapter.InMemoryCluster):
    def __init__(self) -> None:
        super().__init__()
        self.bound = asyncio.Event()

    async def bind(self, pod: dict[str, Any], node_name: str) -> None:
        await super().bind(pod, node_name)
        self.bound.set()


async def test_run_loop_wakes_up_on_new_pods() -> None:
    cluster = SignallingCluster()
    sched = scheduler.Scheduler(cluster=cluster, clock=time.monotonic)
    cluster.scheduler = sched
    sched.add_node(objects.node("n1"))
    task = asyncio.create_task(sched.run(max_wait=30))
    try:
        await asyncio.sleep(0)  # the loop is now idle, waiting
        sched.add_pod(objects.pod("p"))
        await asyncio.wait_for(cluster.bound.wait(), 5)
    finally:
        task.cancel()
    assert cluster.bindings == [("default/p", "n1")]


class RecordingBinder:
    name = "RecordingBinder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def bind(self, state: object, pod: Any, node_name: str) -> Any:
        self.calls.append((pod.name, node_name))
        return framework.SUCCESS


async def test_bind_plugins_replace_the_default_binder() -> None:
    binder = RecordingBinder()
    fw = framework.Framework([*plugins.build(), binder], weights=plugins.DEFAULT_WEIGHTS)
    sched, cluster, _ = _setup(objects.node("n1"), fw=fw)
    sched.add_pod(objects.pod("p"))
    await _drain(sched)
    assert binder.calls == [("p", "n1")]
    assert cluster.bindings == []


async def test_pre_filter_narrowed_nodes_are_reported_as_not_satisfying_the_plugin() -> None:
    sched, cluster, _ = _setup(*(objects.node(f"n{i}", cpu="1") for i in range(3)))
    pinned = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
    spec = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [pinned]}
            }
        }
    }
    sched.add_pod(objects.pod("p", cpu="2", spec=spec))
    await _drain(sched)
    assert cluster.events[0][3] == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) "
        "[NodeAffinity]. preemption: 0/3 nodes are available: 1 No preemption victims found "
        "for incoming pod, 2 Preemption is not helpful for scheduling."
    )


async def test_successful_preemption_leaves_only_the_filter_summary() -> None:
    sched, cluster, _ = _setup(objects.node("n1", cpu="2"))
    sched.add_pod(objects.pod("low", cpu="2", priority=0, node_name="n1"))
    sched.add_pod(objects.pod("high", cpu="1", priority=100))
    cluster.scheduler = None
    await sched.run_once()
    failed = [e for e in cluster.events if e[2] == "FailedScheduling"]
    assert failed == [
        (
            "default/high",
            "Warning",
            "FailedScheduling",
            "0/1 nodes are available: 1 Insufficient cpu.",
        )
    ]
